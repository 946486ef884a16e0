package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	"github.com/google/uuid"
)

func TestForward(t *testing.T) {
	tests := []struct {
		name         string
		respond      respondFunc
		retries      int
		wantErr      error // nil, ErrSinkUnavailable or ErrSinkRejected
		wantStatus   int   // the status carried by the error
		wantAttempts int64
	}{
		{name: "202", respond: statuses(202), wantAttempts: 1},
		{name: "200", respond: statuses(200), wantAttempts: 1},
		{name: "204", respond: statuses(204), wantAttempts: 1},
		{name: "503 then 202: retry succeeds", respond: statuses(503, 202), wantAttempts: 2},
		{name: "500, 429 then 200", respond: statuses(500, 429, 200), wantAttempts: 3},
		{name: "404 then 202 (Knative retries 404)", respond: statuses(404, 202), wantAttempts: 2},
		{name: "always 503", respond: statuses(503), wantErr: ErrSinkUnavailable, wantStatus: 503, wantAttempts: 3},
		{name: "always 503, 4 retries", respond: statuses(503), retries: 4, wantErr: ErrSinkUnavailable, wantStatus: 503, wantAttempts: 5},
		{name: "503 without retries", respond: statuses(503), retries: -1, wantErr: ErrSinkUnavailable, wantStatus: 503, wantAttempts: 1},
		{name: "503 then 400", respond: statuses(503, 400), wantErr: ErrSinkRejected, wantStatus: 400, wantAttempts: 2},
		{name: "400 not retried", respond: statuses(400), wantErr: ErrSinkRejected, wantStatus: 400, wantAttempts: 1},
		{name: "413 not retried", respond: statuses(413), wantErr: ErrSinkRejected, wantStatus: 413, wantAttempts: 1},
		{name: "422 not retried", respond: statuses(422), wantErr: ErrSinkRejected, wantStatus: 422, wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink(t, false, tt.respond)
			f := NewForwarder(newTestClient(t, ClientOptions{Sink: sink.url}), Options{
				Retries: tt.retries, Backoff: time.Millisecond, Timeout: 5 * time.Second,
			})
			closeForwarder(t, f)

			err := f.Forward(t.Context(), testPublish())

			if got := sink.attempts.Load(); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Forward = %v, want nil", err)
				}
				if s := f.Stats(); s.Sent != 1 || s.Failed != 0 || s.Retried != uint64(tt.wantAttempts-1) {
					t.Errorf("Stats = %+v, want 1 sent, %d retried", s, tt.wantAttempts-1)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Forward = %v, want %v", err, tt.wantErr)
			}
			if code, _ := StatusCode(err); code != tt.wantStatus {
				t.Errorf("StatusCode(%v) = %d, want %d", err, code, tt.wantStatus)
			}
			if s := f.Stats(); s.Sent != 0 || s.Failed != 1 || s.InFlight != 0 {
				t.Errorf("Stats = %+v, want 1 failed", s)
			}
		})
	}
}

func TestForwardEventAtSink(t *testing.T) {
	sink := newTestSink(t, true, statuses(http.StatusAccepted))
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewForwarder(newTestClient(t, ClientOptions{Sink: sink.url}), Options{
		Instance: "inst-1",
		Now:      func() time.Time { return now },
	})
	closeForwarder(t, f)

	tests := []struct {
		name    string
		p       Publish
		wantCT  string
		wantExt map[string]any
		source  string
	}{
		{
			name: "gateway on behalf, JSON sniffed",
			p: Publish{
				Application: "app1", ApplicationUID: "au", Device: "dev-d", DeviceUID: "du", Sender: "gw_g", SenderUID: "gu",
				Channel: "telemetry", Payload: []byte(`{"temp":42}`),
			},
			wantCT: "application/json",
			source: "drogue://app1/dev%2Dd",
			wantExt: map[string]any{
				"application": "app1", "applicationuid": "au", "device": "dev-d", "deviceuid": "du",
				"sender": "gw_g", "senderuid": "gu", "partitionkey": "app1/gw%5Fg", "instance": "inst-1",
			},
		},
		{
			name:   "binary payload with v5 content type",
			p:      Publish{Application: "app1", Device: "d", Channel: "raw", ContentType: "image/png", Payload: []byte{0x89, 'P', 'N', 'G', 0}},
			wantCT: "image/png",
			source: "drogue://app1/d",
			wantExt: map[string]any{
				"application": "app1", "device": "d", "sender": "d", "partitionkey": "app1/d", "instance": "inst-1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.Forward(t.Context(), tt.p); err != nil {
				t.Fatalf("Forward: %v", err)
			}
			e := sink.next(t).event
			if e.Source() != tt.source || e.Type() != TypeEvent || e.Subject() != tt.p.Channel || e.DataContentType() != tt.wantCT {
				t.Errorf("source, type, subject, ct = %q %q %q %q", e.Source(), e.Type(), e.Subject(), e.DataContentType())
			}
			if !e.Time().Equal(now) {
				t.Errorf("time = %v, want %v", e.Time(), now)
			}
			if _, err := uuid.Parse(e.ID()); err != nil {
				t.Errorf("id %q: %v", e.ID(), err)
			}
			if string(e.Data()) != string(tt.p.Payload) {
				t.Errorf("data = %q, want %q", e.Data(), tt.p.Payload)
			}
			if len(e.Extensions()) != len(tt.wantExt) {
				t.Errorf("extensions = %v, want %v", e.Extensions(), tt.wantExt)
			}
			for k, v := range tt.wantExt {
				if got := e.Extensions()[k]; got != v {
					t.Errorf("extension %s = %v, want %v", k, got, v)
				}
			}
		})
	}
}

func TestForwardSlowSink(t *testing.T) {
	tests := []struct {
		name         string
		retries      int
		wantAttempts int64
	}{
		{"no retries", -1, 1},
		{"one retry", 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			sink := newTestSink(t, false, func(_ int, w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
				w.WriteHeader(http.StatusAccepted)
			})
			t.Cleanup(func() { close(release) }) // before the server closes
			f := NewForwarder(newTestClient(t, ClientOptions{Sink: sink.url}), Options{
				Timeout: 50 * time.Millisecond, Retries: tt.retries, Backoff: time.Millisecond,
			})
			start := time.Now()
			err := f.Forward(t.Context(), testPublish())
			if !errors.Is(err, ErrSinkUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Forward = %v, want ErrSinkUnavailable and DeadlineExceeded", err)
			}
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("Forward took %v", elapsed)
			}
			if got := sink.attempts.Load(); got != tt.wantAttempts {
				t.Errorf("attempts = %d, want %d", got, tt.wantAttempts)
			}
		})
	}
}

func TestForwardNilOnlyOn2xx(t *testing.T) {
	codes := []int{100, 101, 200, 201, 202, 203, 204, 206, 299, 300, 301, 302, 304, 307, 308,
		400, 401, 403, 404, 405, 408, 409, 410, 413, 415, 422, 425, 429, 451, 499,
		500, 501, 502, 503, 504, 507, 599}
	for _, code := range codes {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			s := senderFunc(func(context.Context, cloudevents.Event) protocol.Result { return httpResult(code) })
			f := NewForwarder(s, Options{Backoff: time.Microsecond})
			closeForwarder(t, f)
			err := f.Forward(t.Context(), testPublish())
			if ok := code >= 200 && code < 300; (err == nil) != ok {
				t.Errorf("Forward with sink answering %d = %v", code, err)
			}
		})
	}
}

func TestForwardAgainstRealStatuses(t *testing.T) {
	// Same property through HTTP: only a 2xx answer yields nil.
	for _, code := range []int{200, 202, 204, 301, 400, 404, 410, 500, 503} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			sink := newTestSink(t, false, statuses(code))
			f := NewForwarder(newTestClient(t, ClientOptions{Sink: sink.url}), Options{Backoff: time.Millisecond})
			closeForwarder(t, f)
			err := f.Forward(t.Context(), testPublish())
			if ok := code/100 == 2; (err == nil) != ok {
				t.Errorf("Forward with sink answering %d = %v", code, err)
			}
		})
	}
}

func TestForwardTransportError(t *testing.T) {
	sink := newTestSink(t, false, statuses(202))
	url := sink.url
	sink.srv.Close() // nothing listens there any more
	f := NewForwarder(newTestClient(t, ClientOptions{Sink: url}), Options{Backoff: time.Millisecond})
	closeForwarder(t, f)
	err := f.Forward(t.Context(), testPublish())
	if !errors.Is(err, ErrSinkUnavailable) {
		t.Fatalf("Forward = %v, want ErrSinkUnavailable", err)
	}
	if s := f.Stats(); s.Retried != DefaultRetries || s.Failed != 1 {
		t.Errorf("Stats = %+v, want %d retries and 1 failure", s, DefaultRetries)
	}
}

func TestForwardNotReady(t *testing.T) {
	f := NewForwarder(nil, Options{})
	if err := f.Ready(); !errors.Is(err, ErrNotReady) {
		t.Errorf("Ready = %v, want ErrNotReady", err)
	}
	if err := f.Forward(t.Context(), testPublish()); !errors.Is(err, ErrNotReady) {
		t.Errorf("Forward = %v, want ErrNotReady", err)
	}
	if f.ForwardAsync(testPublish(), nil) {
		t.Error("ForwardAsync = true, want false")
	}
	if s := f.Stats(); s.Dropped != 1 {
		t.Errorf("Stats = %+v, want 1 dropped", s)
	}
	if err := f.Close(t.Context()); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestForwardInvalidPublish(t *testing.T) {
	var calls atomic.Int64
	s := senderFunc(func(context.Context, cloudevents.Event) protocol.Result {
		calls.Add(1)
		return httpResult(202)
	})
	f := NewForwarder(s, Options{})
	closeForwarder(t, f)
	tests := []struct {
		name string
		p    Publish
		want error
	}{
		{"invalid JSON", Publish{Application: "a", Device: "d", ContentType: "application/json", Payload: []byte("{")}, ErrPayloadInvalid},
		{"no device", Publish{Application: "a", Payload: []byte("{}")}, ErrInvalidPublish},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.Forward(t.Context(), tt.p); !errors.Is(err, tt.want) {
				t.Errorf("Forward = %v, want %v", err, tt.want)
			}
			if f.ForwardAsync(tt.p, nil) {
				t.Error("ForwardAsync = true, want false")
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("sender called %d times, want 0", n)
	}
	if s := f.Stats(); s.Dropped != uint64(len(tests)) || s.Failed != 0 {
		t.Errorf("Stats = %+v, want %d dropped", s, len(tests))
	}
}

func TestForwardContextCancelledDuringBackoff(t *testing.T) {
	attempted := make(chan struct{}, 1)
	s := senderFunc(func(context.Context, cloudevents.Event) protocol.Result {
		attempted <- struct{}{}
		return httpResult(503)
	})
	f := NewForwarder(s, Options{Backoff: time.Hour})
	closeForwarder(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-attempted
		cancel()
	}()
	err := f.Forward(ctx, testPublish())
	if !errors.Is(err, ErrSinkUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Forward = %v, want ErrSinkUnavailable and Canceled", err)
	}
	if code, _ := StatusCode(err); code != 503 {
		t.Errorf("last status = %d, want 503", code)
	}
}

// blockingSender blocks every Send until release is closed or ctx is done.
type blockingSender struct {
	started chan string // event ids, as sends start
	release chan struct{}
}

func newBlockingSender() *blockingSender {
	return &blockingSender{started: make(chan string, 16), release: make(chan struct{})}
}

func (b *blockingSender) Send(ctx context.Context, e cloudevents.Event) protocol.Result {
	b.started <- e.ID()
	select {
	case <-b.release:
		return httpResult(http.StatusAccepted)
	case <-ctx.Done():
		return protocol.NewReceipt(false, "%w", ctx.Err())
	}
}

func waitStarted(tb testing.TB, b *blockingSender) {
	tb.Helper()
	select {
	case <-b.started:
	case <-time.After(5 * time.Second):
		tb.Fatal("no send started")
	}
}

func TestForwardAsyncQueueFull(t *testing.T) {
	s := newBlockingSender()
	f := NewForwarder(s, Options{AsyncWorkers: 1, AsyncQueue: 1})

	if !f.ForwardAsync(testPublish(), nil) {
		t.Fatal("first ForwardAsync = false")
	}
	waitStarted(t, s) // the only worker is now busy
	if !f.ForwardAsync(testPublish(), nil) {
		t.Fatal("second ForwardAsync = false, want queued")
	}
	if f.ForwardAsync(testPublish(), nil) {
		t.Fatal("third ForwardAsync = true, want dropped")
	}
	if st := f.Stats(); st.Dropped != 1 || st.Queued != 1 || st.InFlight != 1 {
		t.Errorf("Stats = %+v, want 1 dropped, 1 queued, 1 in flight", st)
	}

	close(s.release)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if st := f.Stats(); st.Sent != 2 || st.Dropped != 1 || st.Queued != 0 || st.InFlight != 0 {
		t.Errorf("Stats after Close = %+v, want 2 sent, 1 dropped", st)
	}
	if f.ForwardAsync(testPublish(), nil) {
		t.Error("ForwardAsync after Close = true")
	}
	if err := f.Ready(); !errors.Is(err, ErrClosed) {
		t.Errorf("Ready after Close = %v, want ErrClosed", err)
	}
}

// TestForwardMaxInFlight: while the sink is stuck, Forward refuses beyond MaxInFlight at once
// instead of piling up requests, and accepts again once the sink answers.
func TestForwardMaxInFlight(t *testing.T) {
	s := newBlockingSender()
	f := NewForwarder(s, Options{MaxInFlight: 2})
	results := make(chan error, 2)
	for range 2 {
		go func() { results <- f.Forward(t.Context(), testPublish()) }()
		waitStarted(t, s)
	}
	if err := f.Forward(t.Context(), testPublish()); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third Forward while two are stuck = %v, want ErrQueueFull", err)
	}
	close(s.release)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("stuck Forward after release = %v", err)
		}
	}
	if err := f.Forward(t.Context(), testPublish()); err != nil {
		t.Fatalf("Forward after the sink recovered = %v", err)
	}
}

func TestForwardAsyncDelivers(t *testing.T) {
	const n = 200
	sink := newTestSink(t, true, statuses(http.StatusAccepted))
	f := NewForwarder(newTestClient(t, ClientOptions{Sink: sink.url}), Options{AsyncWorkers: 8})
	for i := range n {
		p := testPublish()
		p.Channel = fmt.Sprint("c", i)
		if !f.ForwardAsync(p, nil) {
			t.Fatalf("ForwardAsync %d dropped", i)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if st := f.Stats(); st.Sent != n || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("Stats = %+v, want %d sent", st, n)
	}
	seen := make(map[string]bool)
	for range n {
		seen[sink.next(t).event.Subject()] = true
	}
	if len(seen) != n {
		t.Errorf("sink saw %d distinct events, want %d", len(seen), n)
	}
}

func TestCloseGivesUp(t *testing.T) {
	s := newBlockingSender()
	f := NewForwarder(s, Options{AsyncWorkers: 1, AsyncQueue: 4, Timeout: time.Hour})
	for range 3 {
		if !f.ForwardAsync(testPublish(), nil) {
			t.Fatal("ForwardAsync = false")
		}
	}
	waitStarted(t, s)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := f.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	// The running send is cancelled and the two queued events are dropped.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := f.Stats()
		if st.Failed == 1 && st.Dropped == 2 && st.InFlight == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stats = %+v, want 1 failed and 2 dropped", st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestForwardAfterClose(t *testing.T) {
	sink := newTestSink(t, false, statuses(202))
	f := NewForwarder(newTestClient(t, ClientOptions{Sink: sink.url}), Options{})
	if err := f.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(t.Context()); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := f.Forward(t.Context(), testPublish()); err != nil {
		t.Errorf("Forward after Close = %v, want nil", err)
	}
}

func BenchmarkForward(b *testing.B) {
	sink := newTestSink(b, false, statuses(http.StatusAccepted))
	f := NewForwarder(newTestClient(b, ClientOptions{Sink: sink.url}), Options{})
	closeForwarder(b, f)
	p := Publish{Application: "app1", Device: "device-1", Channel: "telemetry", Payload: jsonPayload256}
	ctx := b.Context()
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Payload)))
	b.SetParallelism(16) // 16 × GOMAXPROCS concurrent publishers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f.Forward(ctx, p); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(sink.conns.Load()), "conns")
}

// TestSubmit: the sink's answer reaches done; refusals at once are returned and done is not called.
func TestSubmit(t *testing.T) {
	if err := NewForwarder(nil, Options{}).Submit(testPublish(), func(error) { t.Error("done called") }); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Submit without a sink = %v, want ErrNotReady", err)
	}
	s := newBlockingSender()
	f := NewForwarder(s, Options{MaxInFlight: 1, Retries: -1})
	done := make(chan error, 2)
	if err := f.Submit(testPublish(), func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	waitStarted(t, s)
	if err := f.Submit(testPublish(), func(error) { t.Error("done called") }); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit beyond MaxInFlight = %v, want ErrQueueFull", err)
	}
	close(s.release)
	if err := <-done; err != nil {
		t.Fatalf("done(%v), want nil after the sink accepted", err)
	}
	failing := NewForwarder(senderFunc(func(context.Context, cloudevents.Event) protocol.Result {
		return httpResult(http.StatusServiceUnavailable)
	}), Options{Retries: -1})
	if err := failing.Submit(testPublish(), func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrSinkUnavailable) {
		t.Fatalf("done(%v), want ErrSinkUnavailable", err)
	}
}
