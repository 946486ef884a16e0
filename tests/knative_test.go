package tests

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
	eventingduckv1 "knative.dev/eventing/pkg/apis/duck/v1"
	"knative.dev/eventing/pkg/eventingtls"
	"knative.dev/eventing/pkg/kncloudevents"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// Knative delivery semantics (reference/knative.md §4.2, §7): the real eventing dispatcher, as a
// Broker's Trigger would run it, delivers command events to the running endpoint's sink, with
// retries and a dead-letter sink. Nothing here needs a cluster.

// knProxy stands between the dispatcher and the endpoint's sink. It records the status of every
// delivery attempt and can hold an attempt until the test releases it.
type knProxy struct {
	host     string // host:port the dispatcher sends to
	target   string // the endpoint's HTTP address
	attempts chan int

	mu      sync.Mutex
	arrived int
	codes   []int
	ctypes  []string              // Content-Type of each attempt
	holds   map[int]chan struct{} // attempt number (from 1) → released when closed
}

func newKnProxy(t testing.TB, target string) *knProxy {
	t.Helper()
	p := &knProxy{target: target, attempts: make(chan int, 100), holds: map[int]chan struct{}{}}
	srv := httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(srv.Close)
	p.host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

func (p *knProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.arrived++
	p.ctypes = append(p.ctypes, r.Header.Get("Content-Type"))
	gate := p.holds[p.arrived]
	p.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-time.After(10 * time.Second): // the test failed to release it; go on
		case <-r.Context().Done():
			return
		}
	}
	code, header, body := p.forward(r)
	p.mu.Lock()
	p.codes = append(p.codes, code)
	p.mu.Unlock()
	p.attempts <- code
	maps.Copy(w.Header(), header)
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

func (p *knProxy) forward(r *http.Request) (int, http.Header, []byte) {
	in, err := io.ReadAll(r.Body)
	if err != nil {
		return http.StatusBadGateway, nil, nil
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+p.target+r.URL.RequestURI(), bytes.NewReader(in))
	if err != nil {
		return http.StatusBadGateway, nil, nil
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return http.StatusBadGateway, nil, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// reset forgets earlier attempts and holds.
func (p *knProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.arrived, p.codes, p.ctypes, p.holds = 0, nil, nil, map[int]chan struct{}{}
	for len(p.attempts) > 0 {
		<-p.attempts
	}
}

// hold makes attempt n wait until the returned function is called.
func (p *knProxy) hold(n int) (release func()) {
	g := make(chan struct{})
	p.mu.Lock()
	p.holds[n] = g
	p.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(g) }) }
}

// Codes returns the status of every attempt so far.
func (p *knProxy) Codes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.codes)
}

// ContentTypes returns the Content-Type of every attempt so far.
func (p *knProxy) ContentTypes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ctypes)
}

// nextAttempt waits for the status of the next attempt.
func (p *knProxy) nextAttempt(t testing.TB) int {
	t.Helper()
	select {
	case c := <-p.attempts:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery attempt within 10s")
		return 0
	}
}

// newKnDLS is the dead-letter sink: a CloudEvents receiver that accepts everything.
func newKnDLS(t testing.TB) (host string, events chan cloudevents.Event) {
	t.Helper()
	events = make(chan cloudevents.Event, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		events <- *ev
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), events
}

func knPtr[T any](v T) *T { return &v }

// knEvent is a command event as a function would send it to the Broker.
func knEvent(t testing.TB, device, payload string) cloudevents.Event {
	t.Helper()
	ev := cloudevents.NewEvent()
	ev.SetID(uuid.NewString())
	ev.SetSource("knative-test")
	ev.SetType("io.drogue.command.v1")
	ev.SetSubject("set")
	ev.SetExtension("application", "app1")
	ev.SetExtension("device", device)
	if err := ev.SetData("text/plain", []byte(payload)); err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestKnativeDispatch proves the retry and dead-letter behaviour SPEC §7's status codes give a
// Knative Trigger with retry 2 (three attempts), linear backoff and a dead-letter sink:
// delivered once; an offline device is retried (and receives the command when it connects in
// between) or dead-lettered with 503; an unacknowledged command is retried; unknown devices,
// invalid and expired commands go to the dead-letter sink after exactly one attempt.
func TestKnativeDispatch(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry, Env: map[string]string{"COMMAND_ACK_TIMEOUT": "1s"}})
	proxy := newKnProxy(t, ep.HTTP)
	dlsHost, dead := newKnDLS(t)
	linear := eventingduckv1.BackoffPolicyLinear
	rc, err := kncloudevents.RetryConfigFromDeliverySpec(eventingduckv1.DeliverySpec{
		Retry: knPtr(int32(2)), BackoffPolicy: &linear, BackoffDelay: knPtr("PT0.1S"),
	})
	if err != nil {
		t.Fatal(err)
	}
	dispatcher := kncloudevents.NewDispatcher(eventingtls.NewDefaultClientConfig(), nil)
	jsonFormat := eventingduckv1.DeliveryFormatJson

	tests := []struct {
		name     string
		device   string // the command's target
		edit     func(*cloudevents.Event)
		format   *eventingduckv1.FormatType
		behave   string // "subscribed", "connects" (after the first attempt), "withholds" (the first PUBACK), "" (offline)
		attempts []int  // status of each attempt the sink answers
		dead     int    // knativeerrorcode of the dead-lettered event; 0 = none
		received int    // times the device receives the command
	}{
		{"delivered once", "device1", nil, nil, "subscribed", []int{202}, 0, 1},
		{"structured delivered once", "device1", nil, &jsonFormat, "subscribed", []int{202}, 0, 1},
		{"offline device connects while retried", "sleeper", nil, nil, "connects", []int{503, 202}, 0, 1},
		{"offline device dead-lettered", "sleeper", nil, nil, "", []int{503, 503, 503}, 503, 0},
		{"unacknowledged command retried", "device1", nil, nil, "withholds", []int{504, 202}, 0, 2},
		{"unknown device dead-lettered at once", "nobody", nil, nil, "", []int{422}, 422, 0},
		{"disabled device dead-lettered at once", "off-dev", nil, nil, "", []int{422}, 422, 0},
		{"not a command dead-lettered at once", "device1", func(ev *cloudevents.Event) { ev.SetType("io.drogue.event.v1") }, nil, "subscribed", []int{400}, 400, 0},
		{"expired command dead-lettered at once", "device1", func(ev *cloudevents.Event) {
			ev.SetExtension("expirytime", time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
		}, nil, "subscribed", []int{410}, 410, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdWaitConnections(t, ep, 0)
			proxy.reset()
			ev := knEvent(t, tt.device, tt.name)
			if tt.edit != nil {
				tt.edit(&ev)
			}

			var inbox cmdInbox
			var raw *rawClient
			var release func()
			switch tt.behave {
			case "subscribed":
				c := cmdDial(t, ep, false, "app1", tt.device, nil)
				c.mustSubscribe(t, cmdFilter{"command/inbox//#", 1})
				inbox = c.inbox
			case "connects":
				release = proxy.hold(2)
				defer release()
			case "withholds":
				raw = dialRaw(t, ep.MQTT, 5, tt.device+"@app1", cmdPasswords[tt.device])
				raw.cmdSubscribe(cmdFilter{"command/inbox//#", 1})
			}

			type result struct {
				info *kncloudevents.DispatchInfo
				err  error
			}
			done := make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				opts := []kncloudevents.SendOption{
					kncloudevents.WithRetryConfig(&rc),
					kncloudevents.WithDeadLetterSink(&duckv1.Addressable{URL: apis.HTTP(dlsHost)}),
				}
				if tt.format != nil {
					opts = append(opts, kncloudevents.WithEventFormat(tt.format))
				}
				info, err := dispatcher.SendEvent(ctx, ev, duckv1.Addressable{URL: apis.HTTP(proxy.host)}, opts...)
				done <- result{info, err}
			}()

			switch tt.behave {
			case "connects":
				if code := proxy.nextAttempt(t); code != http.StatusServiceUnavailable {
					t.Fatalf("first attempt answered %d, want 503", code)
				}
				c := cmdDial(t, ep, false, "app1", tt.device, nil)
				c.mustSubscribe(t, cmdFilter{"command/inbox//#", 1})
				inbox = c.inbox
				release()
			case "withholds":
				first := raw.cmdReadPublish() // not acknowledged: the attempt times out
				second := raw.cmdReadPublish()
				if first.payload != tt.name || second.payload != tt.name {
					t.Fatalf("deliveries %q, %q; want the command twice", first.payload, second.payload)
				}
				raw.cmdPuback(second.id)
			}

			var res result
			select {
			case res = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("SendEvent did not return within 30s")
			}
			if res.err != nil {
				t.Fatalf("SendEvent: %v", res.err)
			}
			if got := proxy.Codes(); !slices.Equal(got, tt.attempts) {
				t.Errorf("attempts answered %v, want %v", got, tt.attempts)
			}
			wantCT := "text/plain" // binary mode: the data's own content type
			if tt.format != nil {
				wantCT = "application/cloudevents+json"
			}
			for _, ct := range proxy.ContentTypes() {
				if !strings.HasPrefix(ct, wantCT) {
					t.Errorf("an attempt was sent as %q, want %s", ct, wantCT)
				}
			}

			// SendEvent returns after the dead-letter sink answered: its event is there already.
			select {
			case d := <-dead:
				if tt.dead == 0 {
					t.Fatalf("dead-lettered (knativeerrorcode %v), want delivered", d.Extensions()["knativeerrorcode"])
				}
				knCheckDeadLetter(t, d, ev, tt.dead, proxy.host)
			default:
				if tt.dead != 0 {
					t.Fatalf("nothing dead-lettered, want knativeerrorcode %d", tt.dead)
				}
			}

			switch {
			case inbox != nil:
				for range tt.received {
					inbox.want(t, "command/inbox//set", 1, tt.name)
				}
				inbox.none(t, 300*time.Millisecond)
			case raw != nil:
				if p, err := raw.tryRead(300 * time.Millisecond); err == nil {
					t.Errorf("unexpected packet type %d after the acknowledged retry", p.typ)
				}
			}
		})
	}
}

// knCheckDeadLetter checks a dead-lettered event: the original command with the error
// extensions of the dispatcher, and the sink's plain-text reason as error data.
func knCheckDeadLetter(t *testing.T, d, sent cloudevents.Event, code int, dest string) {
	t.Helper()
	x := d.Extensions()
	if got := fmt.Sprint(x["knativeerrorcode"]); got != strconv.Itoa(code) {
		t.Errorf("knativeerrorcode %q, want %d", got, code)
	}
	if got := fmt.Sprint(x["knativeerrordest"]); !strings.Contains(got, dest) {
		t.Errorf("knativeerrordest %q, want the sink %s", got, dest)
	}
	reason, err := base64.StdEncoding.DecodeString(fmt.Sprint(x["knativeerrordata"]))
	if err != nil || len(bytes.TrimSpace(reason)) == 0 || bytes.Contains(bytes.TrimSpace(reason), []byte("\n")) {
		t.Errorf("knativeerrordata %q (%v), want the one-line reason", reason, err)
	}
	if d.ID() != sent.ID() || d.Type() != sent.Type() || d.Subject() != sent.Subject() || !bytes.Equal(d.Data(), sent.Data()) {
		t.Errorf("dead-lettered event %s, want the command %s", d, sent)
	}
}
