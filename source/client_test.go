package source

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestNewClientOverridesAndNamespace(t *testing.T) {
	sink := newTestSink(t, true, statuses(http.StatusAccepted))
	s := newTestClient(t, ClientOptions{
		Sink:        sink.url,
		CEOverrides: `{"extensions":{"cluster":"east","instance":"overridden"}}`,
		Namespace:   "iot",
	})
	f := NewForwarder(s, Options{Instance: "drogue"})
	closeForwarder(t, f)
	if err := f.Forward(t.Context(), testPublish()); err != nil {
		t.Fatalf("Forward: %v", err)
	}
	r := sink.next(t)
	ext := r.event.Extensions()
	tests := []struct{ name, got, want string }{
		{"added extension", str(ext["cluster"]), "east"},
		{"overwritten extension (applied last)", str(ext["instance"]), "overridden"},
		{"untouched extension", str(ext["device"]), "my-dev_1"},
		{"Kn-Namespace header", r.header.Get("Kn-Namespace"), "iot"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func TestNewClientPooling(t *testing.T) {
	tests := []struct {
		name      string
		maxConns  int
		senders   int
		perSender int
		wantMax   int64 // connections the sink may accept at most
	}{
		{"pool capped below concurrency", 8, 64, 10, 8},
		// A dial may race a connection being freed, so allow some slack;
		// the adapter's stock transport (2 idle per host) opens hundreds.
		{"default pool, 64 concurrent senders", 0, 64, 20, 2 * 64},
		{"single sender reuses one connection", 0, 1, 50, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := newTestSink(t, false, statuses(http.StatusAccepted))
			f := NewForwarder(newTestClient(t, ClientOptions{Sink: sink.url, MaxConnsPerHost: tt.maxConns}), Options{})
			closeForwarder(t, f)

			errs := make(chan error, tt.senders*tt.perSender)
			var wg sync.WaitGroup
			for range tt.senders {
				wg.Go(func() {
					for range tt.perSender {
						errs <- f.Forward(t.Context(), testPublish())
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Forward: %v", err)
				}
			}
			want := int64(tt.senders * tt.perSender)
			if got := sink.attempts.Load(); got != want {
				t.Errorf("requests = %d, want %d", got, want)
			}
			if got := sink.conns.Load(); got > tt.wantMax {
				t.Errorf("sink accepted %d connections for %d requests, want at most %d", got, want, tt.wantMax)
			}
			t.Logf("%d requests over %d connections", want, sink.conns.Load())
		})
	}
}

func TestNewClientReusesConnectionAfterResponseBody(t *testing.T) {
	// The SDK closes 2xx bodies unread; without draining, net/http would
	// open a new connection per event.
	sink := newTestSink(t, false, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("accepted, thanks"))
	})
	f := NewForwarder(newTestClient(t, ClientOptions{Sink: sink.url}), Options{})
	closeForwarder(t, f)
	for range 20 {
		if err := f.Forward(t.Context(), testPublish()); err != nil {
			t.Fatalf("Forward: %v", err)
		}
	}
	if got := sink.conns.Load(); got != 1 {
		t.Errorf("sink accepted %d connections for 20 sequential events, want 1", got)
	}
}

func TestNewClientTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pemOf := func(der []byte) *string {
		p := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		return &p
	}
	garbage := "not a certificate"
	tests := []struct {
		name    string
		caCerts *string
		wantErr error
	}{
		{"K_CA_CERTS trusts the sink", pemOf(srv.Certificate().Raw), nil},
		{"no K_CA_CERTS: unknown authority", nil, ErrSinkUnavailable},
		{"another CA", pemOf(selfSignedCA(t)), ErrSinkUnavailable},
		{"unparsable K_CA_CERTS", &garbage, ErrSinkUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := NewForwarder(newTestClient(t, ClientOptions{Sink: srv.URL, CACerts: tt.caCerts}), Options{
				Retries: -1, Timeout: 5 * time.Second,
			})
			closeForwarder(t, f)
			err := f.Forward(t.Context(), testPublish())
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Forward = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// selfSignedCA returns the DER of a fresh self-signed CA certificate.
func selfSignedCA(tb testing.TB) []byte {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "other CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestNewClientErrors(t *testing.T) {
	tests := []struct {
		name string
		o    ClientOptions
		want error // nil: any error
	}{
		{"no sink", ClientOptions{}, ErrNotReady},
		{"not a URL", ClientOptions{Sink: "http://[::1"}, nil},
		{"not http", ClientOptions{Sink: "ftp://broker"}, nil},
		{"no host", ClientOptions{Sink: "http:///path"}, nil},
		{"bad K_CE_OVERRIDES", ClientOptions{Sink: "http://broker", CEOverrides: "{"}, nil},
		{"line break in NAMESPACE", ClientOptions{Sink: "http://broker", Namespace: "iot\r\nX-Injected: 1"}, nil},
		{"user information in the sink", ClientOptions{Sink: "http://user:pw@broker"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewClient(tt.o)
			if err == nil || s != nil {
				t.Fatalf("NewClient = %v, %v; want error", s, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("NewClient error = %v, want %v", err, tt.want)
			}
		})
	}
}
