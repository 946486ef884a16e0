package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate and its key.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// issue creates a certificate for subject signed by parent, self-signed when
// parent is nil.
func issue(t testing.TB, subject pkix.Name, isCA bool, parent *testCA) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	if isCA {
		tmpl.KeyUsage = x509.KeyUsageCertSign
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: key}
}

// pemText returns the PEM text of certs.
func pemText(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

// indent indents every line of s by n spaces, for a YAML block scalar.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pad)
}

func TestTrustAnchors(t *testing.T) {
	caA := issue(t, pkix.Name{Organization: []string{"Drogue IoT"}, CommonName: "CA A"}, true, nil)
	caA2 := issue(t, pkix.Name{Organization: []string{"Drogue IoT"}, CommonName: "CA A2"}, true, nil)
	caB := issue(t, pkix.Name{CommonName: "CA B"}, true, nil)
	interA := issue(t, pkix.Name{CommonName: "Intermediate A"}, true, caA)
	leafA := issue(t, pkix.Name{CommonName: "Device 1"}, false, caA)
	leafInter := issue(t, pkix.Name{CommonName: "Device 2"}, false, interA)
	leafB := issue(t, pkix.Name{CommonName: "Device 1"}, false, caB)
	unknown := issue(t, pkix.Name{CommonName: "Unknown CA"}, true, nil)
	leafUnknown := issue(t, pkix.Name{CommonName: "Device 1"}, false, unknown)

	b64 := base64.StdEncoding.EncodeToString([]byte(pemText(caA.cert)))
	r := mustParse(t, fmt.Sprintf(`
kind: Application
metadata: {name: appA}
spec:
  trustAnchors:
    anchors:
      - certificate: %s
      - certificate: |
%s
---
kind: Application
metadata: {name: appB}
spec:
  trustAnchors:
    anchors:
      - certificate: |
%s
---
kind: Application
metadata: {name: plain}
`, b64, indent(pemText(caA2.cert, caA.cert), 10), indent(pemText(caB.cert), 10)))

	appA, _ := r.Application("appA")
	appB, _ := r.Application("appB")
	if len(appA.TrustAnchors) != 2 || appA.TrustAnchors[0] != b64 {
		t.Errorf("appA TrustAnchors = %q, want the values as given", appA.TrustAnchors)
	}
	if len(appA.Anchors) != 3 || !appA.Anchors[0].Equal(caA.cert) || !appA.Anchors[1].Equal(caA2.cert) || !appA.Anchors[2].Equal(caA.cert) {
		t.Errorf("appA Anchors = %d certificates, want CA A, CA A2, CA A", len(appA.Anchors))
	}

	t.Run("ApplicationForIssuer", func(t *testing.T) {
		tests := []struct {
			name string
			cert *x509.Certificate
			want *Application
		}{
			{name: "leaf issued by an anchor", cert: leafA.cert, want: appA},
			{name: "intermediate issued by an anchor", cert: interA.cert, want: appA},
			{name: "leaf issued by an intermediate", cert: leafInter.cert},
			{name: "the anchor itself", cert: caA.cert, want: appA},
			{name: "anchor from a multi-certificate PEM", cert: caA2.cert, want: appA},
			{name: "other application", cert: leafB.cert, want: appB},
			{name: "unknown CA", cert: leafUnknown.cert},
			{name: "nil certificate"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, ok := r.ApplicationForIssuer(tt.cert)
				if ok != (tt.want != nil) || got != tt.want {
					t.Errorf("ApplicationForIssuer() = %v, %t; want %v", got, ok, tt.want)
				}
			})
		}
	})

	t.Run("alias by subject DN", func(t *testing.T) {
		tests := []struct {
			key  string
			want *Application
		}{
			{key: "O=Drogue IoT, CN=CA A", want: appA},
			{key: "O=Drogue IoT, CN=CA A2", want: appA},
			{key: "CN=CA B", want: appB},
			{key: "CN=CA A, O=Drogue IoT"},   // RFC 4514 order is no alias
			{key: caA.cert.Subject.String()}, // neither is Go's format
			{key: "CN=Intermediate A"},       // only anchors are aliases
		}
		for _, tt := range tests {
			if got, ok := r.Application(tt.key); ok != (tt.want != nil) || got != tt.want {
				t.Errorf("Application(%q) = %v, %t; want %v", tt.key, got, ok, tt.want)
			}
		}
	})
}

func TestTrustAnchorClashes(t *testing.T) {
	ca := issue(t, pkix.Name{CommonName: "Shared CA"}, true, nil)
	app := func(name string, certs ...*x509.Certificate) string {
		s := fmt.Sprintf("---\nkind: Application\nmetadata: {name: %q}\nspec:\n  trustAnchors:\n    anchors:\n", name)
		for _, c := range certs {
			s += "      - certificate: " + base64.StdEncoding.EncodeToString([]byte(pemText(c))) + "\n"
		}
		return s
	}
	tests := []struct {
		name string
		data string
		want []string // problem lines, "" = parses
	}{
		{
			name: "same CA twice in one application",
			data: app("a", ca.cert, ca.cert),
		},
		{
			name: "same CA in two applications",
			data: app("a", ca.cert) + app("b", ca.cert),
			want: []string{`test.yaml: document 2 (Application b): spec.trustAnchors.anchors[0]: CA "CN=Shared CA" is also trust anchor 0 of test.yaml: document 1 (Application a); a CA belongs to one application`},
		},
		{
			name: "another key under the same subject in two applications",
			data: app("a", ca.cert) + app("b", issue(t, pkix.Name{CommonName: "Shared CA"}, true, nil).cert),
			want: []string{`test.yaml: document 2 (Application b): spec.trustAnchors.anchors[0]: CA subject "CN=Shared CA" is also the subject of trust anchor 0 of test.yaml: document 1 (Application a); an issuer must identify one application`},
		},
		{
			name: "subject DN is another application's name",
			data: app("CN=Shared CA") + app("b", ca.cert),
			want: []string{`test.yaml: document 2 (Application b): trust-anchor subject "CN=Shared CA" is also the name of test.yaml: document 1 (Application CN=Shared CA)`},
		},
		{
			name: "subject DN is the application's own name",
			data: app("CN=Shared CA", ca.cert),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.data))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("Parse error:\n%s\nwant:\n%s", err, strings.Join(tt.want, "\n"))
			}
		})
	}
}
