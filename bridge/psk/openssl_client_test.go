//go:build psk && cgo

package psk

import (
	"context"
	"crypto/tls"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const echoLine = "hello over psk\n"

// sClient runs `openssl s_client` against addr, sends echoLine and waits until the server
// closes the connection. It returns the combined output and the exit error.
func sClient(t *testing.T, addr, keyHex, identity string, args ...string) (string, error) {
	t.Helper()
	openssl := requireTool(t, "openssl")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	argv := append([]string{"s_client", "-connect", addr, "-psk", keyHex, "-psk_identity", identity, "-ign_eof"},
		args...)
	cmd := exec.CommandContext(ctx, openssl, argv...)
	cmd.Stdin = strings.NewReader(echoLine)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("openssl s_client hung: %s", out)
	}
	return string(out), err
}

func TestOpenSSLClientTLS12(t *testing.T) {
	requireTool(t, "openssl")
	cases := []struct {
		cipher string
		id     uint16
	}{
		{"PSK-AES128-GCM-SHA256", 0x00a8},
		{"PSK-AES256-GCM-SHA384", 0x00a9},
		{"PSK-AES128-CCM8", 0xc0a8},
		{"PSK-AES128-CCM", 0xc0a4},
		{"ECDHE-PSK-AES128-CBC-SHA256", 0xc037},
		{"ECDHE-PSK-CHACHA20-POLY1305", 0xccac},
		{"PSK-CHACHA20-POLY1305", 0xccab},
	}
	for _, tc := range cases {
		t.Run(tc.cipher, func(t *testing.T) {
			keys := &testKeys{}
			addr, results := startEchoServer(t, keys.key)
			out, err := sClient(t, addr, testKeyHex, testIdentity, "-tls1_2", "-cipher", tc.cipher)
			res := waitResult(t, results)
			if res.err != nil {
				t.Fatalf("server: %v\nclient output:\n%s", res.err, out)
			}
			if err != nil {
				t.Fatalf("s_client: %v\n%s", err, out)
			}
			if !strings.Contains(out, strings.TrimSpace(echoLine)) {
				t.Errorf("s_client did not get the echo back:\n%s", out)
			}
			if !strings.Contains(out, "Cipher is "+tc.cipher) {
				t.Errorf("s_client output does not name cipher %s:\n%s", tc.cipher, out)
			}
			if res.line != echoLine || res.identity != testIdentity {
				t.Errorf("server got line %q identity %q", res.line, res.identity)
			}
			if st := res.state; st.Version != tls.VersionTLS12 || st.CipherSuite != tc.id || !st.HandshakeComplete ||
				len(st.PeerCertificates) != 0 {
				t.Errorf("ConnectionState = version %#x cipher %#x complete %v certs %d; want TLS 1.2, %#x",
					st.Version, st.CipherSuite, st.HandshakeComplete, len(st.PeerCertificates), tc.id)
			}
			if n := keys.lookups.Load(); n != 1 {
				t.Errorf("KeyFunc called %d times, want 1", n)
			}
		})
	}
}

func TestOpenSSLClientTLS13(t *testing.T) {
	requireTool(t, "openssl")
	cases := []struct {
		name string
		args []string
		id   uint16 // 0: any SHA-256 suite
	}{
		// s_client offers TLS_AES_256_GCM_SHA384 first; the server must still pick a SHA-256
		// suite, the hash of the external PSK.
		{"default suites", nil, 0},
		{"AES128-GCM", []string{"-ciphersuites", "TLS_AES_128_GCM_SHA256"}, 0x1301},
		{"CHACHA20", []string{"-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"}, 0x1303},
		{"AES128-CCM", []string{"-ciphersuites", "TLS_AES_128_CCM_SHA256"}, 0x1304},
		{"AES128-CCM8", []string{"-ciphersuites", "TLS_AES_128_CCM_8_SHA256"}, 0x1305},
		{"SNI", []string{"-servername", "mqtt.example.com"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := &testKeys{}
			addr, results := startEchoServer(t, keys.key)
			out, err := sClient(t, addr, testKeyHex, testIdentity, append([]string{"-tls1_3"}, tc.args...)...)
			res := waitResult(t, results)
			if res.err != nil {
				t.Fatalf("server: %v\nclient output:\n%s", res.err, out)
			}
			if err != nil {
				t.Fatalf("s_client: %v\n%s", err, out)
			}
			if !strings.Contains(out, strings.TrimSpace(echoLine)) || !strings.Contains(out, "TLSv1.3") {
				t.Errorf("s_client did not get the echo over TLS 1.3:\n%s", out)
			}
			if res.identity != testIdentity || res.state.Version != tls.VersionTLS13 {
				t.Errorf("server: identity %q version %#x", res.identity, res.state.Version)
			}
			switch cs := res.state.CipherSuite; {
			case tc.id != 0 && cs != tc.id:
				t.Errorf("cipher %#x, want %#x", cs, tc.id)
			case tc.id == 0 && cs != 0x1301 && cs != 0x1303:
				t.Errorf("cipher %#x, want a SHA-256 suite", cs)
			}
			if tc.name == "SNI" && res.state.ServerName != "mqtt.example.com" {
				t.Errorf("ServerName = %q", res.state.ServerName)
			}
			if n := keys.lookups.Load(); n != 1 {
				t.Errorf("KeyFunc called %d times, want 1", n)
			}
		})
	}
}

// TestOpenSSLClientRefused covers handshakes that must fail on both sides, with the reason in
// the server's error.
func TestOpenSSLClientRefused(t *testing.T) {
	requireTool(t, "openssl")
	wrongKey := "00112233445566778899aabbccddeeff"
	cases := []struct {
		name     string
		key, id  string
		args     []string
		keyErr   bool   // the error wraps errUnknownIdentity
		contains string // in the server's error
	}{
		{"wrong key TLS 1.2", wrongKey, testIdentity, []string{"-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"}, false, "bad record mac"},
		{"wrong key TLS 1.3", wrongKey, testIdentity, []string{"-tls1_3"}, false, "binder does not verify"},
		{"unknown identity TLS 1.2", testKeyHex, "nobody@app", []string{"-tls1_2", "-cipher", "PSK-AES128-GCM-SHA256"}, true, "psk identity not found"},
		{"unknown identity TLS 1.3", testKeyHex, "nobody@app", []string{"-tls1_3"}, true, `identity "nobody@app"`},
		{"no shared cipher", testKeyHex, testIdentity, []string{"-tls1_2", "-cipher", "PSK-AES128-CBC-SHA"}, false, "no shared cipher"},
		{"TLS 1.1", testKeyHex, testIdentity, []string{"-tls1_1", "-cipher", "PSK-AES128-CBC-SHA@SECLEVEL=0"}, false, "unsupported protocol"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := &testKeys{}
			addr, results := startEchoServer(t, keys.key)
			out, cerr := sClient(t, addr, tc.key, tc.id, tc.args...)
			res := waitResult(t, results)
			t.Logf("server error: %v", res.err)
			if res.err == nil {
				t.Fatalf("the server accepted the handshake\n%s", out)
			}
			if !strings.Contains(res.err.Error(), "psk: handshake failed") || !strings.Contains(res.err.Error(), tc.contains) {
				t.Errorf("server error %q does not contain %q", res.err, tc.contains)
			}
			if tc.keyErr != errors.Is(res.err, errUnknownIdentity) {
				t.Errorf("errors.Is(err, errUnknownIdentity) = %v, want %v", !tc.keyErr, tc.keyErr)
			}
			if cerr == nil || strings.Contains(out, strings.TrimSpace(echoLine)) {
				t.Errorf("s_client succeeded (err %v):\n%s", cerr, out)
			}
			if tc.keyErr && keys.lookups.Load() != 1 {
				t.Errorf("KeyFunc called %d times, want 1", keys.lookups.Load())
			}
		})
	}
}
