package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDeliverer records the commands the sink hands over and answers with a scripted error.
type fakeDeliverer struct {
	err error

	mu        sync.Mutex
	got       []Command
	deadlines []time.Duration // time left on each Deliver's context
}

func (f *fakeDeliverer) Deliver(ctx context.Context, c Command) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, c)
	left := time.Duration(-1)
	if d, ok := ctx.Deadline(); ok {
		left = time.Until(d)
	}
	f.deadlines = append(f.deadlines, left)
	return f.err
}

func (f *fakeDeliverer) commands() []Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Command(nil), f.got...)
}

// validAttrs are the context attributes of a valid command event, in binary-mode header form.
var validAttrs = map[string]string{
	"specversion": "1.0",
	"id":          "cmd-1",
	"source":      "test",
	"type":        TypeCommand,
	"subject":     "set",
	"application": "app1",
	"device":      "device1",
}

// withAttrs returns validAttrs changed by edits: a value "" removes the attribute.
func withAttrs(edits map[string]string) map[string]string {
	out := maps.Clone(validAttrs)
	for k, v := range edits {
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// binaryCE is a binary-mode CloudEvents POST: attributes as ce- headers, the body is the data.
func binaryCE(attrs map[string]string, contentType string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	for k, v := range attrs {
		r.Header.Set("ce-"+k, v)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// structuredCE is a structured-mode CloudEvents POST of attrs plus the JSON members in extra.
func structuredCE(t *testing.T, attrs map[string]string, extra map[string]any) *http.Request {
	t.Helper()
	doc := map[string]any{}
	for k, v := range attrs {
		doc[k] = v
	}
	maps.Copy(doc, extra)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(b))
	r.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	return r
}

// restCommand is a POST of the REST form; path and query are used as given (already escaped).
func restCommand(pathAndQuery, contentType string, body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/command/v1alpha1/apps/"+pathAndQuery, bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// serve runs one request through the sink and returns the response.
func serve(t *testing.T, d Deliverer, opts Options, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	Routes(d, opts).ServeHTTP(w, r)
	return w
}

// checkBody asserts SPEC §7's response bodies: empty on 2xx (never a reply event), one short
// line of plain text otherwise.
func checkBody(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	body := w.Body.String()
	if w.Code/100 == 2 {
		if body != "" {
			t.Errorf("2xx body = %q, want empty", body)
		}
		return
	}
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type of a %d = %q, want text/plain", w.Code, ct)
	}
	line := strings.TrimSuffix(body, "\n")
	if line == "" || strings.Contains(line, "\n") || len(line) > 300 {
		t.Errorf("body of a %d = %q, want one short line", w.Code, body)
	}
}

// TestHandlerParsesCommand checks that every accepted form becomes the same Command fields.
func TestHandlerParsesCommand(t *testing.T) {
	future := time.Date(2100, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		req  func(t *testing.T) *http.Request
		want Command
	}{
		{
			name: "binary JSON",
			req: func(*testing.T) *http.Request {
				return binaryCE(validAttrs, "application/json", []byte(`{"on":true}`))
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", ContentType: "application/json", Payload: []byte(`{"on":true}`)},
		},
		{
			name: "binary bytes",
			req: func(*testing.T) *http.Request {
				return binaryCE(validAttrs, "application/octet-stream", []byte{0, 0xff, 1})
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", ContentType: "application/octet-stream", Payload: []byte{0, 0xff, 1}},
		},
		{
			name: "binary without content type",
			req: func(*testing.T) *http.Request {
				return binaryCE(validAttrs, "", []byte("raw"))
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", Payload: []byte("raw")},
		},
		{
			name: "binary name with slash and alias",
			req: func(*testing.T) *http.Request {
				return binaryCE(withAttrs(map[string]string{"subject": "a/b", "device": "dev1-alias"}), "text/plain", []byte("x"))
			},
			want: Command{Application: "app1", Device: "dev1-alias", Name: "a/b", ContentType: "text/plain", Payload: []byte("x")},
		},
		{
			name: "binary expirytime",
			req: func(*testing.T) *http.Request {
				return binaryCE(withAttrs(map[string]string{"expirytime": future.Format(time.RFC3339)}), "text/plain", []byte("x"))
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", ContentType: "text/plain", Payload: []byte("x"), Expires: future},
		},
		{
			name: "structured JSON data",
			req: func(t *testing.T) *http.Request {
				return structuredCE(t, validAttrs, map[string]any{"datacontenttype": "application/json", "data": map[string]any{"on": true}})
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", ContentType: "application/json", Payload: []byte(`{"on":true}`)},
		},
		{
			name: "structured base64 data",
			req: func(t *testing.T) *http.Request {
				return structuredCE(t, validAttrs, map[string]any{"datacontenttype": "application/octet-stream", "data_base64": "AP8B"})
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", ContentType: "application/octet-stream", Payload: []byte{0, 0xff, 1}},
		},
		{
			name: "structured text data",
			req: func(t *testing.T) *http.Request {
				return structuredCE(t, validAttrs, map[string]any{"datacontenttype": "text/plain", "data": "on"})
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", ContentType: "text/plain", Payload: []byte("on")},
		},
		{
			name: "structured expirytime",
			req: func(t *testing.T) *http.Request {
				return structuredCE(t, withAttrs(map[string]string{"expirytime": future.Format(time.RFC3339)}), nil)
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", Expires: future},
		},
		{
			name: "rest",
			req: func(*testing.T) *http.Request {
				return restCommand("app1/devices/device1?command=set", "text/plain", []byte("on"))
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", ContentType: "text/plain", Payload: []byte("on")},
		},
		{
			name: "rest without content type or body",
			req: func(*testing.T) *http.Request {
				return restCommand("app1/devices/device1?command=set", "", nil)
			},
			want: Command{Application: "app1", Device: "device1", Name: "set", Payload: []byte{}},
		},
		{
			name: "rest escaped name",
			req: func(*testing.T) *http.Request {
				return restCommand("app1/devices/device1?command=a%2Fb%20c", "", []byte("x"))
			},
			want: Command{Application: "app1", Device: "device1", Name: "a/b c", Payload: []byte("x")},
		},
		{
			name: "rest escaped space in device",
			req: func(*testing.T) *http.Request {
				return restCommand("app1/devices/my%20dev?command=set", "", []byte("x"))
			},
			want: Command{Application: "app1", Device: "my dev", Name: "set", Payload: []byte("x")},
		},
		{
			name: "rest escaped slash in device",
			req: func(*testing.T) *http.Request {
				return restCommand("app1/devices/dev%2Fx?command=set", "", []byte("x"))
			},
			want: Command{Application: "app1", Device: "dev/x", Name: "set", Payload: []byte("x")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDeliverer{}
			w := serve(t, d, Options{}, tt.req(t))
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d (%q), want 202", w.Code, w.Body.String())
			}
			checkBody(t, w)
			got := d.commands()
			if len(got) != 1 {
				t.Fatalf("delivered %d commands, want 1", len(got))
			}
			c := got[0]
			if isJSON(tt.want.ContentType) && jsonEqual(c.Payload, tt.want.Payload) {
				c.Payload = tt.want.Payload // JSON data is compared by value
			}
			if !c.Expires.Equal(tt.want.Expires) {
				t.Errorf("Expires = %v, want %v", c.Expires, tt.want.Expires)
			}
			c.Expires = tt.want.Expires
			if len(c.Payload) == 0 && len(tt.want.Payload) == 0 {
				c.Payload = tt.want.Payload
			}
			if !reflect.DeepEqual(c, tt.want) {
				t.Errorf("command\n got %+v (payload %q)\nwant %+v (payload %q)", c, c.Payload, tt.want, tt.want.Payload)
			}
		})
	}
}

func isJSON(ct string) bool { return strings.HasPrefix(ct, "application/json") }

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// TestHandlerStatus drives every status of SPEC §7 through HTTP, with the Deliverer scripted
// where the outcome is the delivery's.
func TestHandlerStatus(t *testing.T) {
	now := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	const limit = 1024
	tests := []struct {
		name    string
		req     func(t *testing.T) *http.Request
		deliver error // the Deliverer's answer
		want    int
		handed  bool // the command reached the Deliverer
	}{
		{"delivered", func(*testing.T) *http.Request { return binaryCE(validAttrs, "text/plain", []byte("on")) }, nil, 202, true},
		{"delivered rest", func(*testing.T) *http.Request {
			return restCommand("app1/devices/device1?command=set", "", []byte("on"))
		}, nil, 202, true},
		{"body exactly at the limit", func(*testing.T) *http.Request {
			return binaryCE(validAttrs, "application/octet-stream", make([]byte, limit))
		}, nil, 202, true},

		{"not a CloudEvent", func(*testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("hello"))
			r.Header.Set("Content-Type", "text/plain")
			return r
		}, nil, 400, false},
		{"structured not JSON", func(*testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{not json"))
			r.Header.Set("Content-Type", "application/cloudevents+json")
			return r
		}, nil, 400, false},
		{"missing id", func(*testing.T) *http.Request {
			return binaryCE(withAttrs(map[string]string{"id": ""}), "text/plain", []byte("on"))
		}, nil, 400, false},
		{"missing source", func(t *testing.T) *http.Request {
			return structuredCE(t, withAttrs(map[string]string{"source": ""}), nil)
		}, nil, 400, false},
		{"wrong type", func(*testing.T) *http.Request {
			return binaryCE(withAttrs(map[string]string{"type": "io.drogue.event.v1"}), "text/plain", []byte("on"))
		}, nil, 400, false},
		{"missing application", func(*testing.T) *http.Request {
			return binaryCE(withAttrs(map[string]string{"application": ""}), "text/plain", []byte("on"))
		}, nil, 400, false},
		{"missing device", func(*testing.T) *http.Request {
			return binaryCE(withAttrs(map[string]string{"device": ""}), "text/plain", []byte("on"))
		}, nil, 400, false},
		{"device not a string", func(t *testing.T) *http.Request {
			return structuredCE(t, withAttrs(map[string]string{"device": ""}), map[string]any{"device": 7})
		}, nil, 400, false},
		{"missing subject", func(*testing.T) *http.Request {
			return binaryCE(withAttrs(map[string]string{"subject": ""}), "text/plain", []byte("on"))
		}, nil, 400, false},
		{"structured missing subject", func(t *testing.T) *http.Request {
			return structuredCE(t, withAttrs(map[string]string{"subject": ""}), nil)
		}, nil, 400, false},
		{"expirytime not a time", func(*testing.T) *http.Request {
			return binaryCE(withAttrs(map[string]string{"expirytime": "tomorrow"}), "text/plain", []byte("on"))
		}, nil, 400, false},
		{"rest without command", func(*testing.T) *http.Request { return restCommand("app1/devices/device1", "", []byte("on")) }, nil, 400, false},
		{"rest with empty command", func(*testing.T) *http.Request { return restCommand("app1/devices/device1?command=", "", []byte("on")) }, nil, 400, false},

		{"expired", func(*testing.T) *http.Request {
			return binaryCE(withAttrs(map[string]string{"expirytime": now.Add(-time.Second).Format(time.RFC3339)}), "text/plain", []byte("on"))
		}, nil, 410, false},
		{"expires now", func(*testing.T) *http.Request {
			return binaryCE(withAttrs(map[string]string{"expirytime": now.Format(time.RFC3339)}), "text/plain", []byte("on"))
		}, nil, 410, false},
		{"not yet expired", func(*testing.T) *http.Request {
			return binaryCE(withAttrs(map[string]string{"expirytime": now.Add(time.Second).Format(time.RFC3339)}), "text/plain", []byte("on"))
		}, nil, 202, true},
		{"expired by the deliverer", func(*testing.T) *http.Request { return binaryCE(validAttrs, "", nil) }, ErrExpired, 410, true},

		{"binary body over the limit", func(*testing.T) *http.Request {
			return binaryCE(validAttrs, "application/octet-stream", make([]byte, limit+1))
		}, nil, 413, false},
		{"structured body over the limit", func(t *testing.T) *http.Request {
			return structuredCE(t, validAttrs, map[string]any{"datacontenttype": "text/plain", "data": strings.Repeat("x", limit)})
		}, nil, 413, false},
		{"rest body over the limit", func(*testing.T) *http.Request {
			return restCommand("app1/devices/device1?command=set", "", make([]byte, limit+1))
		}, nil, 413, false},
		{"larger than the device accepts", func(*testing.T) *http.Request { return binaryCE(validAttrs, "", nil) }, fmt.Errorf("x: %w", ErrTooLarge), 413, true},

		{"unknown target", func(*testing.T) *http.Request { return binaryCE(validAttrs, "", nil) }, fmt.Errorf("x: %w", ErrUnknownTarget), 422, true},
		{"unknown target rest", func(*testing.T) *http.Request { return restCommand("nope/devices/device1?command=set", "", nil) }, ErrUnknownTarget, 422, true},
		{"unreachable", func(*testing.T) *http.Request { return binaryCE(validAttrs, "", nil) }, fmt.Errorf("x: %w", ErrUnreachable), 503, true},
		{"not acknowledged", func(*testing.T) *http.Request { return binaryCE(validAttrs, "", nil) }, fmt.Errorf("x: %w", ErrNotAcknowledged), 504, true},
		{"internal failure", func(*testing.T) *http.Request { return binaryCE(validAttrs, "", nil) }, errors.New("boom\nsecond line"), 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDeliverer{err: tt.deliver}
			w := serve(t, d, Options{MaxBodyBytes: limit, Now: func() time.Time { return now }}, tt.req(t))
			if w.Code != tt.want {
				t.Errorf("status %d (%q), want %d", w.Code, w.Body.String(), tt.want)
			}
			checkBody(t, w)
			if got := len(d.commands()); (got == 1) != tt.handed || got > 1 {
				t.Errorf("Deliver called %d times, want handed over = %v", got, tt.handed)
			}
		})
	}
}

// TestHandlerDefaultBodyLimit checks the default limit of 256 KiB in every form.
func TestHandlerDefaultBodyLimit(t *testing.T) {
	const limit = 256 << 10
	forms := []struct {
		name string
		req  func(body []byte) *http.Request
	}{
		{"binary", func(b []byte) *http.Request { return binaryCE(validAttrs, "application/octet-stream", b) }},
		{"rest", func(b []byte) *http.Request { return restCommand("app1/devices/device1?command=set", "", b) }},
	}
	for _, f := range forms {
		for _, size := range []struct {
			n    int
			want int
		}{{limit, 202}, {limit + 1, 413}} {
			t.Run(fmt.Sprintf("%s %d bytes", f.name, size.n), func(t *testing.T) {
				w := serve(t, &fakeDeliverer{}, Options{}, f.req(make([]byte, size.n)))
				if w.Code != size.want {
					t.Errorf("status %d (%q), want %d", w.Code, w.Body.String(), size.want)
				}
			})
		}
	}
}

// TestHandlerAckTimeout checks that the Deliverer is bounded by the acknowledgement timeout.
func TestHandlerAckTimeout(t *testing.T) {
	tests := []struct {
		name string
		opt  time.Duration
		want time.Duration
	}{
		{"default", 0, 5 * time.Second},
		{"configured", 1500 * time.Millisecond, 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDeliverer{}
			serve(t, d, Options{AckTimeout: tt.opt}, binaryCE(validAttrs, "", nil))
			d.mu.Lock()
			defer d.mu.Unlock()
			if len(d.deadlines) != 1 {
				t.Fatalf("Deliver called %d times", len(d.deadlines))
			}
			if left := d.deadlines[0]; left <= tt.want-time.Second || left > tt.want {
				t.Errorf("Deliver had %v left, want about %v", left, tt.want)
			}
		})
	}
}

// nopDeliverer accepts every command.
type nopDeliverer struct{}

func (nopDeliverer) Deliver(context.Context, Command) error { return nil }

// BenchmarkBinaryCommand is the sink's own work per binary-mode command: parsing and
// validating the CloudEvent and answering 202, without the network and the device.
func BenchmarkBinaryCommand(b *testing.B) {
	h := Routes(nopDeliverer{}, Options{Logger: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	body := []byte(`{"temperature":21.5}`)
	header := http.Header{"Content-Type": {"application/json"}}
	for k, v := range validAttrs {
		header.Set("Ce-"+k, v)
	}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header = header.Clone()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
