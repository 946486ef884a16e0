package auth_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"mqtt-endpoint/bridge/auth"
)

func TestParseUsername(t *testing.T) {
	tests := []struct {
		name, in    string
		device, app string
		ok          bool
	}{
		{name: "plain", in: "device1@app1", device: "device1", app: "app1", ok: true},
		{name: "split at the first @ (drogue-mqtt.md §1)", in: "d@app@more", device: "d", app: "app@more", ok: true},
		{name: "percent-decoded device", in: "dev%2Fx@app", device: "dev/x", app: "app", ok: true},
		{name: "escaped @ stays in the device", in: "a%40b@app", device: "a@b", app: "app", ok: true},
		{name: "lower-case hex", in: "a%2fb@app", device: "a/b", app: "app", ok: true},
		{name: "UTF-8 escapes", in: "%E2%82%AC@app", device: "€", app: "app", ok: true},
		{name: "app part not decoded", in: "d@a%2Fb", device: "d", app: "a%2Fb", ok: true},
		{name: "plus is not a space", in: "a+b@app", device: "a+b", app: "app", ok: true},
		{name: "invalid escape kept", in: "dev%zz@app", device: "dev%zz", app: "app", ok: true},
		{name: "truncated escape kept", in: "dev%4@app", device: "dev%4", app: "app", ok: true},
		{name: "lone percent kept", in: "dev%@app", device: "dev%", app: "app", ok: true},
		{name: "invalid UTF-8 becomes U+FFFD (lossy)", in: "d%FF@app", device: "d\uFFFD", app: "app", ok: true},
		{name: "DN device name", in: "O=Drogue IoT, OU=Cloud, CN=Device 1@app", device: "O=Drogue IoT, OU=Cloud, CN=Device 1", app: "app", ok: true},
		{name: "no @", in: "device1"},
		{name: "empty device", in: "@app"},
		{name: "empty app", in: "device@"},
		{name: "only @", in: "@"},
		{name: "empty", in: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			device, app, ok := auth.ParseUsername(tt.in)
			if device != tt.device || app != tt.app || ok != tt.ok {
				t.Errorf("ParseUsername(%q) = %q, %q, %t; want %q, %q, %t", tt.in, device, app, ok, tt.device, tt.app, tt.ok)
			}
		})
	}
}

// encode percent-encodes every byte outside [A-Za-z0-9], as events do (SPEC §6).
func encode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func FuzzUsername(f *testing.F) {
	for _, s := range []string{"device1@app1", "dev%2Fx@app", "a@b@c", "@", "%", "%%41@x", "d%FF@a", "no-at", "€@€"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		device, app, ok := auth.ParseUsername(s)
		rawDevice, rawApp, found := strings.Cut(s, "@")
		if ok != (found && rawDevice != "" && rawApp != "") {
			t.Fatalf("ParseUsername(%q) ok = %t", s, ok)
		}
		if !ok {
			if device != "" || app != "" {
				t.Fatalf("ParseUsername(%q) = %q, %q with ok false", s, device, app)
			}
			return
		}
		if app != rawApp {
			t.Fatalf("ParseUsername(%q) app = %q, want %q", s, app, rawApp)
		}
		if !utf8.ValidString(device) || device == "" {
			t.Fatalf("ParseUsername(%q) device = %q: empty or not UTF-8", s, device)
		}
		if !strings.Contains(rawDevice, "%") && utf8.ValidString(rawDevice) && device != rawDevice {
			t.Fatalf("ParseUsername(%q) device = %q, want it unchanged", s, device)
		}
		// Round trip: an encoded UTF-8 device name decodes to itself.
		if utf8.ValidString(s) {
			d2, a2, ok2 := auth.ParseUsername(encode(s) + "@" + app)
			if !ok2 || d2 != s || a2 != app {
				t.Fatalf("round trip of %q gave %q, %q, %t", s, d2, a2, ok2)
			}
		}
	})
}
