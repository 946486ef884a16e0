package tests

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
)

// tlsSetup is an endpoint with TLS listeners and two applications with their own CAs.
type tlsSetup struct {
	ep         *endpoint
	sink       *sink
	serverCA   *testCA
	caA, caB   *testCA
	registry   func(anchorsA string) string
	certDir    string
	deviceDN   tls.Certificate // app-a device named by its DN
	deviceCN   tls.Certificate // app-a device found by CN
	deviceB    tls.Certificate // app-b device
	roots      *x509.CertPool  // trusts the server certificate
	wssNoCerts bool
}

const tlsRegistry = `
kind: Application
metadata: {name: app-a}
spec:
  trustAnchors:
    anchors:
ANCHORS_A
---
kind: Device
metadata: {name: "O=Drogue IoT, OU=Cloud, CN=Device 1", application: app-a}
---
kind: Device
metadata: {name: cn-device, application: app-a}
spec:
  authentication:
    credentials:
      - pass: cn-secret
---
kind: Application
metadata: {name: app-b}
spec:
  trustAnchors:
    anchors:
      - certificate: ANCHOR_B
---
kind: Device
metadata: {name: b-device, application: app-b}
`

func newTLSSetup(t *testing.T, env map[string]string) *tlsSetup {
	t.Helper()
	s := &tlsSetup{
		sink:     newSink(t),
		serverCA: newCA(t, pkix.Name{CommonName: "server CA"}),
		caA:      newCA(t, pkix.Name{Organization: []string{"Drogue IoT"}, CommonName: "App A CA"}),
		caB:      newCA(t, pkix.Name{CommonName: "App B CA"}),
		certDir:  t.TempDir(),
	}
	s.roots = s.serverCA.pool()
	certFile, keyFile := s.serverCA.serverCert(t, s.certDir)
	s.registry = func(anchorsA string) string {
		r := strings.ReplaceAll(tlsRegistry, "ANCHOR_B", s.caB.anchor())
		return strings.ReplaceAll(r, "ANCHORS_A", anchorsA)
	}
	s.deviceDN = s.caA.leaf(t, pkix.Name{Organization: []string{"Drogue IoT"}, OrganizationalUnit: []string{"Cloud"}, CommonName: "Device 1"}, nil)
	s.deviceCN = s.caA.leaf(t, pkix.Name{CommonName: "cn-device", Organization: []string{"Someone"}}, nil)
	s.deviceB = s.caB.leaf(t, pkix.Name{CommonName: "b-device"}, nil)
	e := map[string]string{
		"TLS_CERT_FILE": certFile, "TLS_KEY_FILE": keyFile,
		"MQTTS_LISTEN": "127.0.0.1:0", "WSS_LISTEN": "127.0.0.1:0",
	}
	for k, v := range env {
		e[k] = v
	}
	s.ep = startEndpoint(t, endpointConfig{Registry: s.registry("      - certificate: " + s.caA.anchor()), Sink: s.sink.URL, Env: e})
	return s
}

// clientTLS trusts the test server and presents cert (if any).
func (s *tlsSetup) clientTLS(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{RootCAs: s.roots, ServerName: "localhost"}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// dialMQTTS connects an MQTT 5 client over TLS; username "" sends none.
func (s *tlsSetup) dialMQTTS(t *testing.T, cert *tls.Certificate, username, password string) (*v5client, error) {
	t.Helper()
	nc, err := tls.Dial("tcp", s.ep.Addrs["mqtts"], s.clientTLS(cert))
	if err != nil {
		return nil, err
	}
	return dialV5Conn(t, nc, func(cp *paho.Connect) {
		if username != "" {
			cp.Username, cp.UsernameFlag = username, true
			cp.Password, cp.PasswordFlag = []byte(password), true
		}
	})
}

func TestX509ClientCertificates(t *testing.T) {
	s := newTLSSetup(t, nil)
	rows := []struct {
		name   string
		cert   tls.Certificate
		device string
	}{
		{"device named by its subject DN", s.deviceDN, "O=Drogue IoT, OU=Cloud, CN=Device 1"},
		{"device found by subject CN", s.deviceCN, "cn-device"},
		{"device of the other application and CA", s.deviceB, "b-device"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			c, err := s.dialMQTTS(t, &r.cert, "", "")
			if err != nil {
				t.Fatalf("connect with certificate: %v", err)
			}
			ev := s.sink.next(t, typeConnection)
			if ext(ev, "device") != r.device {
				t.Fatalf("connected as %q, want %q", ext(ev, "device"), r.device)
			}
			if _, err := c.publish(t, "temp", 1, `{"x":1}`, nil); err != nil {
				t.Fatal(err)
			}
			if ev := s.sink.nextData(t); ext(ev, "device") != r.device {
				t.Fatalf("event of %q", ext(ev, "device"))
			}
			_ = c.Disconnect(&paho.Disconnect{})
			s.sink.next(t, typeConnection)
		})
	}

	unknownCA := newCA(t, pkix.Name{CommonName: "Unknown CA"})
	refused := []struct {
		name     string
		cert     tls.Certificate
		username string
	}{
		{"certificate from an unknown CA", unknownCA.leaf(t, pkix.Name{CommonName: "cn-device"}, nil), ""},
		{"expired certificate", s.caA.leaf(t, pkix.Name{CommonName: "cn-device"}, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
		}), ""},
		{"not yet valid certificate", s.caA.leaf(t, pkix.Name{CommonName: "cn-device"}, func(c *x509.Certificate) {
			c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(48*time.Hour)
		}), ""},
		{"certificate of app B naming a device of app A", s.caB.leaf(t, pkix.Name{CommonName: "cn-device"}, nil), ""},
		{"certificate for no device", s.caA.leaf(t, pkix.Name{CommonName: "nobody"}, nil), ""},
		{"certificate plus username", s.deviceCN, "cn-device@app-a"},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			c, err := s.dialMQTTS(t, &r.cert, r.username, "cn-secret")
			if err == nil {
				t.Fatal("connection accepted")
			}
			if c == nil || c.Connack == nil || c.Connack.ReasonCode != 0x86 {
				t.Fatalf("want CONNACK 0x86, got %v (%v)", c, err)
			}
		})
	}
	s.sink.none(t, typeConnection, 200*time.Millisecond)

	t.Run("password over TLS without certificate", func(t *testing.T) {
		c, err := s.dialMQTTS(t, nil, "cn-device@app-a", "cn-secret")
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Disconnect(&paho.Disconnect{})
	})
	t.Run("TLS 1.1 refused", func(t *testing.T) {
		cfg := s.clientTLS(nil)
		cfg.MaxVersion = tls.VersionTLS11
		if nc, err := tls.Dial("tcp", s.ep.Addrs["mqtts"], cfg); err == nil {
			nc.Close()
			t.Fatal("TLS 1.1 handshake succeeded")
		}
	})
}

func TestX509AnchorsFollowRegistryReload(t *testing.T) {
	s := newTLSSetup(t, nil)
	connect := func() error {
		c, err := s.dialMQTTS(t, &s.deviceCN, "", "")
		if err == nil {
			_ = c.Disconnect(&paho.Disconnect{})
		}
		return err
	}
	if err := connect(); err != nil {
		t.Fatal(err)
	}
	// App A now trusts only a new CA: its old device certificates stop working.
	newA := newCA(t, pkix.Name{CommonName: "App A CA 2"})
	if err := os.WriteFile(s.ep.Registry, []byte(s.registry("      - certificate: "+newA.anchor())), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old CA to be refused", func() bool { return connect() != nil })
	fresh := newA.leaf(t, pkix.Name{CommonName: "cn-device"}, nil)
	if c, err := s.dialMQTTS(t, &fresh, "", ""); err != nil {
		t.Fatalf("certificate of the new anchor: %v", err)
	} else {
		_ = c.Disconnect(&paho.Disconnect{})
	}
}

func TestServerCertificateRotation(t *testing.T) {
	s := newTLSSetup(t, nil)
	issuer := func() string {
		nc, err := tls.Dial("tcp", s.ep.Addrs["mqtts"], &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return err.Error()
		}
		defer nc.Close()
		return nc.ConnectionState().PeerCertificates[0].Issuer.CommonName
	}
	if got := issuer(); got != "server CA" {
		t.Fatalf("issuer %q", got)
	}
	rotated := newCA(t, pkix.Name{CommonName: "rotated CA"})
	dir := t.TempDir()
	certFile, keyFile := rotated.serverCert(t, dir)
	for _, f := range [][2]string{{certFile, "tls.crt"}, {keyFile, "tls.key"}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.certDir+"/"+f[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the rotated certificate", func() bool { return issuer() == "rotated CA" })
}

func TestConnectDeadline(t *testing.T) {
	s := newTLSSetup(t, map[string]string{"CONNECT_TIMEOUT": "1s"})
	for _, name := range []string{"mqtt", "mqtts", "ws", "wss"} {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", s.ep.Addrs[name])
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			// Send nothing: no TLS handshake, no HTTP upgrade, no CONNECT.
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			_, err = io.Copy(io.Discard, nc)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("idle socket still open after 10s")
			}
			t.Logf("%s: idle socket closed after %v", name, time.Since(start).Round(10*time.Millisecond))
		})
	}
}

// wsDial opens an MQTT-over-WebSocket connection as a net.Conn.
func wsDial(t testing.TB, url string, cfg *tls.Config) (net.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		return nil, resp, err
	}
	return &wsNetConn{Conn: ws}, resp, nil
}

// wsNetConn adapts a client websocket to the byte stream paho reads.
type wsNetConn struct {
	*websocket.Conn
	r  io.Reader
	mu sync.Mutex // gorilla allows one writer; paho writes from several goroutines
}

func (c *wsNetConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			_, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsNetConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsNetConn) SetDeadline(t time.Time) error { return c.NetConn().SetDeadline(t) }

func TestWebSockets(t *testing.T) {
	s := newTLSSetup(t, nil)

	t.Run("paho v5 over ws, any path, publish and command", func(t *testing.T) {
		nc, resp, err := wsDial(t, "ws://"+s.ep.Addrs["ws"]+"/any/path", nil)
		if err != nil {
			t.Fatal(err)
		}
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "mqtt" {
			t.Fatalf("subprotocol %q, want mqtt", p)
		}
		c, err := dialV5Conn(t, nc, func(cp *paho.Connect) {
			cp.Username, cp.UsernameFlag = "cn-device@app-a", true
			cp.Password, cp.PasswordFlag = []byte("cn-secret"), true
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.publish(t, "over-ws", 1, `{"ws":true}`, nil); err != nil {
			t.Fatal(err)
		}
		if ev := s.sink.nextData(t); ev.Subject() != "over-ws" || ext(ev, "device") != "cn-device" {
			t.Fatalf("event %s", ev)
		}
		got := make(chan string, 1)
		c.AddOnPublishReceived(func(pr paho.PublishReceived) (bool, error) {
			got <- pr.Packet.Topic + " " + string(pr.Packet.Payload)
			return true, nil
		})
		if _, err := c.Subscribe(t.Context(), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "command/inbox//#", QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
		postCommand(t, s.ep, "app-a", "cn-device", "light", "on", http.StatusAccepted)
		select {
		case m := <-got:
			if m != "command/inbox//light on" {
				t.Fatalf("command %q", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no command over ws")
		}
	})
	t.Run("paho v3.1.1 over wss with a client certificate", func(t *testing.T) {
		o := mqtt3.NewClientOptions().AddBroker("wss://" + s.ep.Addrs["wss"] + "/mqtt").
			SetClientID("wss-v3").SetProtocolVersion(4).SetTLSConfig(s.clientTLS(&s.deviceB)).
			SetAutoReconnect(false).SetConnectTimeout(10 * time.Second)
		c := mqtt3.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
			t.Fatalf("connect over wss: %v", tok.Error())
		}
		defer c.Disconnect(50)
		if tok := c.Publish("over-wss", 1, false, "x"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish over wss: %v", tok.Error())
		}
		if ev := s.sink.nextData(t); ext(ev, "device") != "b-device" || ev.Subject() != "over-wss" {
			t.Fatalf("event %s", ev)
		}
	})
	t.Run("plain GET gets 404", func(t *testing.T) {
		resp, err := http.Get("http://" + s.ep.Addrs["ws"] + "/mqtt")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "MQTT Web Socket protocol only") {
			t.Fatalf("GET: %d %q", resp.StatusCode, body)
		}
	})
}

func TestWSSWithoutClientCertificateRequest(t *testing.T) {
	s := newTLSSetup(t, map[string]string{"WSS_CLIENT_CERTS": "off"})
	asked := func(addr string) bool {
		var requested bool
		cfg := s.clientTLS(nil)
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			requested = true
			return &tls.Certificate{}, nil
		}
		nc, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // TLS 1.3 requests certificates after the handshake
		_, _ = nc.Read(make([]byte, 1))
		nc.Close()
		return requested
	}
	if asked(s.ep.Addrs["wss"]) {
		t.Fatal("wss asked a browser for a client certificate with WSS_CLIENT_CERTS=off")
	}
	if !asked(s.ep.Addrs["mqtts"]) {
		t.Fatal("mqtts did not request a client certificate")
	}
	// Password authentication still works over that wss.
	nc, _, err := wsDial(t, "wss://"+s.ep.Addrs["wss"]+"/", s.clientTLS(nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialV5Conn(t, nc, func(cp *paho.Connect) {
		cp.Username, cp.UsernameFlag = "cn-device@app-a", true
		cp.Password, cp.PasswordFlag = []byte("cn-secret"), true
	}); err != nil {
		t.Fatal(err)
	}
}

// postCommand sends a command in binary mode and checks the status.
func postCommand(t testing.TB, ep *endpoint, app, device, command, payload string, want int) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+ep.HTTP+"/", strings.NewReader(payload))
	for k, v := range map[string]string{
		"ce-specversion": "1.0", "ce-id": fmt.Sprint(time.Now().UnixNano()), "ce-source": "test",
		"ce-type": "io.drogue.command.v1", "ce-subject": command, "ce-application": app, "ce-device": device,
		"content-type": "text/plain",
	} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("command %s: status %d %q, want %d", command, resp.StatusCode, body, want)
	}
}
