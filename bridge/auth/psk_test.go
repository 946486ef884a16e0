package auth_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/bridge/registry"
)

// pskRegistry has devices with psk credentials of every kind of validity.
func pskRegistry(t testing.TB) *registry.Registry {
	// psk renders a psk credential with key k and optional bounds.
	psk := func(k, notBefore, notAfter string) string {
		s := fmt.Sprintf("      - psk:\n          key: %s\n", base64.StdEncoding.EncodeToString([]byte(k)))
		if notBefore != "" || notAfter != "" {
			s += "          validity:\n"
		}
		if notBefore != "" {
			s += "            notBefore: " + notBefore + "\n"
		}
		if notAfter != "" {
			s += "            notAfter: " + notAfter + "\n"
		}
		return s
	}
	device := func(app, name, extra string, creds ...string) string {
		s := fmt.Sprintf("---\nkind: Device\nmetadata: {name: %q, application: %q}\nspec:\n%s  authentication:\n    credentials:\n      - pass: pw\n", name, app, extra)
		for _, c := range creds {
			s += c
		}
		return s
	}
	return parse(t, "kind: Application\nmetadata: {name: app1}\n"+
		"---\nkind: Application\nmetadata: {name: x@y}\n"+
		"---\nkind: Application\nmetadata: {name: off-app}\nspec: {core: {disabled: true}}\n"+
		device("app1", "windows", "  alias: [windows-alias]\n",
			psk("expired", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
			psk("future", "2100-01-01T00:00:00Z", "2101-01-01T00:00:00Z"),
			psk("current", "2024-01-01T00:00:00Z", "2030-01-01T00:00:00Z"),
		)+
		device("app1", "ordered", "",
			psk("late-start", "2025-01-01T00:00:00Z", "2031-01-01T00:00:00Z"),
			psk("early-short", "2024-01-01T00:00:00Z", "2029-01-01T00:00:00Z"),
			psk("early-long", "2024-01-01T00:00:00Z", "2031-01-01T00:00:00Z"),
			psk("early-long-2", "2024-01-01T00:00:00Z", "2031-01-01T00:00:00Z"),
		)+
		device("app1", "unbounded", "",
			psk("bounded", "2024-01-01T00:00:00Z", "2030-01-01T00:00:00Z"),
			psk("none-1", "", ""),
			psk("none-2", "", ""),
		)+
		device("app1", "half-open", "",
			psk("from-2025", "2025-01-01T00:00:00Z", ""),
			psk("until-2030", "", "2030-01-01T00:00:00Z"),
			psk("until-2035", "", "2035-01-01T00:00:00Z"),
		)+
		device("app1", "nopsk", "")+
		device("app1", "off-dev", "  core: {disabled: true}\n", psk("k", "", ""))+
		device("app1", "dev%41", "", psk("literal", "", ""))+
		device("app1", "devA", "", psk("decoded", "", ""))+
		device("x@y", "d", "", psk("at-app", "", ""))+
		device("off-app", "d", "", psk("k", "", "")))
}

func TestPSKKey(t *testing.T) {
	a := auth.New(registry.NewStore(pskRegistry(t)), auth.Options{})
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	now := at("2026-06-01T00:00:00Z")
	tests := []struct {
		name     string
		identity string
		now      time.Time
		want     string
		wantErr  error
	}{
		{name: "expired and future keys are skipped", identity: "windows@app1", now: now, want: "current"},
		{name: "device alias", identity: "windows-alias@app1", now: now, want: "current"},
		{name: "notBefore is inclusive", identity: "windows@app1", now: at("2024-01-01T00:00:00Z"), want: "current"},
		{name: "notAfter is exclusive", identity: "windows@app1", now: at("2030-01-01T00:00:00Z"), wantErr: auth.ErrBadCredentials},
		{name: "just before notAfter", identity: "windows@app1", now: at("2029-12-31T23:59:59Z"), want: "current"},
		{name: "only the expired key was valid then", identity: "windows@app1", now: at("2020-06-01T00:00:00Z"), want: "expired"},
		{name: "no key valid", identity: "windows@app1", now: at("2022-01-01T00:00:00Z"), wantErr: auth.ErrBadCredentials},
		{name: "earliest notBefore, then latest notAfter, then first listed", identity: "ordered@app1", now: now, want: "early-long"},
		{name: "ordering among the valid ones only", identity: "ordered@app1", now: at("2030-06-01T00:00:00Z"), want: "early-long"},
		{name: "after the early keys expire", identity: "ordered@app1", now: at("2031-01-01T00:00:00Z"), wantErr: auth.ErrBadCredentials},
		{name: "no validity comes first, then first listed", identity: "unbounded@app1", now: now, want: "none-1"},
		{name: "a missing notBefore is the earliest", identity: "half-open@app1", now: now, want: "until-2035"},
		{name: "a missing notAfter is the latest", identity: "half-open@app1", now: at("2036-01-01T00:00:00Z"), want: "from-2025"},
		{name: "device without psk", identity: "nopsk@app1", now: now, wantErr: auth.ErrBadCredentials},
		{name: "no percent-decoding", identity: "dev%41@app1", now: now, want: "literal"},
		{name: "split at the first @", identity: "d@x@y", now: now, want: "at-app"},
		{name: "disabled device", identity: "off-dev@app1", now: now, wantErr: auth.ErrDisabled},
		{name: "disabled application", identity: "d@off-app", now: now, wantErr: auth.ErrDisabled},
		{name: "unknown device", identity: "nobody@app1", now: now, wantErr: auth.ErrBadCredentials},
		{name: "unknown application", identity: "windows@app9", now: now, wantErr: auth.ErrBadCredentials},
		{name: "no @", identity: "windows", now: now, wantErr: auth.ErrBadCredentials},
		{name: "empty device", identity: "@app1", now: now, wantErr: auth.ErrBadCredentials},
		{name: "empty application", identity: "windows@", now: now, wantErr: auth.ErrBadCredentials},
		{name: "empty identity", identity: "", now: now, wantErr: auth.ErrBadCredentials},
		{name: "application and device swapped", identity: "app1@windows", now: now, wantErr: auth.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := a.PSKKey(tt.identity, tt.now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || key != nil {
					t.Fatalf("PSKKey() = %q, %v; want error %v", key, err, tt.wantErr)
				}
				return
			}
			if err != nil || string(key) != tt.want {
				t.Fatalf("PSKKey() = %q, %v; want %q", key, err, tt.want)
			}
		})
	}
}

// TestPSKKeyIsACopy checks that a caller cannot change the registry's key.
func TestPSKKeyIsACopy(t *testing.T) {
	a := auth.New(registry.NewStore(pskRegistry(t)), auth.Options{})
	key, err := a.PSKKey("unbounded@app1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	clear(key)
	if again, _ := a.PSKKey("unbounded@app1", time.Now()); string(again) != "none-1" {
		t.Errorf("PSKKey() after modifying a result = %q, want %q", again, "none-1")
	}
}

// TestPSKKeyAllocations checks that the handshake callback stays cheap: the
// copy of the key is its only allocation.
func TestPSKKeyAllocations(t *testing.T) {
	a := auth.New(registry.NewStore(pskRegistry(t)), auth.Options{})
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, identity := range []string{"ordered@app1", "nobody@app1"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = a.PSKKey(identity, now) }); n > 1 {
			t.Errorf("PSKKey(%q) makes %.0f allocations, want at most 1", identity, n)
		}
	}
}

func TestAuthenticatePSK(t *testing.T) {
	a := auth.New(registry.NewStore(pskRegistry(t)), auth.Options{})
	tests := []struct {
		name    string
		req     auth.Request
		app     string
		device  string
		wantErr error
	}{
		{name: "identity", req: auth.Request{PSKIdentity: "windows@app1", ClientID: "ignored"}, app: "app1", device: "windows"},
		{name: "alias resolves to the name", req: auth.Request{PSKIdentity: "windows-alias@app1"}, app: "app1", device: "windows"},
		{name: "no percent-decoding", req: auth.Request{PSKIdentity: "dev%41@app1"}, app: "app1", device: "dev%41"},
		{name: "split at the first @", req: auth.Request{PSKIdentity: "d@x@y"}, app: "x@y", device: "d"},
		// The handshake checked the key; the device need not have one now.
		{name: "device without a valid key", req: auth.Request{PSKIdentity: "nopsk@app1"}, app: "app1", device: "nopsk"},
		{name: "unknown device", req: auth.Request{PSKIdentity: "nobody@app1"}, wantErr: auth.ErrBadCredentials},
		{name: "malformed identity", req: auth.Request{PSKIdentity: "windows"}, wantErr: auth.ErrBadCredentials},
		{name: "disabled device", req: auth.Request{PSKIdentity: "off-dev@app1"}, wantErr: auth.ErrDisabled},
		{name: "disabled application", req: auth.Request{PSKIdentity: "d@off-app"}, wantErr: auth.ErrDisabled},
		{name: "with a username", req: auth.Request{PSKIdentity: "windows@app1", Username: "windows@app1", HasUsername: true}, wantErr: auth.ErrBadCredentials},
		{name: "with a password", req: auth.Request{PSKIdentity: "windows@app1", Password: []byte("pw"), HasPassword: true}, wantErr: auth.ErrBadCredentials},
		{
			name:    "with valid row A credentials",
			req:     auth.Request{PSKIdentity: "windows@app1", Username: "windows@app1", HasUsername: true, Password: []byte("pw"), HasPassword: true},
			wantErr: auth.ErrBadCredentials,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := a.Authenticate(t.Context(), tt.req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || id != (auth.Identity{}) {
					t.Fatalf("Authenticate() = %+v, %v; want error %v", id, err, tt.wantErr)
				}
				return
			}
			if err != nil || id.App.Name != tt.app || id.Device.Name != tt.device {
				t.Fatalf("Authenticate() = %+v, %v; want %s/%s", id, err, tt.app, tt.device)
			}
		})
	}
}

func BenchmarkPSKKey(b *testing.B) {
	a := auth.New(registry.NewStore(pskRegistry(b)), auth.Options{})
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.PSKKey("ordered@app1", now); err != nil {
			b.Fatal(err)
		}
	}
}
