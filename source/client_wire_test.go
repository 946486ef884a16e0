package source

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
)

// This file tests what NewClient's sender puts on the wire: conformance with sdk-go's
// HTTP binding, refusal of unencodable events, the connection handling against a raw TCP
// server whose bytes the tests control, the pool bound, the OIDC token and K_CE_OVERRIDES.

// wireEvent returns an event with id, source and type, changed by mods.
func wireEvent(tb testing.TB, id string, mods ...func(*cloudevents.Event) error) cloudevents.Event {
	tb.Helper()
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource("drogue://app1/dev%201")
	e.SetType("io.drogue.event.v1")
	for _, m := range mods {
		if err := m(&e); err != nil {
			tb.Fatalf("build event %s: %v", id, err)
		}
	}
	return e
}

// builtEvent returns the event EventBuilder makes of p at now.
func builtEvent(tb testing.TB, p Publish, now time.Time) cloudevents.Event {
	tb.Helper()
	e, err := EventBuilder{Instance: "drogue"}.Event(p, now)
	if err != nil {
		tb.Fatalf("build event of %+v: %v", p, err)
	}
	return e
}

// withExt sets extension name to v.
func withExt(name string, v any) func(*cloudevents.Event) error {
	return func(e *cloudevents.Event) error { return e.Context.SetExtension(name, v) }
}

// withData sets the data and datacontenttype.
func withData(ct string, data []byte) func(*cloudevents.Event) error {
	return func(e *cloudevents.Event) error { return e.SetData(ct, data) }
}

// withAttr applies set, which cannot fail.
func withAttr(set func(*cloudevents.Event)) func(*cloudevents.Event) error {
	return func(e *cloudevents.Event) error { set(e); return nil }
}

// flatEvent returns e's attributes, extensions and data as strings, keyed by name.
func flatEvent(e cloudevents.Event) map[string]string {
	m := map[string]string{
		"specversion":     e.SpecVersion(),
		"id":              e.ID(),
		"source":          e.Source(),
		"type":            e.Type(),
		"subject":         e.Subject(),
		"dataschema":      e.DataSchema(),
		"datacontenttype": e.DataContentType(),
		"data":            string(e.Data()),
	}
	if t := e.Time(); !t.IsZero() {
		m["time"] = t.UTC().Format(time.RFC3339Nano)
	}
	for name, v := range e.Extensions() {
		s, err := types.Format(v)
		if err != nil {
			s = fmt.Sprintf("(unformattable %T: %v)", v, err)
		}
		m["extension "+name] = s
	}
	return m
}

// wireHeaders returns the Ce-*, Content-Type and Content-Length headers of h.
func wireHeaders(h http.Header) map[string][]string {
	m := make(map[string][]string)
	for k, v := range h {
		if strings.HasPrefix(k, "Ce-") || k == "Content-Type" || k == "Content-Length" {
			m[k] = v
		}
	}
	return m
}

// diffMaps describes, key by key, how got differs from want; "" when they are equal.
func diffMaps[V any](got, want map[string]V) string {
	keys := make([]string, 0, len(got)+len(want))
	for k := range got {
		keys = append(keys, k)
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			fmt.Fprintf(&b, "\n\t%s: missing, want %#v", k, w)
		case !wok:
			fmt.Fprintf(&b, "\n\t%s: %#v, want none", k, g)
		case !reflect.DeepEqual(g, w):
			fmt.Fprintf(&b, "\n\t%s: %#v, want %#v", k, g, w)
		}
	}
	return b.String()
}

// closeIdleAtEnd closes s's idle connections at test end.
func closeIdleAtEnd(tb testing.TB, s Sender) {
	if c, ok := s.(interface{ CloseIdleConnections() }); ok {
		tb.Cleanup(c.CloseIdleConnections)
	}
}

func TestClientConformsToSDK(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*60*60))
	link, err := url.Parse("https://example.com/things/1?x=y#frag")
	if err != nil {
		t.Fatal(err)
	}
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	tests := []struct {
		name  string
		event cloudevents.Event
		// normalized: header values are trimmed on the wire, so the received event
		// differs from the sent one (but must not differ between the two clients).
		normalized bool
		// sdkRefuses: sdk-go's client (net/http) refuses to send the event; NewClient
		// must refuse it too, as unencodable, without reaching the sink.
		sdkRefuses bool
	}{
		{name: "all attributes and extensions", event: wireEvent(t, "ev-all",
			withAttr(func(e *cloudevents.Event) {
				e.SetSubject("telemetry/temp")
				e.SetDataSchema("https://example.com/schema.json")
				e.SetTime(at)
			}),
			withData("application/json", []byte(`{"temp":21.5}`)),
			withExt("str", "value"),
			withExt("num", int32(42)),
			withExt("neg", int32(-7)),
			withExt("flag", true),
			withExt("off", false),
			withExt("link", types.URI{URL: *link}),
		)},
		{name: "no data", event: wireEvent(t, "ev-nodata")},
		{name: "binary data", event: wireEvent(t, "ev-bin", withData("application/octet-stream", binary))},
		{name: "data without datacontenttype", event: wireEvent(t, "ev-noct",
			withAttr(func(e *cloudevents.Event) { e.DataEncoded = []byte("plain") }))},
		{name: "time with trailing zeros in the fraction", event: wireEvent(t, "ev-time",
			withAttr(func(e *cloudevents.Event) { e.SetTime(at.Truncate(100 * time.Millisecond)) }))},
		{name: "time without fraction", event: wireEvent(t, "ev-time0",
			withAttr(func(e *cloudevents.Event) { e.SetTime(at.Truncate(time.Second)) }))},
		{name: "non-ASCII values", event: wireEvent(t, "ev-utf8",
			withAttr(func(e *cloudevents.Event) { e.SetSubject("Zürich/温度") }),
			withExt("city", "東京"))},
		{name: "event of EventBuilder", event: builtEvent(t, testPublish(), at)},
		{name: "event of EventBuilder, binary payload and odd names", event: builtEvent(t, Publish{
			Application: "app-1",
			Device:      "dev 1/ü%",
			Sender:      "gw:1",
			Channel:     "a/b c",
			ContentType: "application/octet-stream",
			Payload:     binary,
		}, at)},
		{name: "surrounding spaces", normalized: true, event: wireEvent(t, "ev-spaces",
			withAttr(func(e *cloudevents.Event) { e.SetSubject(" \tpadded subject\t ") }),
			withExt("pad", "  a b  "))},
		{name: "embedded CRLF in an extension", sdkRefuses: true, event: wireEvent(t, "ev-crlf",
			withExt("multi", "line1\r\nline2"))},
		{name: "embedded CRLF in the subject", sdkRefuses: true, event: wireEvent(t, "ev-crlf-subject",
			withAttr(func(e *cloudevents.Event) { e.SetSubject("a\r\nb") }))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink(t, true, statuses(http.StatusAccepted))
			ours := newTestClient(t, ClientOptions{Sink: sink.url})
			closeIdleAtEnd(t, ours)
			p, err := cehttp.New(cehttp.WithTarget(sink.url))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Client.CloseIdleConnections)
			sdk, err := cloudevents.NewClient(p)
			if err != nil {
				t.Fatal(err)
			}

			if tt.sdkRefuses {
				sdkRes := sdk.Send(t.Context(), tt.event.Clone())
				if cloudevents.IsACK(sdkRes) {
					t.Fatalf("sdk-go sent the event (%v); the test's premise is wrong", sdkRes)
				}
				res := ours.Send(t.Context(), tt.event.Clone())
				if got := classify(res); got != ErrSinkRejected {
					detail := ""
					if res == nil {
						r := sink.next(t)
						detail = fmt.Sprintf("; the sink received%s", diffMaps(flatEvent(r.event), flatEvent(tt.event)))
					}
					t.Errorf("NewClient: Send = %v, classified %v; want it refused as unencodable "+
						"(ErrSinkRejected) like sdk-go, whose Send fails with %q%s", res, got, sdkRes, detail)
				}
				if n := sink.attempts.Load(); n != 0 {
					t.Errorf("sink saw %d requests, want 0: an event sdk-go cannot send reached the sink", n)
				}
				return
			}

			if res := ours.Send(t.Context(), tt.event.Clone()); res != nil {
				t.Fatalf("NewClient: Send = %v, want nil", res)
			}
			got := sink.next(t)
			if res := sdk.Send(t.Context(), tt.event.Clone()); !cloudevents.IsACK(res) {
				t.Fatalf("sdk-go: Send = %v, want ACK", res)
			}
			want := sink.next(t)

			if d := diffMaps(flatEvent(got.event), flatEvent(want.event)); d != "" {
				t.Errorf("event decoded from NewClient's request differs from sdk-go's:%s", d)
			}
			if d := diffMaps(wireHeaders(got.header), wireHeaders(want.header)); d != "" {
				t.Errorf("NewClient's headers differ from sdk-go's:%s", d)
			}
			if !tt.normalized {
				// Both clients could lose the same thing; the event must arrive as sent.
				if d := diffMaps(flatEvent(got.event), flatEvent(tt.event)); d != "" {
					t.Errorf("received event differs from the one sent:%s", d)
				}
			}
		})
	}
}

func TestClientWireControlCharacters(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*cloudevents.Event) error
	}{
		{"NUL in an extension", withExt("bad", "a\x00b")},
		{"BEL in an extension", withExt("bad", "ring\x07")},
		{"ESC in an extension", withExt("bad", "\x1b[31mred")},
		{"vertical tab in an extension", withExt("bad", "a\x0bb")},
		{"DEL in an extension", withExt("bad", "a\x7fb")},
		{"NUL in the subject", withAttr(func(e *cloudevents.Event) { e.SetSubject("sub\x00ject") })},
		{"NUL in the id", withAttr(func(e *cloudevents.Event) { e.SetID("id\x00") })},
		{"control character in datacontenttype", withAttr(func(e *cloudevents.Event) {
			e.SetDataContentType("text/plain\x01")
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A raw server, which sees the bytes even when net/http's server would
			// refuse the request before any handler.
			headers := make(chan http.Header, 2)
			sink := newRawSink(t, func(c net.Conn, r rawRequest) bool {
				headers <- r.req.Header
				_, err := io.WriteString(c, rawAccepted)
				return err == nil
			})
			s := newTestClient(t, ClientOptions{Sink: sink.url, MaxConnsPerHost: 1})
			closeIdleAtEnd(t, s)
			res := s.Send(t.Context(), wireEvent(t, "ev-bad", tt.mod))
			if got := classify(res); got != ErrSinkRejected {
				t.Errorf("Send = %v, classified %v; want %v", res, got, ErrSinkRejected)
			}
			if n := sink.bytesIn.Load(); n != 0 {
				t.Fatalf("server received %d bytes, want none", n)
			}
			// The refused request must leave nothing behind in the sender's buffers.
			if res := s.Send(t.Context(), wireEvent(t, "ev-good")); res != nil {
				t.Fatalf("Send of a valid event after the refusal = %v, want nil", res)
			}
			if n := sink.requests.Load(); n != 1 {
				t.Fatalf("server read %d requests, want 1", n)
			}
			h := <-headers
			if h.Get("Ce-Id") != "ev-good" || h.Get("Ce-Bad") != "" {
				t.Errorf("after the refusal the server received Ce-Id %q and Ce-Bad %q, want ev-good and none",
					h.Get("Ce-Id"), h.Get("Ce-Bad"))
			}
		})
	}
}

// rawSink is a TCP server speaking HTTP/1.1 by hand, so that tests control every byte
// of the responses.
type rawSink struct {
	url      string
	done     chan struct{} // closed at test end: handlers waiting on it return
	conns    atomic.Int64  // connections accepted
	closed   atomic.Int64  // connections the server is done with (closed)
	open     atomic.Int64  // connections open now
	maxOpen  atomic.Int64  // most connections open at once
	bytesIn  atomic.Int64  // bytes received
	requests atomic.Int64  // requests read
	inFlight atomic.Int64  // requests being answered now
	maxIn    atomic.Int64  // most requests being answered at once
}

// rawRequest is one request a rawSink read.
type rawRequest struct {
	n    int // index among all requests
	conn int // index of its connection
	req  *http.Request
	body []byte
	done <-chan struct{} // closed at test end
}

// rawHandler answers r by writing to c; false closes c.
type rawHandler func(c net.Conn, r rawRequest) (keep bool)

// newRawSink starts a rawSink answering with h, stopped at test end.
func newRawSink(tb testing.TB, h rawHandler) *rawSink {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawSink{url: "http://" + ln.Addr().String() + "/events", done: make(chan struct{})}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		open    = make(map[net.Conn]struct{})
		stopped bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if stopped {
				mu.Unlock()
				_ = c.Close()
				continue
			}
			open[c] = struct{}{}
			mu.Unlock()
			idx := int(s.conns.Add(1)) - 1
			storeMax(&s.maxOpen, s.open.Add(1))
			wg.Go(func() {
				defer func() {
					_ = c.Close()
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					s.open.Add(-1)
					s.closed.Add(1)
				}()
				s.serve(c, idx, h)
			})
		}
	})
	tb.Cleanup(func() {
		close(s.done)
		_ = ln.Close()
		mu.Lock()
		stopped = true
		for c := range open {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// serve reads the requests on c and lets h answer them.
func (s *rawSink) serve(c net.Conn, idx int, h rawHandler) {
	br := bufio.NewReader(countingReader{c, &s.bytesIn})
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		n := int(s.requests.Add(1)) - 1
		storeMax(&s.maxIn, s.inFlight.Add(1))
		keep := h(c, rawRequest{n: n, conn: idx, req: req, body: body, done: s.done})
		s.inFlight.Add(-1)
		if !keep {
			return
		}
	}
}

// countingReader counts the bytes read from r in n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// storeMax raises m to v if v is larger.
func storeMax(m *atomic.Int64, v int64) {
	for {
		old := m.Load()
		if v <= old || m.CompareAndSwap(old, v) {
			return
		}
	}
}

// reply answers the n-th request with resps[n], repeating the last one, keeping the
// connection open.
func reply(resps ...string) rawHandler {
	return func(c net.Conn, r rawRequest) bool {
		_, err := io.WriteString(c, resps[min(r.n, len(resps)-1)])
		return err == nil
	}
}

// rawAccepted is a bodiless 202.
const rawAccepted = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"

// waitFor polls cond for up to 5 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

// sendN sends n events with s, each within 5 s, failing on any error.
func sendN(tb testing.TB, s Sender, n int) {
	tb.Helper()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res := s.Send(ctx, wireEvent(tb, fmt.Sprintf("ev-%d", i)))
		cancel()
		if res != nil {
			tb.Fatalf("Send %d = %v, want nil", i, res)
		}
	}
}

func TestClientWireConnectionReuse(t *testing.T) {
	big := func(n int) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", n, strings.Repeat("x", n))
	}
	tests := []struct {
		name      string
		resps     []string // answers, the last one repeated
		sends     int
		wantConns int64
		refused   bool // the first answer is a refusal
	}{
		// The server keeps reading after Connection: close, so a reuse would be seen.
		{"Connection: close", []string{
			"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", rawAccepted,
		}, 2, 2, false},
		{"HTTP/1.0 response", []string{"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"}, 2, 2, false},
		{"bodiless 2xx", []string{rawAccepted}, 3, 1, false},
		{"chunked 2xx body", []string{
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
		}, 3, 1, false},
		{"chunked 2xx body with trailer", []string{
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n",
		}, 3, 1, false},
		{"small 2xx body", []string{big(16)}, 3, 1, false},
		{"2xx body of 4 KiB + 1", []string{big(4<<10 + 1)}, 2, 2, false},
		{"2xx body of 64 KiB", []string{big(64 << 10)}, 2, 2, false},
		{"100 Continue, then 202", []string{"HTTP/1.1 100 Continue\r\n\r\n" + rawAccepted}, 2, 1, false},
		{"103 Early Hints, then 202", []string{
			"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + rawAccepted,
		}, 2, 1, false},
		{"refusal with a small body", []string{
			"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", rawAccepted,
		}, 2, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newRawSink(t, reply(tt.resps...))
			s := newTestClient(t, ClientOptions{Sink: sink.url})
			closeIdleAtEnd(t, s)
			for i := range tt.sends {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res := s.Send(ctx, wireEvent(t, fmt.Sprintf("ev-%d", i)))
				cancel()
				if wantNil := !tt.refused || i > 0; wantNil != (res == nil) {
					want := "nil"
					if !wantNil {
						want = "a refusal"
					}
					t.Fatalf("Send %d = %v, want %s; the server answered %q to this request and %q to the one before",
						i, res, want, tt.resps[min(i, len(tt.resps)-1)], tt.resps[min(max(i-1, 0), len(tt.resps)-1)])
				}
			}
			if got := sink.requests.Load(); got != int64(tt.sends) {
				t.Errorf("server read %d requests, want %d", got, tt.sends)
			}
			if got := sink.conns.Load(); got != tt.wantConns {
				t.Errorf("server accepted %d connections for %d requests, want %d", got, tt.sends, tt.wantConns)
			}
		})
	}
}

func TestClientWireServerClosedIdleConnection(t *testing.T) {
	tests := []struct {
		name  string
		reset bool // close with RST (linger 0) instead of FIN
	}{
		{"closed with FIN", false},
		{"closed with RST", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Like a keep-alive timeout: the server answers, then closes the connection.
			sink := newRawSink(t, func(c net.Conn, r rawRequest) bool {
				if _, err := io.WriteString(c, rawAccepted); err != nil {
					return false
				}
				if tt.reset {
					_ = c.(*net.TCPConn).SetLinger(0)
				}
				return false
			})
			s := newTestClient(t, ClientOptions{Sink: sink.url})
			closeIdleAtEnd(t, s)
			sendN(t, s, 1)
			waitFor(t, "the server to close the first connection", func() bool { return sink.closed.Load() == 1 })
			time.Sleep(20 * time.Millisecond) // let the FIN or RST reach the client

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if res := s.Send(ctx, wireEvent(t, "ev-1")); res != nil {
				t.Errorf("second Send on the connection the server closed while idle = %v, "+
					"want nil (a transparent retry on a new connection)", res)
			}
			if got := sink.requests.Load(); got != 2 {
				t.Errorf("server read %d requests, want 2", got)
			}
			if got := sink.conns.Load(); got != 2 {
				t.Errorf("server accepted %d connections, want 2", got)
			}
		})
	}
}

func TestClientWireNoRetryAfterPartialResponse(t *testing.T) {
	// A connection that ends within a response is not a stale one: the server read the
	// request, so sending it again would duplicate the event.
	tests := []struct {
		name    string
		partial string // what the server writes to the second request before closing
	}{
		{"within the status line", "HTTP/1.1 20"},
		{"after the status line", "HTTP/1.1 202 Accepted\r\n"},
		{"within the headers", "HTTP/1.1 202 Accepted\r\nContent-Le"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newRawSink(t, func(c net.Conn, r rawRequest) bool {
				if r.req.Header.Get("Ce-Id") == "ev-0" {
					_, err := io.WriteString(c, rawAccepted)
					return err == nil
				}
				_, _ = io.WriteString(c, tt.partial)
				return false
			})
			s := newTestClient(t, ClientOptions{Sink: sink.url})
			closeIdleAtEnd(t, s)
			sendN(t, s, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res := s.Send(ctx, wireEvent(t, "ev-1"))
			if got := classify(res); got != ErrSinkUnavailable {
				t.Errorf("Send cut off within its response = %v, classified %v; want %v", res, got, ErrSinkUnavailable)
			}
			if got := sink.requests.Load(); got != 2 {
				t.Errorf("server read %d requests, want 2 (the cut-off one must not be sent again)", got)
			}
		})
	}
}

func TestClientWireRefusals(t *testing.T) {
	tests := []struct {
		name     string
		resp     string
		code     int
		want     error
		wantText string // in the error's text
	}{
		{"503 with a body", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy",
			503, ErrSinkUnavailable, "busy"},
		{"503 with a chunked body", "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n",
			503, ErrSinkUnavailable, "busy"},
		{"429 without a body", "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n",
			429, ErrSinkUnavailable, "429"},
		{"422 with a body", "HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 9\r\n\r\nbad event",
			422, ErrSinkRejected, "bad event"},
		{"400 after 100 Continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nno!",
			400, ErrSinkRejected, "no!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newRawSink(t, reply(tt.resp))
			s := newTestClient(t, ClientOptions{Sink: sink.url})
			closeIdleAtEnd(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res := s.Send(ctx, wireEvent(t, "ev-0"))
			if res == nil {
				t.Fatalf("Send = nil, want status %d", tt.code)
			}
			if code, ok := StatusCode(res); !ok || code != tt.code {
				t.Errorf("StatusCode(%v) = %d, %v; want %d, true", res, code, ok, tt.code)
			}
			if got := classify(res); got != tt.want {
				t.Errorf("classify(%v) = %v, want %v", res, got, tt.want)
			}
			if !strings.Contains(res.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", res.Error(), tt.wantText)
			}
		})
	}
}

// sendWithin sends an event with s and ctx, failing the test if Send has not returned
// after limit; it returns Send's result and how long it took.
func sendWithin(tb testing.TB, s Sender, ctx context.Context, limit time.Duration) (protocol.Result, time.Duration) {
	tb.Helper()
	e := wireEvent(tb, "ev-stuck")
	start := time.Now()
	done := make(chan protocol.Result, 1)
	go func() { done <- s.Send(ctx, e) }()
	select {
	case res := <-done:
		return res, time.Since(start)
	case <-time.After(limit):
		tb.Fatalf("Send has not returned after %v", limit)
		return nil, 0
	}
}

func TestClientWireContext(t *testing.T) {
	tests := []struct {
		name string
		// ctx returns the context of the Send the server does not answer.
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline of 100 ms", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancelled after 100 ms, no deadline", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		// Forwarder.Close and Forward's caller cancel contexts that carry a deadline.
		{"cancelled after 100 ms, before its deadline of 3 s", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The first request is never answered; later ones are.
			sink := newRawSink(t, stuckFirst)
			// One connection: the next Send succeeds only if the stuck one was given up.
			s := newTestClient(t, ClientOptions{Sink: sink.url, MaxConnsPerHost: 1})
			closeIdleAtEnd(t, s)
			ctx, cancel := tt.ctx()
			defer cancel()
			res, elapsed := sendWithin(t, s, ctx, 5*time.Second)
			if !errors.Is(res, tt.want) {
				t.Errorf("Send = %v, want an error wrapping %v", res, tt.want)
			}
			if got := classify(res); got != ErrSinkUnavailable {
				t.Errorf("classify(%v) = %v, want %v", res, got, ErrSinkUnavailable)
			}
			if elapsed > time.Second {
				t.Errorf("Send returned after %v, want about 100ms", elapsed)
			}
			sendN(t, s, 1)
			if got := sink.conns.Load(); got != 2 {
				t.Errorf("server accepted %d connections, want 2 (the stuck one is not reused)", got)
			}
		})
	}
}

// stuckFirst never answers a raw sink's first request (until the test ends) and accepts the others.
func stuckFirst(c net.Conn, r rawRequest) bool {
	if r.n == 0 {
		<-r.done
		return false
	}
	_, err := io.WriteString(c, rawAccepted)
	return err == nil
}

func TestClientWirePoolWaitHonorsContext(t *testing.T) {
	sink := newRawSink(t, stuckFirst)
	s := newTestClient(t, ClientOptions{Sink: sink.url, MaxConnsPerHost: 1})
	closeIdleAtEnd(t, s)

	stuckCtx, cancelStuck := context.WithCancel(context.Background())
	defer cancelStuck()
	stuck := make(chan error, 1)
	stuckEvent := wireEvent(t, "ev-stuck")
	go func() { stuck <- s.Send(stuckCtx, stuckEvent) }()
	waitFor(t, "the first request", func() bool { return sink.requests.Load() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res, elapsed := sendWithin(t, s, ctx, 5*time.Second)
	if !errors.Is(res, context.DeadlineExceeded) {
		t.Errorf("Send waiting for the only connection = %v, want an error wrapping %v", res, context.DeadlineExceeded)
	}
	if elapsed > time.Second {
		t.Errorf("Send waiting for the only connection returned after %v, want about 100ms", elapsed)
	}

	cancelStuck()
	select {
	case err := <-stuck:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("stuck Send = %v, want an error wrapping %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stuck Send did not return after its context was cancelled")
	}
	sendN(t, s, 1)
	if got := sink.conns.Load(); got != 2 {
		t.Errorf("server accepted %d connections, want 2", got)
	}
}

func TestClientWirePoolBound(t *testing.T) {
	tests := []struct {
		maxConns, sends int
	}{
		{2, 10},
		{1, 5},
		{4, 40},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d conns, %d concurrent sends", tt.maxConns, tt.sends), func(t *testing.T) {
			sink := newRawSink(t, func(c net.Conn, r rawRequest) bool {
				select {
				case <-time.After(50 * time.Millisecond):
				case <-r.done:
					return false
				}
				_, err := io.WriteString(c, rawAccepted)
				return err == nil
			})
			s := newTestClient(t, ClientOptions{Sink: sink.url, MaxConnsPerHost: tt.maxConns})
			closeIdleAtEnd(t, s)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, tt.sends)
			for i := range tt.sends {
				e := wireEvent(t, fmt.Sprintf("ev-%d", i))
				wg.Go(func() {
					if res := s.Send(ctx, e); res != nil {
						errs <- res
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("Send = %v, want nil", err)
			}
			if got := sink.requests.Load(); got != int64(tt.sends) {
				t.Errorf("server read %d requests, want %d", got, tt.sends)
			}
			if got := sink.maxOpen.Load(); got > int64(tt.maxConns) {
				t.Errorf("server saw %d connections open at once, want at most %d", got, tt.maxConns)
			}
			if got := sink.conns.Load(); got > int64(tt.maxConns) {
				t.Errorf("server accepted %d connections, want at most %d (none is discarded here)", got, tt.maxConns)
			}
			if got := sink.maxIn.Load(); got > int64(tt.maxConns) {
				t.Errorf("server answered %d requests at once, want at most %d", got, tt.maxConns)
			}
		})
	}
}

func TestClientWireToken(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		tokenFile string
		want      string // Authorization header
	}{
		{"token file", tok, "Bearer tok"},
		{"token file missing", filepath.Join(dir, "missing"), ""},
		{"no token file", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink(t, true, statuses(http.StatusAccepted))
			s := newTestClient(t, ClientOptions{Sink: sink.url, TokenFile: tt.tokenFile})
			closeIdleAtEnd(t, s)
			if res := s.Send(t.Context(), wireEvent(t, "ev-tok")); res != nil {
				t.Fatalf("Send = %v, want nil", res)
			}
			h := sink.next(t).header
			if got := h.Values("Authorization"); tt.want == "" && len(got) != 0 || tt.want != "" && !slices.Equal(got, []string{tt.want}) {
				t.Errorf("Authorization = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClientWireOverrides(t *testing.T) {
	tests := []struct {
		name      string
		overrides string
		event     cloudevents.Event
		want      map[string]string // extensions received
	}{
		{"upper-case name", `{"extensions":{"Cluster":"east"}}`, wireEvent(t, "ev-1"),
			map[string]string{"cluster": "east"}},
		{"upper-case name replaces the event's extension", `{"extensions":{"Cluster":"east"}}`,
			wireEvent(t, "ev-2", withExt("cluster", "west"), withExt("zone", "a")),
			map[string]string{"cluster": "east", "zone": "a"}},
		{"several overrides", `{"extensions":{"a1":"x","B2":"y"}}`, wireEvent(t, "ev-3"),
			map[string]string{"a1": "x", "b2": "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink(t, true, statuses(http.StatusAccepted))
			s := newTestClient(t, ClientOptions{Sink: sink.url, CEOverrides: tt.overrides})
			closeIdleAtEnd(t, s)
			if res := s.Send(t.Context(), tt.event); res != nil {
				t.Fatalf("Send = %v, want nil", res)
			}
			r := sink.next(t)
			got := make(map[string]string)
			for name, v := range r.event.Extensions() {
				got[name], _ = types.Format(v)
			}
			if d := diffMaps(got, tt.want); d != "" {
				t.Errorf("received extensions differ:%s", d)
			}
			for k, v := range r.header {
				if strings.HasPrefix(k, "Ce-") && len(v) != 1 {
					t.Errorf("header %s sent %d times: %q", k, len(v), v)
				}
			}
		})
	}

	invalid := []string{
		`{"extensions":{"bad-name":"x"}}`,
		`{"extensions":{"Bad_Name":"x"}}`,
		`{"extensions":{"":"x"}}`,
		`{"extensions":{"ünï":"x"}}`,
	}
	for _, ov := range invalid {
		t.Run("invalid "+ov, func(t *testing.T) {
			s, err := NewClient(ClientOptions{Sink: "http://broker", CEOverrides: ov})
			if err == nil || s != nil {
				t.Errorf("NewClient with K_CE_OVERRIDES %s = %v, %v; want an error", ov, s, err)
			}
		})
	}

	// sdk-go refuses an extension named as a core attribute, so Knative's adapter
	// fails every event with such an override. NewClient may refuse the override or
	// the events, but must never send a core attribute twice or replace it.
	for _, name := range []string{"id", "Type", "specversion", "datacontenttype"} {
		t.Run("core attribute "+name, func(t *testing.T) {
			sink := newTestSink(t, true, statuses(http.StatusAccepted))
			s, err := NewClient(ClientOptions{Sink: sink.url, CEOverrides: `{"extensions":{"` + name + `":"x"}}`})
			if err != nil {
				return // refused up front
			}
			closeIdleAtEnd(t, s)
			e := wireEvent(t, "ev-core", withData("text/plain", []byte("hi")))
			res := s.Send(t.Context(), e)
			if res != nil {
				if sink.attempts.Load() != 0 {
					t.Errorf("Send = %v, but the request reached the sink", res)
				}
				return // refused per event
			}
			r := sink.next(t)
			if d := diffMaps(flatEvent(r.event), flatEvent(e)); d != "" {
				t.Errorf("override %q changed the event:%s", name, d)
			}
			for k, v := range r.header {
				if (strings.HasPrefix(k, "Ce-") || k == "Content-Type") && len(v) != 1 {
					t.Errorf("override %q: header %s sent %d times: %q", name, k, len(v), v)
				}
			}
		})
	}
}
