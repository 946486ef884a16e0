package tests

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/eclipse/paho.golang/paho"
)

// readyz returns the status and body of /readyz.
func readyz(t testing.TB, ep *endpoint) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + ep.HTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadiness(t *testing.T) {
	t.Run("with K_SINK", func(t *testing.T) {
		ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: newSink(t).URL})
		code, body := readyz(t, ep)
		if code != http.StatusOK || !strings.Contains(body, "sink: ok") || !strings.Contains(body, "registry: ok (5 applications, 16 devices)") {
			t.Fatalf("/readyz %d:\n%s", code, body)
		}
		// A broken registry keeps the endpoint ready (it serves the last good one) and says so.
		if err := os.WriteFile(ep.Registry, []byte("kind: Device\nmetadata: {name: x, application: nowhere}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the failed reload in /readyz", func() bool {
			code, body = readyz(t, ep)
			return strings.Contains(body, "last reload failed")
		})
		if code != http.StatusOK || !strings.Contains(body, "nowhere") {
			t.Fatalf("/readyz %d:\n%s", code, body)
		}
		if v := metricValue(t, ep, "mqtt_endpoint_registry_last_reload_success"); v != 0 {
			t.Fatalf("registry_last_reload_success %v after a broken reload", v)
		}
	})
	t.Run("without K_SINK", func(t *testing.T) {
		ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t)})
		code, body := readyz(t, ep)
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "sink: not ready") {
			t.Fatalf("/readyz %d:\n%s", code, body)
		}
		if resp, err := http.Get("http://" + ep.HTTP + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz: %v %v", resp, err)
		}
	})
}

func TestOIDCToken(t *testing.T) {
	s := newSink(t)
	token := filepath.Join(t.TempDir(), "token")
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL, Env: map[string]string{"OIDC_TOKEN_FILE": token}})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	publish := func() string {
		t.Helper()
		if _, err := c.publish(t, "t", 1, "{}", nil); err != nil {
			t.Fatal(err)
		}
		a := s.Authorizations()
		return a[len(a)-1]
	}
	if got := publish(); got != "" {
		t.Fatalf("Authorization %q without a token file", got)
	}
	if err := os.WriteFile(token, []byte("first-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the token to be sent", func() bool { return publish() == "Bearer first-token" })
	// The SinkBinding renews the token before it expires: the new one is used.
	if err := os.WriteFile(token, []byte("second-token-longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the renewed token", func() bool { return publish() == "Bearer second-token-longer" })
}

func TestHTTPSSink(t *testing.T) {
	// A Broker with transport encryption: its CA comes in K_CA_CERTS (SinkBinding).
	s := &sink{events: make(chan cloudevents.Event, 100)}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	tests := []struct {
		name   string
		env    map[string]string
		wantOK bool
	}{
		{"K_CA_CERTS trusts the sink", map[string]string{"K_CA_CERTS": caPEM}, true},
		{"no K_CA_CERTS: unknown authority, 0x89", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL, Env: tt.env})
			c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
			res, err := c.publish(t, "t", 1, `{"over":"tls"}`, nil)
			if !tt.wantOK {
				if err == nil || res == nil || res.ReasonCode != 0x89 {
					t.Fatalf("sink not trusted: want PUBACK 0x89, got %+v, %v", res, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			if ev := s.nextData(t); string(ev.Data()) != `{"over":"tls"}` {
				t.Fatalf("event over https: %s", ev)
			}
		})
	}
}

func TestMetricsAfterTraffic(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	_, _ = dialV5(t, ep.MQTT, func(cp *paho.Connect) {
		cp.Username, cp.UsernameFlag = "device1@app1", true
		cp.Password, cp.PasswordFlag = []byte("wrong"), true
	})
	for i := range 3 {
		if _, err := c.publish(t, "t", 1, fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.publish(t, "a/b/c", 1, "x", nil); err == nil {
		t.Fatal("invalid topic accepted")
	}
	postCommand(t, ep, "app1", "device1", "x", "y", http.StatusServiceUnavailable) // not subscribed
	want := map[string]float64{
		`mqtt_endpoint_connections{application="app1",listener="mqtt"}`:         1,
		`mqtt_endpoint_connects_total{outcome="accepted"}`:                      1,
		`mqtt_endpoint_connects_total{outcome="bad_credentials"}`:               1,
		`mqtt_endpoint_publishes_total{outcome="accepted"}`:                     3,
		`mqtt_endpoint_publishes_total{outcome="refused"}`:                      1,
		`mqtt_endpoint_events_total{outcome="sent"}`:                            4, // 3 publishes + connected
		`mqtt_endpoint_commands_total{outcome="unreachable"}`:                   1,
		`mqtt_endpoint_command_duration_seconds_count{outcome="unreachable"}`:   1,
		`mqtt_endpoint_sink_request_duration_seconds_count{outcome="accepted"}`: 4,
		`mqtt_endpoint_sink_requests_in_flight`:                                 0,
		`mqtt_endpoint_registry_objects{kind="device"}`:                         16,
		`mqtt_endpoint_registry_last_reload_success`:                            1,
	}
	for series, v := range want {
		if got := metricValue(t, ep, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
}

// TestGracefulShutdown: SIGTERM with publishes at the sink: they are answered and acknowledged
// before the clients are told 0x8B, nothing acknowledged is missing at the sink, publishes
// arriving meanwhile are refused, and the process exits in time.
func TestGracefulShutdown(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := dialRaw(t, ep.MQTT, 5, "device1@app1", "secret1")
	s.next(t, typeConnection)
	base := s.Requests()
	release := s.hold()
	defer release()
	for i := range 5 {
		c.publish("t", 1, uint16(i+1), []byte(fmt.Sprint(i)))
	}
	waitFor(t, "5 publishes at the sink", func() bool { return s.Requests() >= base+5 })

	exit := make(chan int, 1)
	go func() {
		code, took := ep.stop(t, syscall.SIGTERM, 25*time.Second)
		t.Logf("exited with %d after %v", code, took.Round(time.Millisecond))
		exit <- code
	}()
	waitFor(t, "/readyz to fail while draining", func() bool {
		resp, err := http.Get("http://" + ep.HTTP + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	c.publish("t", 1, 99, []byte("late")) // arrives while draining: refused, not queued
	time.Sleep(200 * time.Millisecond)    // the drain must wait for the sink, however long
	release()

	for i := range 5 {
		if id, rc := c.read().puback(); id != uint16(i+1) || rc != 0 {
			t.Fatalf("ack %d: packet %d rc 0x%02x, want success", i, id, rc)
		}
	}
	if id, rc := c.read().puback(); id != 99 || rc != 0x89 {
		t.Fatalf("publish during the drain: packet %d rc 0x%02x, want 0x89", id, rc)
	}
	if p := c.read(); p.typ != 14 || p.reason() != 0x8B {
		t.Fatalf("got packet type %d reason 0x%02x, want DISCONNECT 0x8B", p.typ, p.reason())
	}
	if code := <-exit; code != 0 {
		t.Fatalf("exit code %d", code)
	}
	got := map[string]bool{}
	for _, ev := range s.Accepted() {
		got[string(ev.Data())] = true
	}
	for i := range 5 {
		if !got[fmt.Sprint(i)] {
			t.Fatalf("acknowledged event %d missing at the sink", i)
		}
	}
	if !got[`{"connected":false}`] {
		t.Fatal("no disconnected event before exit")
	}
}
