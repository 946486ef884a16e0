package bridge

import (
	"errors"
	"testing"

	"mqtt-endpoint/bridge/registry"
)

func TestParseTopic(t *testing.T) {
	v1 := registry.Dialect{Type: registry.DialectDrogueV1}
	plain := registry.Dialect{Type: registry.DialectPlainTopic}
	prefix := registry.Dialect{Type: registry.DialectPlainTopic, DevicePrefix: true}
	tests := []struct {
		name    string
		dialect registry.Dialect
		topic   string
		want    target
		wantErr error
	}{
		// drogue-mqtt.md §4 (test_v1)
		{"v1/empty", v1, "", target{}, errTopicInvalid},
		{"v1/channel as self", v1, "ch", target{channel: "ch"}, nil},
		{"v1/channel as device", v1, "ch/dev", target{device: "dev", named: true, channel: "ch"}, nil},
		{"v1/three segments", v1, "a/b/c", target{}, errTopicInvalid},
		{"v1/four segments", v1, "a/b/c/d", target{}, errTopicInvalid},
		{"v1/trailing slash names empty device", v1, "ch/", target{device: "", named: true, channel: "ch"}, nil},
		{"v1/leading slash gives empty channel", v1, "/dev", target{device: "dev", named: true, channel: ""}, nil},
		{"v1/no special wildcard handling", v1, "$x/+", target{device: "+", named: true, channel: "$x"}, nil},
		// drogue-mqtt.md §7 (test_plain)
		{"plain/empty", plain, "", target{}, errTopicInvalid},
		{"plain/whole topic", plain, "foo/bar/baz", target{channel: "foo/bar/baz"}, nil},
		{"plain/leading slash kept", plain, "/bar", target{channel: "/bar"}, nil},
		{"plain/single segment", plain, "foo", target{channel: "foo"}, nil},
		// drogue-mqtt.md §7 (test_plain_prefix)
		{"prefix/empty", prefix, "", target{}, errTopicInvalid},
		{"prefix/no slash", prefix, "foo", target{}, errTopicInvalid},
		{"prefix/device and channel", prefix, "dev/rest", target{device: "dev", named: true, channel: "rest"}, nil},
		{"prefix/deep channel", prefix, "foo/bar/baz//bam/bum", target{device: "foo", named: true, channel: "bar/baz//bam/bum"}, nil},
		{"prefix/leading slash is self", prefix, "/rest", target{channel: "rest"}, nil},
		{"prefix/empty channel", prefix, "dev/", target{device: "dev", named: true, channel: ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTopic(tt.dialect, tt.topic)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("parseTopic(%q) error = %v, want %v", tt.topic, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("parseTopic(%q) = %+v, want %+v", tt.topic, got, tt.want)
			}
		})
	}
}

func TestDialectOf(t *testing.T) {
	plain := &registry.Dialect{Type: registry.DialectPlainTopic}
	v1 := &registry.Dialect{Type: registry.DialectDrogueV1}
	tests := []struct {
		name string
		app  *registry.Dialect
		dev  *registry.Dialect
		want string
	}{
		{"default", nil, nil, registry.DialectDrogueV1},
		{"application", plain, nil, registry.DialectPlainTopic},
		{"device wins", plain, v1, registry.DialectDrogueV1},
		{"device only", nil, plain, registry.DialectPlainTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dialectOf(&registry.Application{Dialect: tt.app}, &registry.Device{Dialect: tt.dev})
			if got.Type != tt.want {
				t.Fatalf("dialectOf = %q, want %q", got.Type, tt.want)
			}
		})
	}
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"", "a", "a/b", "a/b/c", "/", "//", "a/", "/b"} {
		f.Add(s, false, false)
	}
	f.Fuzz(func(t *testing.T, topic string, plain, prefix bool) {
		d := registry.Dialect{Type: registry.DialectDrogueV1}
		if plain {
			d = registry.Dialect{Type: registry.DialectPlainTopic, DevicePrefix: prefix}
		}
		got, err := parseTopic(d, topic)
		if err != nil {
			return
		}
		if !got.named && got.device != "" {
			t.Fatalf("unnamed target with device %q", got.device)
		}
	})
}

func BenchmarkParseTopic(b *testing.B) {
	d := registry.Dialect{Type: registry.DialectDrogueV1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseTopic(d, "telemetry/device-0001"); err != nil {
			b.Fatal(err)
		}
	}
}
