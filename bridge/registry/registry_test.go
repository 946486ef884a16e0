package registry

import (
	"crypto/x509"
	"os"
	"strings"
	"testing"
)

// mustParse parses data or fails the test.
func mustParse(t testing.TB, data string) *Registry {
	t.Helper()
	r, err := Parse("test.yaml", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

func TestLookup(t *testing.T) {
	data, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := mustParse(t, string(data))
	if apps, devices := r.Counts(); apps != 3 || devices != 5 {
		t.Fatalf("Counts() = %d, %d; want 3, 5", apps, devices)
	}
	tests := []struct {
		name, app, key string
		want           string // device name, "" = not found
	}{
		{name: "by name", app: "app1", key: "sensor01", want: "sensor01"},
		{name: "by alias", app: "app1", key: "hw-02", want: "sensor01"},
		{name: "by DN alias (SPEC §5 X.509)", app: "app1", key: "O=Drogue IoT, OU=Cloud, CN=Device 1", want: "sensor01"},
		{name: "by unique username (drogue-mqtt.md §1)", app: "app1", key: "foo", want: "sensor01"},
		{name: "non-unique username is no alias", app: "app1", key: "shared"},
		{name: "alias is scoped to its application", app: "plain", key: "hw-02", want: "sensor01"},
		{name: "unknown device", app: "app1", key: "nope"},
		{name: "unknown application", app: "nope", key: "sensor01"},
		{name: "empty key", app: "app1", key: ""},
		{name: "gateway", app: "app1", key: "gateway01", want: "gateway01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := r.Device(tt.app, tt.key)
			if ok != (tt.want != "") {
				t.Fatalf("Device(%q, %q) found = %t, want %t", tt.app, tt.key, ok, tt.want != "")
			}
			if ok && (d.Name != tt.want || d.Application != tt.app) {
				t.Errorf("Device(%q, %q) = %s/%s, want %s/%s", tt.app, tt.key, d.Application, d.Name, tt.app, tt.want)
			}
		})
	}
}

func TestApplicationLookup(t *testing.T) {
	r := mustParse(t, "kind: Application\nmetadata: {name: app1, uid: u1}\nspec: {core: {disabled: true}}\n")
	tests := []struct {
		name, key string
		found     bool
	}{
		{name: "by name", key: "app1", found: true},
		{name: "unknown", key: "app2"},
		{name: "case matters", key: "App1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, ok := r.Application(tt.key)
			if ok != tt.found {
				t.Fatalf("Application(%q) found = %t, want %t", tt.key, ok, tt.found)
			}
			if ok && (a.Name != "app1" || a.UID != "u1" || !a.Disabled) {
				t.Errorf("Application(%q) = %+v", tt.key, a)
			}
		})
	}
}

func TestNilRegistry(t *testing.T) {
	var r *Registry
	if _, ok := r.Application("a"); ok {
		t.Error("nil Registry found an application")
	}
	if _, ok := r.Device("a", "d"); ok {
		t.Error("nil Registry found a device")
	}
	if _, ok := r.ApplicationForIssuer(&x509.Certificate{}); ok {
		t.Error("nil Registry found an application for an issuer")
	}
	if a, d := r.Counts(); a != 0 || d != 0 {
		t.Errorf("nil Registry Counts() = %d, %d", a, d)
	}
}

func TestEffectiveDialect(t *testing.T) {
	plain := &Dialect{Type: DialectPlainTopic, DevicePrefix: true}
	v1 := &Dialect{Type: DialectDrogueV1}
	tests := []struct {
		name string
		app  *Application
		dev  *Device
		want Dialect
	}{
		{name: "default", app: &Application{}, dev: &Device{}, want: Dialect{Type: DialectDrogueV1}},
		{name: "application", app: &Application{Dialect: plain}, dev: &Device{}, want: *plain},
		{name: "device wins (drogue-mqtt.md §3)", app: &Application{Dialect: plain}, dev: &Device{Dialect: v1}, want: *v1},
		{name: "nil objects", want: Dialect{Type: DialectDrogueV1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.dev.EffectiveDialect(tt.app); got != tt.want {
				t.Errorf("EffectiveDialect() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseDetails(t *testing.T) {
	tests := []struct {
		name, data string
		check      func(t *testing.T, r *Registry)
	}{
		{
			name: "mqtt: {} on a device means drogue/v1 and hides the application's dialect",
			data: "kind: Application\nmetadata: {name: a}\nspec: {mqtt: {dialect: {type: plainTopic}}}\n---\nkind: Device\nmetadata: {name: d, application: a}\nspec: {mqtt: {}}\n",
			check: func(t *testing.T, r *Registry) {
				d, _ := r.Device("a", "d")
				if d.Dialect == nil || d.Dialect.Type != DialectDrogueV1 {
					t.Errorf("Dialect = %+v, want drogue/v1", d.Dialect)
				}
			},
		},
		{
			name: "null mqtt counts as present",
			data: "kind: Application\nmetadata: {name: a}\n---\nkind: Device\nmetadata: {name: d, application: a}\nspec:\n  mqtt:\n",
			check: func(t *testing.T, r *Registry) {
				d, _ := r.Device("a", "d")
				if d.Dialect == nil {
					t.Error("Dialect = nil, want drogue/v1")
				}
			},
		},
		{
			name: "psk key decoded, validity parsed",
			data: "kind: Application\nmetadata: {name: a}\n---\nkind: Device\nmetadata: {name: d, application: a}\nspec: {authentication: {credentials: [{psk: {key: AAEC, validity: {notAfter: \"2030-01-02T03:04:05+01:00\"}}}]}}\n",
			check: func(t *testing.T, r *Registry) {
				d, _ := r.Device("a", "d")
				if len(d.Credentials) != 1 {
					t.Fatalf("got %d credentials, want 1", len(d.Credentials))
				}
				c := d.Credentials[0]
				if c.Kind != CredentialPSK || string(c.PSK) != "\x00\x01\x02" || !c.NotBefore.IsZero() || c.NotAfter.UTC().Hour() != 2 {
					t.Errorf("credential = %+v", c)
				}
			},
		},
		{
			name: "inline document after marker, CRLF line ends",
			data: "--- {kind: Application, metadata: {name: a}}\r\n--- # comment\r\nkind: Device\r\nmetadata: {name: d, application: a}\r\n",
			check: func(t *testing.T, r *Registry) {
				if _, ok := r.Device("a", "d"); !ok {
					t.Error("device d not found")
				}
			},
		},
		{
			name: "empty input",
			data: "",
			check: func(t *testing.T, r *Registry) {
				if a, d := r.Counts(); a != 0 || d != 0 {
					t.Errorf("Counts() = %d, %d", a, d)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustParse(t, tt.data))
		})
	}
}

func TestProblemsCapped(t *testing.T) {
	data := "kind: Application\nmetadata: {name: a}\n"
	for range maxProblems + 5 {
		data += "---\nkind: Thing\n"
	}
	_, err := Parse("many.yaml", []byte(data))
	if err == nil {
		t.Fatal("Parse succeeded, want an error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxProblems+1 {
		t.Fatalf("got %d lines, want %d", len(lines), maxProblems+1)
	}
	if last := lines[len(lines)-1]; last != "... and 5 more problems" {
		t.Errorf("last line = %q", last)
	}
}

// TestDevRegistry checks the example registry embedded by --dev (SPEC §3).
func TestDevRegistry(t *testing.T) {
	const file = "../../cmd/mqtt-endpoint/dev-registry.yaml"
	r, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if apps, devices := r.Counts(); apps != 2 || devices != 5 {
		t.Errorf("Counts() = %d, %d; want 2, 5", apps, devices)
	}
	for _, tt := range []struct{ app, key, want string }{
		{"example-app", "device1", "device1"},
		{"example-app", "device2", "device2"},
		{"example-app", "dev2-alias", "device2"},
		{"example-app", "user2", "device2"},
		{"example-app", "gateway1", "gateway1"},
		{"example-app", "device3", "device3"},
		{"plain-app", "sensor1", "sensor1"},
	} {
		if d, ok := r.Device(tt.app, tt.key); !ok || d.Name != tt.want {
			t.Errorf("Device(%q, %q) = %v, %t; want %s", tt.app, tt.key, d, ok, tt.want)
		}
	}
	if d, _ := r.Device("example-app", "device3"); d == nil || len(d.Gateways) != 1 || d.Gateways[0] != "gateway1" {
		t.Errorf("device3 gateways = %v, want [gateway1]", d)
	}
	if a, _ := r.Application("plain-app"); a == nil || a.Dialect == nil || *a.Dialect != (Dialect{Type: DialectPlainTopic, DevicePrefix: true}) {
		t.Errorf("plain-app dialect wrong: %+v", a)
	}
	if d, _ := r.Device("example-app", "device1"); d == nil || len(d.Credentials) != 2 || d.Credentials[1].Password.Bcrypt == "" {
		t.Errorf("device1 credentials = %+v, want plain and bcrypt", d)
	}
}
