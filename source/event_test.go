package source

import (
	"encoding/json"
	"errors"
	"maps"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/google/uuid"
)

// attrs are the attributes of an event that Event sets.
type attrs struct {
	typ, source, subject, contentType string
	ext                               map[string]any
}

// core returns the attributes other than the extensions, comparable.
func (a attrs) core() [4]string {
	return [4]string{a.typ, a.source, a.subject, a.contentType}
}

func attrsOf(e cloudevents.Event) attrs {
	return attrs{
		typ:         e.Type(),
		source:      e.Source(),
		subject:     e.Subject(),
		contentType: e.DataContentType(),
		ext:         e.Extensions(),
	}
}

func TestEventAttributes(t *testing.T) {
	now := time.Date(2025, 3, 4, 5, 6, 7, 8, time.FixedZone("CET", 3600))
	b := EventBuilder{Instance: "drogue"}
	tests := []struct {
		name string
		p    Publish
		want attrs
	}{
		{
			name: "self, no uids",
			p:    Publish{Application: "app1", Device: "my-dev_1", Channel: "telemetry", Payload: []byte(`{"t":1}`)},
			want: attrs{
				typ: TypeEvent, source: "drogue://app1/my%2Ddev%5F1", subject: "telemetry", contentType: "application/json",
				ext: map[string]any{
					"application": "app1", "device": "my-dev_1", "sender": "my-dev_1",
					"partitionkey": "app1/my%2Ddev%5F1", "instance": "drogue",
				},
			},
		},
		{
			name: "self with uids; sender defaults to device",
			p: Publish{
				Application: "my-app", ApplicationUID: "a-uid", Device: "d1", DeviceUID: "d-uid",
				Channel: "state", ContentType: "text/plain", Payload: []byte("on"),
			},
			want: attrs{
				typ: TypeEvent, source: "drogue://my-app/d1", subject: "state", contentType: "text/plain",
				ext: map[string]any{
					"application": "my-app", "applicationuid": "a-uid", "device": "d1", "deviceuid": "d-uid",
					"sender": "d1", "senderuid": "d-uid", "partitionkey": "my%2Dapp/d1", "instance": "drogue",
				},
			},
		},
		{
			// drogue-mqtt.md §5 "On behalf of another device": device, deviceuid
			// and source are D's; sender, senderuid and partitionkey are G's.
			name: "gateway on behalf",
			p: Publish{
				Application: "app1", ApplicationUID: "a-uid",
				Device: "dev-d", DeviceUID: "uid-d", Sender: "gw_g", SenderUID: "uid-g",
				Channel: "telemetry", Payload: []byte(`{}`),
			},
			want: attrs{
				typ: TypeEvent, source: "drogue://app1/dev%2Dd", subject: "telemetry", contentType: "application/json",
				ext: map[string]any{
					"application": "app1", "applicationuid": "a-uid", "device": "dev-d", "deviceuid": "uid-d",
					"sender": "gw_g", "senderuid": "uid-g", "partitionkey": "app1/gw%5Fg", "instance": "drogue",
				},
			},
		},
		{
			name: "gateway on behalf, only gateway uid known",
			p:    Publish{Application: "app1", Device: "d", Sender: "g", SenderUID: "uid-g", Channel: "c", Payload: []byte("x")},
			want: attrs{
				typ: TypeEvent, source: "drogue://app1/d", subject: "c", contentType: "application/octet-stream",
				ext: map[string]any{
					"application": "app1", "device": "d", "sender": "g", "senderuid": "uid-g",
					"partitionkey": "app1/g", "instance": "drogue",
				},
			},
		},
		{
			name: "empty channel omits subject",
			p:    Publish{Application: "app1", Device: "d", Payload: []byte("1")},
			want: attrs{
				typ: TypeEvent, source: "drogue://app1/d", contentType: "application/json",
				ext: map[string]any{
					"application": "app1", "device": "d", "sender": "d", "partitionkey": "app1/d", "instance": "drogue",
				},
			},
		},
		{
			name: "last will: topic verbatim as subject",
			p:    Publish{Application: "app1", Device: "d", Channel: "status/other", Payload: []byte(`"gone"`)},
			want: attrs{
				typ: TypeEvent, source: "drogue://app1/d", subject: "status/other", contentType: "application/json",
				ext: map[string]any{
					"application": "app1", "device": "d", "sender": "d", "partitionkey": "app1/d", "instance": "drogue",
				},
			},
		},
		{
			name: "connection event",
			p:    ConnectionEvent(Publish{Application: "app1", Device: "d-1", DeviceUID: "u1"}, true),
			want: attrs{
				typ: TypeConnection, source: "drogue://app1/d%2D1", subject: "connection", contentType: "application/json",
				ext: map[string]any{
					"application": "app1", "device": "d-1", "deviceuid": "u1", "sender": "d-1", "senderuid": "u1",
					"partitionkey": "app1/d%2D1", "instance": "drogue",
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := b.Event(tt.p, now)
			if err != nil {
				t.Fatalf("Event: %v", err)
			}
			if err := e.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			got := attrsOf(e)
			if !maps.Equal(got.ext, tt.want.ext) {
				t.Errorf("extensions = %v, want %v", got.ext, tt.want.ext)
			}
			if got.core() != tt.want.core() {
				t.Errorf("type, source, subject, datacontenttype = %q, want %q", got.core(), tt.want.core())
			}
			if e.SpecVersion() != "1.0" {
				t.Errorf("specversion = %q, want 1.0", e.SpecVersion())
			}
			if hasSubject := e.Context.AsV1().Subject != nil; hasSubject != (tt.p.Channel != "") {
				t.Errorf("subject set = %v, want %v", hasSubject, tt.p.Channel != "")
			}
			if id, err := uuid.Parse(e.ID()); err != nil || id.Version() != 4 {
				t.Errorf("id %q is not a UUID v4 (%v)", e.ID(), err)
			}
			if !e.Time().Equal(now) || e.Time().Location() != time.UTC {
				t.Errorf("time = %v, want %v in UTC", e.Time(), now)
			}
			if string(e.Data()) != string(tt.p.Payload) {
				t.Errorf("data = %q, want %q", e.Data(), tt.p.Payload)
			}
		})
	}
}

func TestEventDataNotCopied(t *testing.T) {
	p := testPublish()
	e, err := EventBuilder{}.Event(p, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if &e.Data()[0] != &p.Payload[0] {
		t.Error("event data is a copy of the payload, want the payload itself")
	}
	if _, ok := e.Extensions()[ExtInstance]; ok {
		t.Error("zero EventBuilder set the instance extension")
	}
}

func TestEventUniqueIDs(t *testing.T) {
	seen := make(map[string]bool)
	for range 100 {
		e, err := EventBuilder{}.Event(testPublish(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if seen[e.ID()] {
			t.Fatalf("duplicate id %s", e.ID())
		}
		seen[e.ID()] = true
	}
}

func TestEventErrors(t *testing.T) {
	tests := []struct {
		name string
		p    Publish
		want error
	}{
		{"invalid JSON with JSON ct", Publish{Application: "a", Device: "d", ContentType: "application/json", Payload: []byte("{")}, ErrPayloadInvalid},
		{"bad media type", Publish{Application: "a", Device: "d", ContentType: "???", Payload: []byte("x")}, ErrPayloadInvalid},
		{"no application", Publish{Device: "d", Payload: []byte("{}")}, ErrInvalidPublish},
		{"no device", Publish{Application: "a", Payload: []byte("{}")}, ErrInvalidPublish},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := EventBuilder{}.Event(tt.p, time.Now())
			if !errors.Is(err, tt.want) {
				t.Errorf("Event error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestConnectionEvent(t *testing.T) {
	tests := []struct {
		name      string
		p         Publish
		connected bool
		want      Publish
	}{
		{
			name:      "connected",
			p:         Publish{Application: "app", ApplicationUID: "au", Device: "d", DeviceUID: "du", Channel: "x", ContentType: "text/plain", Payload: []byte("y")},
			connected: true,
			want: Publish{Application: "app", ApplicationUID: "au", Device: "d", DeviceUID: "du", Sender: "d", SenderUID: "du",
				Channel: "connection", ContentType: "application/json", Payload: []byte(`{"connected":true}`), Type: TypeConnection},
		},
		{
			name: "disconnected, sender names the connected device",
			p:    Publish{Application: "app", Device: "other", Sender: "g", SenderUID: "gu"},
			want: Publish{Application: "app", Device: "g", DeviceUID: "gu", Sender: "g", SenderUID: "gu",
				Channel: "connection", ContentType: "application/json", Payload: []byte(`{"connected":false}`), Type: TypeConnection},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ConnectionEvent(tt.p, tt.connected)
			gotPayload, wantPayload := got.Payload, tt.want.Payload
			got.Payload, tt.want.Payload = nil, nil
			if got.Application != tt.want.Application || got.ApplicationUID != tt.want.ApplicationUID ||
				got.Device != tt.want.Device || got.DeviceUID != tt.want.DeviceUID ||
				got.Sender != tt.want.Sender || got.SenderUID != tt.want.SenderUID ||
				got.Channel != tt.want.Channel || got.ContentType != tt.want.ContentType || got.Type != tt.want.Type {
				t.Errorf("ConnectionEvent = %+v, want %+v", got, tt.want)
			}
			if string(gotPayload) != string(wantPayload) {
				t.Errorf("payload = %s, want %s", gotPayload, wantPayload)
			}
		})
	}
}

func TestEventStructuredJSON(t *testing.T) {
	tests := []struct {
		name     string
		p        Publish
		wantKey  string // data or data_base64
		wantData string // as it appears in the JSON
	}{
		{"JSON inline", Publish{Application: "a", Device: "d", Channel: "c", Payload: []byte(`{"t":1}`)}, "data", `{"t":1}`},
		{"binary as base64", Publish{Application: "a", Device: "d", Channel: "c", Payload: []byte{0, 0xff}}, "data_base64", `"AP8="`},
		{"text as base64", Publish{Application: "a", Device: "d", Channel: "c", ContentType: "text/plain", Payload: []byte("hi")}, "data_base64", `"aGk="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := EventBuilder{Instance: "i"}.Event(tt.p, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("unmarshal %s: %v", b, err)
			}
			if got := string(m[tt.wantKey]); got != tt.wantData {
				t.Errorf("%s = %s, want %s (event %s)", tt.wantKey, got, tt.wantData, b)
			}
			var back cloudevents.Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("decode event: %v", err)
			}
			if string(back.Data()) != string(tt.p.Payload) || back.Source() != e.Source() {
				t.Errorf("round trip: data %q source %q, want %q %q", back.Data(), back.Source(), tt.p.Payload, e.Source())
			}
		})
	}
}

func BenchmarkEvent(b *testing.B) {
	builder := EventBuilder{Instance: "drogue"}
	p := Publish{
		Application: "app1", ApplicationUID: "4cf9607e-c7ad-11eb-8d69-d45d6455d2cc",
		Device: "device-1", DeviceUID: "4e185ea6-7c26-11eb-a319-d45d6455d2cc",
		Sender: "gateway-1", SenderUID: "4e185ea6-7c26-11eb-a319-d45d6455d2cd",
		Channel: "telemetry", Payload: jsonPayload256,
	}
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Payload)))
	for b.Loop() {
		if _, err := builder.Event(p, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventEncodeJSON(b *testing.B) {
	builder := EventBuilder{Instance: "drogue"}
	p := Publish{Application: "app1", Device: "device-1", Sender: "gateway-1", Channel: "telemetry", Payload: jsonPayload256}
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(p.Payload)))
	for b.Loop() {
		e, err := builder.Event(p, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
