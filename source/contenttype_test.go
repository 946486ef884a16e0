package source

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestContentType(t *testing.T) {
	// Rows from drogue-mqtt.md §5 "Content-type rule" and SPEC §6.
	tests := []struct {
		name    string
		ct      string
		payload string
		want    string
		wantErr error
	}{
		{"no ct, JSON object", "", `{"a":1}`, "application/json", nil},
		{"no ct, JSON null", "", `null`, "application/json", nil},
		{"no ct, JSON number", "", `42`, "application/json", nil},
		{"no ct, JSON string", "", `"x"`, "application/json", nil},
		{"no ct, JSON with whitespace", "", " [1, 2] \n", "application/json", nil},
		{"no ct, empty payload is not JSON", "", ``, "application/octet-stream", nil},
		{"no ct, text", "", `hello`, "application/octet-stream", nil},
		{"no ct, binary", "", "\x00\x01\xff", "application/octet-stream", nil},
		{"application/json", "application/json", `{}`, "application/json", nil},
		{"charset dropped", "application/json; charset=utf-8", `{"a":1}`, "application/json", nil},
		{"case-insensitive", "Application/JSON", `[]`, "application/json", nil},
		{"text/json normalised", "text/json", `true`, "application/json", nil},
		{"+json normalised", "application/vnd.x+json", `{}`, "application/json", nil},
		{"+json with parameter", "application/vnd.x+JSON;v=1", `{}`, "application/json", nil},
		{"cloudevents+json is JSON-like", "application/cloudevents+json", `{}`, "application/json", nil},
		{"invalid JSON with JSON ct", "application/json", `{"a":`, "", ErrPayloadInvalid},
		{"empty payload with JSON ct", "application/json", ``, "", ErrPayloadInvalid},
		{"invalid JSON with +json ct", "application/vnd.x+json", `nope`, "", ErrPayloadInvalid},
		{"text/plain passthrough", "text/plain", `{"a":1}`, "text/plain", nil},
		{"parameters kept on passthrough", "text/plain; charset=utf-8", `hi`, "text/plain; charset=utf-8", nil},
		{"binary passthrough", "application/octet-stream", "\x00", "application/octet-stream", nil},
		{"json prefix only counts at start", "text/plain+jsonx", `x`, "text/plain+jsonx", nil},
		{"not a media type", "not a type", `x`, "", ErrPayloadInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ContentType(tt.ct, []byte(tt.payload))
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("ContentType(%q, %q) error = %v, want %v", tt.ct, tt.payload, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ContentType(%q, %q) = %q, want %q", tt.ct, tt.payload, got, tt.want)
			}
		})
	}
}

// jsonPayload256 is a 256-byte JSON telemetry payload.
var jsonPayload256 = func() []byte {
	p := `{"temp":21.5,"hum":48,"pressure":1013.25,"battery":3.71,"note":"` +
		strings.Repeat("x", 256) + `"}`
	// Trim the filler so the document is exactly 256 bytes.
	p = p[:256-2] + `"}`
	return []byte(p)
}()

func TestJSONPayload256(t *testing.T) {
	if len(jsonPayload256) != 256 {
		t.Fatalf("len = %d, want 256", len(jsonPayload256))
	}
	if ct, err := ContentType("", jsonPayload256); err != nil || ct != contentTypeJSON {
		t.Fatalf("ContentType = %q, %v; want application/json", ct, err)
	}
}

func BenchmarkContentType(b *testing.B) {
	for _, bm := range []struct {
		name, ct string
		payload  []byte
	}{
		{"sniff JSON 256B", "", jsonPayload256},
		{"sniff binary", "", []byte("\x00\x01\x02\x03 not json")},
		{"JSON ct 256B", "application/json; charset=utf-8", jsonPayload256},
		{"passthrough", "text/plain", []byte("hello")},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.payload)))
			for b.Loop() {
				if _, err := ContentType(bm.ct, bm.payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestMayBeJSON(t *testing.T) {
	// mayBeJSON must never say no where json.Valid says yes.
	for _, s := range []string{`{}`, `[]`, `""`, `true`, `false`, `null`, `-1`, `0`, `9e3`, " \t\r\n{}", `"ä"`} {
		if !mayBeJSON([]byte(s)) || !json.Valid([]byte(s)) {
			t.Errorf("mayBeJSON(%q) = %v, json.Valid = %v; want both true", s, mayBeJSON([]byte(s)), json.Valid([]byte(s)))
		}
	}
	for _, s := range []string{``, ` `, "\x00", `abc`, `+1`, `.5`, "\ufeff{}", `<xml/>`} {
		if mayBeJSON([]byte(s)) {
			t.Errorf("mayBeJSON(%q) = true, want false", s)
		}
	}
}

func FuzzMayBeJSON(f *testing.F) {
	for _, s := range []string{`{}`, ` 1`, "\x00", `nul`, "\ufeff{}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if json.Valid(b) && !mayBeJSON(b) {
			t.Fatalf("mayBeJSON(%q) = false but json.Valid = true", b)
		}
	})
}
