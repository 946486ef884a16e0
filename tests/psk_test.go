package tests

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// pskRegistry: keys are given in base64 in the registry and in hex to the clients.
var (
	pskKey      = []byte("0123456789abcdef0123456789abcdef")
	pskOldKey   = []byte("old-key-old-key-old-key-old-key!")
	pskRegistry = `
kind: Application
metadata: {name: psk-app}
---
kind: Device
metadata: {name: psk-dev, application: psk-app}
spec:
  authentication:
    credentials:
      - psk: {key: ` + base64.StdEncoding.EncodeToString(pskKey) + `}
---
kind: Device
metadata: {name: rotated, application: psk-app}
spec:
  authentication:
    credentials:
      - psk:
          key: ` + base64.StdEncoding.EncodeToString(pskOldKey) + `
          validity: {notBefore: "2020-01-01T00:00:00Z", notAfter: "2021-01-01T00:00:00Z"}
      - psk:
          key: ` + base64.StdEncoding.EncodeToString(pskKey) + `
          validity: {notBefore: "2021-01-01T00:00:00Z", notAfter: "2999-01-01T00:00:00Z"}
---
kind: Device
metadata: {name: future, application: psk-app}
spec:
  authentication:
    credentials:
      - psk:
          key: ` + base64.StdEncoding.EncodeToString(pskKey) + `
          validity: {notBefore: "2999-01-01T00:00:00Z"}
`
)

// requirePSKBuild skips unless the endpoint was built with -tags psk (CI runs that build too).
func requirePSKBuild(t *testing.T) {
	t.Helper()
	if !pskBuild {
		t.Skip("the endpoint is built without TLS-PSK; run go test -tags psk ./tests (CI does)")
	}
}

func TestPSKMosquitto(t *testing.T) {
	requirePSKBuild(t)
	pub := requireTool(t, "mosquitto_pub")
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: pskRegistry, Sink: s.URL})
	host, port, _ := strings.Cut(ep.Addrs["psk"], ":")
	run := func(identity string, key []byte, version string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, pub, "-h", host, "-p", port, "-V", version, "-q", "1",
			"--psk", hex.EncodeToString(key), "--psk-identity", identity,
			"-t", "telemetry", "-m", `{"psk":"`+version+`"}`).CombinedOutput()
	}
	for _, v := range []string{"mqttv311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			if out, err := run("psk-dev@psk-app", pskKey, v); err != nil {
				t.Fatalf("mosquitto_pub --psk: %v\n%s", err, out)
			}
			ev := s.nextData(t)
			wantEvent(t, ev, map[string]string{"device": "psk-dev", "application": "psk-app", "subject": "telemetry", "data": `{"psk":"` + v + `"}`})
		})
	}
	t.Run("current key of a rotated device", func(t *testing.T) {
		if out, err := run("rotated@psk-app", pskKey, "mqttv5"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if ev := s.nextData(t); ext(ev, "device") != "rotated" {
			t.Fatalf("event %s", ev)
		}
	})
	refused := []struct {
		name, identity string
		key            []byte
	}{
		{"wrong key", "psk-dev@psk-app", []byte("wrong-key-wrong-key-wrong-key-!!")},
		{"expired key", "rotated@psk-app", pskOldKey},
		{"key not yet valid", "future@psk-app", pskKey},
		{"unknown device", "nobody@psk-app", pskKey},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			if out, err := run(r.identity, r.key, "mqttv311"); err == nil {
				t.Fatalf("mosquitto_pub succeeded:\n%s", out)
			}
		})
	}
	s.none(t, typeEvent, 200*time.Millisecond)
}

func TestPSKOpenSSL(t *testing.T) {
	requirePSKBuild(t)
	openssl := requireTool(t, "openssl")
	ep := startEndpoint(t, endpointConfig{Registry: pskRegistry, Sink: newSink(t).URL})
	rows := []struct {
		name string
		args []string
		key  []byte
		ok   bool
	}{
		{"TLS 1.2 PSK-AES128-GCM-SHA256", []string{"-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"}, pskKey, true},
		{"TLS 1.2 ECDHE-PSK-CHACHA20-POLY1305", []string{"-tls1_2", "-cipher", "ECDHE-PSK-CHACHA20-POLY1305"}, pskKey, true},
		{"TLS 1.3 external PSK", []string{"-tls1_3"}, pskKey, true},
		{"TLS 1.3 wrong key", []string{"-tls1_3"}, []byte("nope-nope-nope-nope-nope-nope-!!"), false},
		{"TLS 1.2 wrong key", []string{"-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"}, []byte("nope-nope-nope-nope-nope-nope-!!"), false},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"s_client", "-connect", ep.Addrs["psk"], "-psk", hex.EncodeToString(r.key),
				"-psk_identity", "psk-dev@psk-app", "-brief"}, r.args...)
			cmd := exec.CommandContext(ctx, openssl, args...)
			cmd.Stdin = strings.NewReader("") // close at once after the handshake
			out, _ := cmd.CombinedOutput()
			established := strings.Contains(string(out), "CONNECTION ESTABLISHED")
			if established != r.ok {
				t.Fatalf("established=%v, want %v:\n%s", established, r.ok, out)
			}
		})
	}
}
