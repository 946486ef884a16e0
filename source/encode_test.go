package source

import (
	"net/url"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"drogue-mqtt.md §5 example", "my-dev_1", "my%2Ddev%5F1"},
		{"app example", "my-app", "my%2Dapp"},
		{"alphanumeric unchanged", "Sensor01", "Sensor01"},
		{"empty", "", ""},
		{"utf-8 multibyte", "gerät-ä", "ger%C3%A4t%2D%C3%A4"},
		{"emoji", "🌡", "%F0%9F%8C%A1"},
		{"reserved", "a/b@c d%e.f~", "a%2Fb%40c%20d%25e%2Ef%7E"},
		{"control and high bytes", "\x00\x7f\xff", "%00%7F%FF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Encode(tt.in); got != tt.want {
				t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEncodeAllocations(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  float64
	}{
		{"nothing to escape returns input", "sensor01", 0},
		{"escaping allocates once", "my-dev_1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, func() { _ = Encode(tt.in) }); got > tt.max {
				t.Errorf("Encode(%q) allocates %v times, want <= %v", tt.in, got, tt.max)
			}
		})
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "my-dev_1", "gerät", "a/b%2F", "\x00\xff", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := Encode(s)
		// Only alphanumerics and %XX escapes with uppercase hex.
		for i := 0; i < len(enc); i++ {
			switch c := enc[i]; {
			case isAlnum(c):
			case c == '%' && i+2 < len(enc) && strings.IndexByte(upperHex, enc[i+1]) >= 0 && strings.IndexByte(upperHex, enc[i+2]) >= 0:
				i += 2
			default:
				t.Fatalf("Encode(%q) = %q: unexpected %q at %d", s, enc, c, i)
			}
		}
		dec, err := url.PathUnescape(enc)
		if err != nil {
			t.Fatalf("PathUnescape(Encode(%q) = %q): %v", s, enc, err)
		}
		if dec != s {
			t.Fatalf("PathUnescape(Encode(%q)) = %q", s, dec)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	for _, bm := range []struct{ name, in string }{
		{"alphanumeric", "sensor01"},
		{"escaped", "my-dev_1"},
		{"long", strings.Repeat("device-name.", 8)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Encode(bm.in)
			}
		})
	}
}
