package tests

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserHint tells how to get what TestBrowserWebSocket needs.
const browserHint = "run: apt-get install chromium; (cd tests/browser && npm install)"

// browserTimeout bounds TestBrowserWebSocket as a whole.
const browserTimeout = 60 * time.Second

// requireBrowser returns the Chromium binary and the MQTT.js browser bundle, skipping the test
// when either is missing, or failing it when E2E_REQUIRE_TOOLS=1 (CI installs both).
func requireBrowser(t *testing.T) (chromium, bundle string) {
	t.Helper()
	missing := func(what string, err error) {
		t.Helper()
		if os.Getenv("E2E_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is required (E2E_REQUIRE_TOOLS=1) but missing (%v); %s", what, err, browserHint)
		}
		t.Skipf("%s missing (%v); %s", what, err, browserHint)
	}
	chromium = "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if chromium, err = exec.LookPath("chromium"); err != nil {
			missing("chromium", err)
		}
	}
	bundle, err := filepath.Abs(filepath.Join("browser", "node_modules", "mqtt", "dist", "mqtt.min.js"))
	if err == nil {
		_, err = os.Stat(bundle)
	}
	if err != nil {
		missing("the MQTT.js bundle tests/browser/node_modules/mqtt/dist/mqtt.min.js", err)
	}
	return chromium, bundle
}

// pageState is what tests/browser/index.html records in window.__mqtt.
type pageState struct {
	Log       []string `json:"log"`
	Errors    []string `json:"errors"`
	Connected bool     `json:"connected"`
	Connack   *struct {
		Code           int  `json:"code"`
		SessionPresent bool `json:"sessionPresent"`
	} `json:"connack"`
	Suback []struct {
		Topic string `json:"topic"`
		QoS   int    `json:"qos"`
	} `json:"suback"`
	Puback   string `json:"puback"` // "" pending, "ok", or "error: …"
	Messages []struct {
		Topic       string `json:"topic"`
		Payload     string `json:"payload"`
		QoS         int    `json:"qos"`
		ContentType string `json:"contentType"`
	} `json:"messages"`
	Closed bool `json:"closed"`
}

// browserRun is one headless Chromium shared by the subtests, each of which opens its own tab.
type browserRun struct {
	ctx      context.Context // the browser's chromedp context
	deadline time.Time       // the end of the test's time budget
	output   *lockedBuffer   // Chromium's stdout and stderr: kept for failure reports, never asserted on
	cdpLog   *lockedBuffer   // chromedp's own log
}

// startBrowser starts headless Chromium with the flags this machine needs (no network beyond
// loopback, no sandbox as root, a fresh profile) and drives it over the DevTools pipe.
func startBrowser(t *testing.T, chromium string, deadline time.Time) *browserRun {
	t.Helper()
	b := &browserRun{deadline: deadline, output: &lockedBuffer{}, cdpLog: &lockedBuffer{}}
	profile := filepath.Join(t.TempDir(), "chromium-profile")
	// Runs after the browser has stopped (cleanups run last-in first-out): Chromium's helper
	// processes can still write into the profile for a moment after the main process exits, so
	// empty it before t.TempDir's own removal, which does not retry.
	t.Cleanup(func() { removeProfile(t, profile) })

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(b.output),
	}
	// The browser outlives the test's deadline by a little, so that a timed-out wait can still
	// read the page's log; it never outlives the test.
	root, cancelRoot := context.WithDeadline(context.Background(), deadline.Add(15*time.Second))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(root, opts...)
	logf := func(format string, args ...any) { b.cdpLog.WriteString(fmt.Sprintf(format, args...) + "\n") }
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	t.Cleanup(func() {
		// Close Chromium gracefully, then make sure it is gone.
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		if err := chromedp.Cancel(cctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			logf("closing chromium: %v", err)
		}
		ccancel()
		cancel()
		cancelAlloc()
		cancelRoot()
		if t.Failed() {
			t.Logf("chromium output (tail):\n%s", tail(b.output.String(), 4000))
			t.Logf("chromedp log (tail):\n%s", tail(b.cdpLog.String(), 4000))
		}
	})
	// The first Run starts the browser and binds it to ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v\n%s", chromium, err, tail(b.output.String(), 4000))
	}
	b.ctx = ctx
	return b
}

// removeProfile empties Chromium's profile directory, retrying while late helper processes
// still write into it; what is left is reported, never failed on.
func removeProfile(t *testing.T, dir string) {
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := os.RemoveAll(dir)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("chromium profile %s not removed: %v", dir, err)
			return
		}
		<-tick.C
	}
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// openPage opens a new tab on the page.
func (b *browserRun) openPage(t *testing.T, pageURL string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(b.ctx)
	t.Cleanup(cancel)
	// The first Run on a context binds the tab's life to the context it gets: open the tab on
	// tab itself, and only then limit single actions with derived contexts.
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	nctx, ncancel := context.WithDeadline(tab, b.deadline)
	defer ncancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("navigate to %s: %v", pageURL, err)
	}
	return tab
}

// waitPage polls window.__mqtt until cond holds. It fails at once when the page recorded an
// error or its connection closed, and with the page's log when the test's deadline passes.
func (b *browserRun) waitPage(t *testing.T, tab context.Context, what string, cond func(*pageState) bool) *pageState {
	t.Helper()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	timeout := time.NewTimer(time.Until(b.deadline))
	defer timeout.Stop()
	var last *pageState
	var lastErr error
	for {
		ectx, cancel := context.WithDeadline(tab, b.deadline)
		st, err := chromedp.Run(ectx, chromedp.Evaluate[*pageState](`window.__mqtt || null`))
		cancel()
		switch {
		case err != nil:
			lastErr = err
		case st == nil:
			lastErr = errors.New("window.__mqtt is not set")
		default:
			last, lastErr = st, nil
			if len(st.Errors) > 0 {
				t.Fatalf("page reported errors while waiting for %s: %q\npage log:\n%s", what, st.Errors, strings.Join(st.Log, "\n"))
			}
			if cond(st) {
				return st
			}
			if st.Closed { // reconnectPeriod is 0: a closed connection stays closed
				t.Fatalf("the page's connection closed while waiting for %s\npage log:\n%s", what, strings.Join(st.Log, "\n"))
			}
		}
		select {
		case <-tick.C:
		case <-timeout.C:
			var log string
			if last != nil {
				log = strings.Join(last.Log, "\n")
			}
			t.Fatalf("timed out (test budget %v) waiting for %s; last evaluate error: %v\npage log:\n%s", browserTimeout, what, lastErr, log)
		}
	}
}

// TestBrowserWebSocket loads MQTT.js (npm mqtt) into Debian's headless Chromium, connects to the
// endpoint's ws listener as device1@app1, publishes an event that must reach the sink, and
// receives a command, with MQTT 5 and MQTT 3.1.1.
func TestBrowserWebSocket(t *testing.T) {
	chromium, bundle := requireBrowser(t)
	deadline := time.Now().Add(browserTimeout)

	html, err := os.ReadFile(filepath.Join("browser", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}

	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(html)
	})
	mux.HandleFunc("GET /mqtt.min.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(js)
	})
	page := httptest.NewServer(mux) // on 127.0.0.1
	t.Cleanup(page.Close)

	b := startBrowser(t, chromium, deadline)

	for _, tc := range []struct {
		name    string
		version int
	}{
		{"MQTT 5", 5},
		{"MQTT 3.1.1", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clientID := fmt.Sprintf("chromium-v%d-%d", tc.version, time.Now().UnixNano())
			q := url.Values{
				"url":      {"ws://" + ep.Addrs["ws"] + "/mqtt"},
				"v":        {fmt.Sprint(tc.version)},
				"username": {"device1@app1"},
				"password": {"secret1"},
				"clientId": {clientID},
			}
			tab := b.openPage(t, page.URL+"/?"+q.Encode())

			st := b.waitPage(t, tab, "CONNACK and SUBACK", func(st *pageState) bool { return st.Suback != nil })
			if !st.Connected || st.Connack == nil || st.Connack.Code != 0 {
				t.Fatalf("connack %+v\npage log:\n%s", st.Connack, strings.Join(st.Log, "\n"))
			}
			if len(st.Suback) != 1 || st.Suback[0].Topic != "command/inbox//#" || st.Suback[0].QoS != 1 {
				t.Fatalf("suback %+v, want command/inbox//# granted QoS 1", st.Suback)
			}

			ev := s.nextData(t)
			wantEvent(t, ev, map[string]string{
				"type": typeEvent, "subject": "browser-telemetry", "datacontenttype": "application/json",
				"data": `{"from":"chromium"}`, "application": "app1", "device": "device1", "sender": "device1",
			})
			if st := b.waitPage(t, tab, "PUBACK", func(st *pageState) bool { return st.Puback != "" }); st.Puback != "ok" {
				t.Fatalf("puback %q", st.Puback)
			}

			// QoS 1 command: the 202 means the browser client PUBACKed it.
			postCommand(t, ep, "app1", "device1", "hello", `{"light":"on"}`, http.StatusAccepted)
			st = b.waitPage(t, tab, "the command", func(st *pageState) bool { return len(st.Messages) > 0 })
			m := st.Messages[0]
			wantCT := "text/plain" // postCommand's content type, carried as an MQTT 5 property
			if tc.version != 5 {
				wantCT = ""
			}
			if m.Topic != "command/inbox//hello" || m.Payload != `{"light":"on"}` || m.QoS != 1 || m.ContentType != wantCT {
				t.Fatalf("command %+v, want topic command/inbox//hello payload {\"light\":\"on\"} QoS 1 content type %q", m, wantCT)
			}
			if len(st.Messages) != 1 {
				t.Fatalf("%d messages, want 1: %+v", len(st.Messages), st.Messages)
			}

			// Disconnect cleanly before the tab closes, so the next subtest's device1 is alone.
			ectx, cancel := context.WithDeadline(tab, b.deadline)
			defer cancel()
			if _, err := chromedp.Run(ectx, chromedp.Evaluate[bool](
				`new Promise(r => window.__mqttClient.end(false, {}, () => r(true)))`, chromedp.EvalAwaitPromise)); err != nil {
				t.Fatalf("disconnect: %v", err)
			}
			st = b.waitPage(t, tab, "the connection to close", func(st *pageState) bool { return st.Closed })
			t.Logf("page log:\n%s", strings.Join(st.Log, "\n"))
		})
	}
}
