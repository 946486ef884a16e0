package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// endpointBinary is the endpoint built once by TestMain.
var endpointBinary string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mqtt-endpoint-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	endpointBinary = filepath.Join(dir, "mqtt-endpoint")
	args := []string{"build", "-o", endpointBinary}
	if raceEnabled {
		args = append(args, "-race")
	}
	if pskBuild {
		args = append(args, "-tags", "psk")
	}
	args = append(args, "../cmd/mqtt-endpoint")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mqtt-endpoint:", err)
		return 1
	}
	return m.Run()
}

// requireTool returns the path of an external tool, skipping the test when it is missing, or
// failing it when E2E_REQUIRE_TOOLS=1 (CI installs every tool).
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("E2E_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s is required (E2E_REQUIRE_TOOLS=1) but not installed: %v", name, err)
	}
	t.Skipf("%s not installed (Debian: apt-get install mosquitto-clients); skipping", name)
	return ""
}

// endpoint is one running mqtt-endpoint process.
type endpoint struct {
	MQTT     string            // host:port of the plain MQTT listener
	HTTP     string            // host:port of the HTTP listener
	Addrs    map[string]string // every listener's host:port by name (mqtt, mqtts, ws, wss, psk, http)
	Registry string            // path of the registry file the test may rewrite
	Stdout   *lockedBuffer
	logs     *lockedBuffer
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process ended
}

// stop sends sig and waits up to limit for the process to exit; it returns the exit code and
// how long the exit took.
func (ep *endpoint) stop(t testing.TB, sig os.Signal, limit time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := ep.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ep.exited:
	case <-time.After(limit):
		t.Fatalf("endpoint did not exit within %v of %v", limit, sig)
	}
	return ep.cmd.ProcessState.ExitCode(), time.Since(start)
}

// endpointConfig selects how to start the endpoint.
type endpointConfig struct {
	Registry string            // registry YAML; "" with Dev uses the embedded one
	Sink     string            // K_SINK; "" leaves it unset
	Dev      bool              // --dev
	Env      map[string]string // further environment
}

// startEndpoint runs the binary on loopback ports and waits until its listeners are bound.
func startEndpoint(t testing.TB, cfg endpointConfig) *endpoint {
	t.Helper()
	ep := &endpoint{Stdout: &lockedBuffer{}, logs: &lockedBuffer{}}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"MQTT_LISTEN=127.0.0.1:0",
		"HTTP_LISTEN=127.0.0.1:0",
		"WS_LISTEN=127.0.0.1:0",
		"PSK_LISTEN=" + map[bool]string{true: "127.0.0.1:0", false: "off"}[pskBuild],
		"LOG_LEVEL=debug",
	}
	if cfg.Registry != "" {
		ep.Registry = filepath.Join(t.TempDir(), "registry.yaml")
		if err := os.WriteFile(ep.Registry, []byte(cfg.Registry), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "REGISTRY_PATH="+ep.Registry)
	}
	if cfg.Sink != "" {
		env = append(env, "K_SINK="+cfg.Sink)
	}
	for k, v := range cfg.Env {
		env = append(env, k+"="+v) // later entries win
	}
	var args []string
	if cfg.Dev {
		args = append(args, "--dev")
	}
	cmd := exec.Command(endpointBinary, args...)
	cmd.Env = env
	cmd.Stdout = ep.Stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	ep.cmd, ep.exited = cmd, exited
	bound := make(chan map[string]string, 1)
	go func() {
		defer close(exited)
		addrs := map[string]string{}
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			ep.logs.WriteString(line + "\n")
			if addrs != nil && strings.Contains(line, "listening") {
				var rec map[string]any
				if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "listening" {
					addrs[fmt.Sprint(rec["listener"])] = fmt.Sprint(rec["address"])
				} else if l, a, ok := parseTextListening(line); ok {
					addrs[l] = a
				}
				if addrs["http"] != "" { // the HTTP listener opens after every MQTT listener
					bound <- addrs
					addrs = nil
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if strings.Contains(ep.logs.String(), "WARNING: DATA RACE") {
			t.Errorf("the endpoint reported a data race")
		}
		if t.Failed() {
			t.Logf("endpoint log:\n%s", ep.logs.String())
		}
	})
	select {
	case addrs := <-bound:
		ep.MQTT, ep.HTTP, ep.Addrs = addrs["mqtt"], addrs["http"], addrs
	case <-exited:
		t.Fatalf("endpoint exited before listening:\n%s", ep.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("endpoint did not start listening in 30s:\n%s", ep.logs.String())
	}
	return ep
}

// parseTextListening reads a dev-mode text log line: `... msg=listening listener=mqtt address=…`.
func parseTextListening(line string) (listener, address string, ok bool) {
	if !strings.Contains(line, "msg=listening") {
		return "", "", false
	}
	for _, f := range strings.Fields(line) {
		if v, found := strings.CutPrefix(f, "listener="); found {
			listener = v
		}
		if v, found := strings.CutPrefix(f, "address="); found {
			address = v
		}
	}
	return listener, address, listener != "" && address != ""
}

// Logs returns what the endpoint logged so far.
func (ep *endpoint) Logs() string { return ep.logs.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sink is a real CloudEvents HTTP receiver standing in for the Knative Broker. Its answer to each
// request is scripted; accepted events arrive on Events in order.
type sink struct {
	URL    string
	events chan cloudevents.Event

	mu       sync.Mutex
	auth     []string                        // the Authorization header of every request
	status   int                             // answer for the next requests; 0 = 202
	delay    time.Duration                   // before answering
	delayFor func(data string) time.Duration // per-event delay, set before the endpoint sends
	gate     chan struct{}                   // when non-nil, requests wait until it is closed
	requests int
	accepted []cloudevents.Event
}

func newSink(t testing.TB) *sink {
	t.Helper()
	s := &sink{events: make(chan cloudevents.Event, 10000)}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	ev, err := cehttp.NewEventFromHTTPRequest(r)
	if err != nil {
		http.Error(w, "not a CloudEvent: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests++
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	status, delay, gate := s.status, s.delay, s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if s.delayFor != nil {
		delay += s.delayFor(string(ev.Data()))
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	if status != 0 && status/100 != 2 {
		http.Error(w, "scripted failure", status)
		return
	}
	s.mu.Lock()
	s.accepted = append(s.accepted, *ev)
	s.mu.Unlock()
	s.events <- *ev
	w.WriteHeader(http.StatusAccepted)
}

// answer makes the sink answer every following request with status (0 = 202) after delay.
func (s *sink) answer(status int, delay time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.delay = status, delay
}

// hold makes requests wait until the returned function is called.
func (s *sink) hold() (release func()) {
	g := make(chan struct{})
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.gate = nil
			s.mu.Unlock()
			close(g)
		})
	}
}

// Authorizations returns the Authorization header of every request so far.
func (s *sink) Authorizations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

// Requests returns how many POSTs the sink received.
func (s *sink) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Accepted returns a copy of every event the sink accepted.
func (s *sink) Accepted() []cloudevents.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cloudevents.Event(nil), s.accepted...)
}

// next waits for the next accepted event of the given type ("" for any type).
func (s *sink) next(t testing.TB, typ string) cloudevents.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if typ == "" || ev.Type() == typ {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event arrived at the sink within 10s", typ)
		}
	}
}

// nextData waits for the next device data event (io.drogue.event.v1).
func (s *sink) nextData(t testing.TB) cloudevents.Event {
	t.Helper()
	return s.next(t, "io.drogue.event.v1")
}

// none asserts that no event of type typ arrives within d.
func (s *sink) none(t testing.TB, typ string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-s.events:
			if typ == "" || ev.Type() == typ {
				t.Fatalf("unexpected event: %s", ev)
			}
		case <-deadline:
			return
		}
	}
}

// waitFor polls cond until it holds or 10s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
