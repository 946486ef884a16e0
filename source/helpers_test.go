package source

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// received is one request a testSink accepted as a CloudEvent.
type received struct {
	event  cloudevents.Event
	header http.Header
}

// testSink is an httptest CloudEvents receiver answering by script.
type testSink struct {
	srv      *httptest.Server
	url      string
	attempts atomic.Int64 // requests seen
	conns    atomic.Int64 // TCP connections accepted
	events   chan received
}

// respondFunc answers the attempt-th request (0-based) of a testSink.
type respondFunc func(attempt int, w http.ResponseWriter, r *http.Request)

// statuses answers the n-th request with codes[n], repeating the last code.
func statuses(codes ...int) respondFunc {
	return func(attempt int, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(codes[min(attempt, len(codes)-1)])
	}
}

// newTestSink starts a sink that parses every request as a CloudEvent (400 if
// it is none), records it when record is set, and then lets respond answer.
func newTestSink(tb testing.TB, record bool, respond respondFunc) *testSink {
	tb.Helper()
	s := &testSink{events: make(chan received, 1024)}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.attempts.Add(1)) - 1
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if record {
			select {
			case s.events <- received{event: *e, header: r.Header.Clone()}:
			default:
				tb.Errorf("test sink: event buffer full")
			}
		}
		respond(n, w, r)
	}))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.srv.Start()
	tb.Cleanup(s.srv.Close)
	s.url = s.srv.URL
	return s
}

// next returns the next recorded event, failing after a few seconds.
func (s *testSink) next(tb testing.TB) received {
	tb.Helper()
	select {
	case r := <-s.events:
		return r
	case <-time.After(5 * time.Second):
		tb.Fatal("test sink: no event received")
		return received{}
	}
}

// newTestClient returns a NewClient Sender for sink url.
func newTestClient(tb testing.TB, o ClientOptions) Sender {
	tb.Helper()
	c, err := NewClient(o)
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	return c
}

// senderFunc adapts a function to Sender.
type senderFunc func(ctx context.Context, e cloudevents.Event) protocol.Result

func (f senderFunc) Send(ctx context.Context, e cloudevents.Event) protocol.Result {
	return f(ctx, e)
}

// httpResult is the result the SDK returns for an HTTP answer with code.
func httpResult(code int) protocol.Result {
	if code/100 == 2 {
		return cehttp.NewResult(code, "%w", protocol.ResultACK)
	}
	return cehttp.NewResult(code, "%w", protocol.ResultNACK)
}

// testPublish is a valid publish of device my-dev_1 in app1.
func testPublish() Publish {
	return Publish{
		Application: "app1",
		Device:      "my-dev_1",
		Channel:     "telemetry",
		Payload:     []byte(`{"temp":21.5}`),
	}
}

// closeForwarder closes f at test end, failing if it does not drain in time.
func closeForwarder(tb testing.TB, f *Forwarder) {
	tb.Helper()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := f.Close(ctx); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
}
