package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/bridge/registry"
)

// keyPair is a certificate and its private key.
type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// certSpec describes a certificate to create.
type certSpec struct {
	subject   pkix.Name
	ca        bool
	notBefore time.Time // zero: an hour ago
	notAfter  time.Time // zero: in an hour
	eku       []x509.ExtKeyUsage
}

// create makes an ECDSA P-256 certificate signed by parent, self-signed when
// parent is nil.
func create(t testing.TB, s certSpec, parent *keyPair) *keyPair {
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
		Subject:               s.subject,
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  s.ca,
		ExtKeyUsage:           s.eku,
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(time.Hour)
	}
	if s.ca {
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
	return &keyPair{cert: c, key: key}
}

// anchor returns a trust-anchor value as Drogue stores it: base64 of PEM.
func anchor(c *x509.Certificate) string {
	return base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// chain lists the certificates a client presents, leaf first.
func chain(kps ...*keyPair) []*x509.Certificate {
	out := make([]*x509.Certificate, len(kps))
	for i, kp := range kps {
		out[i] = kp.cert
	}
	return out
}

// x509Fixture is a registry of applications with CAs, and certificates.
type x509Fixture struct {
	reg                                          *registry.Registry
	rootA, interA, rootB, expiredRoot, rootD     *keyPair
	leafDN, leafCN, leafAlias, leafInter, leafB  *keyPair
	leafUnknownCA, leafExpired, leafFuture       *keyPair
	leafExpiredAnchor, leafForged, leafServerEKU *keyPair
	leafOffDev, leafOffApp, leafNoDevice         *keyPair
}

func newX509Fixture(t testing.TB) *x509Fixture {
	f := &x509Fixture{}
	ca := func(cn string, parent *keyPair) *keyPair {
		return create(t, certSpec{subject: pkix.Name{Organization: []string{"Drogue IoT"}, OrganizationalUnit: []string{"Cloud"}, CommonName: cn}, ca: true}, parent)
	}
	leaf := func(subject pkix.Name, parent *keyPair) *keyPair {
		return create(t, certSpec{subject: subject, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, parent)
	}
	cn := func(name string) pkix.Name { return pkix.Name{CommonName: name} }

	f.rootA = ca("App A CA", nil)
	f.interA = ca("App A Intermediate", f.rootA)
	f.rootB = ca("App B CA", nil)
	f.rootD = ca("App D CA", nil)
	f.expiredRoot = create(t, certSpec{subject: cn("Expired CA"), ca: true,
		notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)}, nil)
	unknownCA := ca("Unknown CA", nil)

	f.leafDN = leaf(pkix.Name{Organization: []string{"Drogue IoT"}, OrganizationalUnit: []string{"Cloud"}, CommonName: "Device 1"}, f.rootA)
	f.leafCN = leaf(pkix.Name{Organization: []string{"Somewhere"}, CommonName: "device2"}, f.rootA)
	f.leafAlias = leaf(pkix.Name{Organization: []string{"Drogue IoT"}, CommonName: "Sensor 3"}, f.rootA)
	f.leafInter = leaf(cn("device2"), f.interA)
	f.leafB = leaf(cn("device2"), f.rootB)
	f.leafUnknownCA = leaf(cn("device2"), unknownCA)
	f.leafExpired = create(t, certSpec{subject: cn("device2"),
		notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Minute)}, f.rootA)
	f.leafFuture = create(t, certSpec{subject: cn("device2"),
		notBefore: time.Now().Add(time.Minute), notAfter: time.Now().Add(48 * time.Hour)}, f.rootA)
	f.leafExpiredAnchor = leaf(cn("devC"), f.expiredRoot)
	f.leafServerEKU = create(t, certSpec{subject: cn("device2"), eku: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, f.rootA)
	f.leafOffDev = leaf(cn("off-dev"), f.rootA)
	f.leafOffApp = leaf(cn("devD"), f.rootD)
	f.leafNoDevice = leaf(cn("nobody"), f.rootA)
	// Forged: names app A's CA as issuer but is signed by app B's CA key.
	fakeA := &keyPair{cert: &x509.Certificate{
		RawSubject: f.rootA.cert.RawSubject, Subject: f.rootA.cert.Subject,
		PublicKey: f.rootB.cert.PublicKey, SubjectKeyId: f.rootA.cert.SubjectKeyId,
	}, key: f.rootB.key}
	f.leafForged = leaf(cn("device2"), fakeA)

	f.reg = parse(t, fmt.Sprintf(`
kind: Application
metadata: {name: appA}
spec: {trustAnchors: {anchors: [{certificate: %s}]}}
---
kind: Application
metadata: {name: appB}
spec: {trustAnchors: {anchors: [{certificate: %s}]}}
---
kind: Application
metadata: {name: appC}
spec: {trustAnchors: {anchors: [{certificate: %s}]}}
---
kind: Application
metadata: {name: appD}
spec: {core: {disabled: true}, trustAnchors: {anchors: [{certificate: %s}]}}
---
kind: Device
metadata: {name: "O=Drogue IoT, OU=Cloud, CN=Device 1", application: appA}
---
kind: Device
metadata: {name: Device 1, application: appA}
---
kind: Device
metadata: {name: device2, application: appA}
spec: {authentication: {credentials: [{pass: pw2}]}}
---
kind: Device
metadata: {name: device3, application: appA}
spec: {alias: ["O=Drogue IoT, CN=Sensor 3"]}
---
kind: Device
metadata: {name: off-dev, application: appA}
spec: {core: {disabled: true}}
---
kind: Device
metadata: {name: devB, application: appB}
---
kind: Device
metadata: {name: devC, application: appC}
---
kind: Device
metadata: {name: devD, application: appD}
`, anchor(f.rootA.cert), anchor(f.rootB.cert), anchor(f.expiredRoot.cert), anchor(f.rootD.cert)))
	return f
}

func TestAuthenticateCertificate(t *testing.T) {
	f := newX509Fixture(t)
	a := auth.New(registry.NewStore(f.reg), auth.Options{})
	certOnly := func(kps ...*keyPair) auth.Request {
		return auth.Request{ClientID: "whatever", Certificates: chain(kps...)}
	}
	tests := []struct {
		name    string
		req     auth.Request
		app     string
		device  string
		wantErr error
	}{
		{name: "device named by the subject DN", req: certOnly(f.leafDN), app: "appA", device: "O=Drogue IoT, OU=Cloud, CN=Device 1"},
		{name: "device found by common name", req: certOnly(f.leafCN), app: "appA", device: "device2"},
		{name: "device found by DN alias", req: certOnly(f.leafAlias), app: "appA", device: "device3"},
		{name: "via an intermediate CA, the root is the anchor", req: certOnly(f.leafInter, f.interA), app: "appA", device: "device2"},
		{name: "anchor presented too", req: certOnly(f.leafCN, f.rootA), app: "appA", device: "device2"},
		{name: "intermediate missing", req: certOnly(f.leafInter), wantErr: auth.ErrBadCredentials},
		{name: "unknown CA", req: certOnly(f.leafUnknownCA), wantErr: auth.ErrBadCredentials},
		{name: "expired leaf", req: certOnly(f.leafExpired), wantErr: auth.ErrBadCredentials},
		{name: "leaf not yet valid", req: certOnly(f.leafFuture), wantErr: auth.ErrBadCredentials},
		{name: "expired anchor", req: certOnly(f.leafExpiredAnchor), wantErr: auth.ErrBadCredentials},
		{name: "leaf for server authentication only", req: certOnly(f.leafServerEKU), wantErr: auth.ErrBadCredentials},
		{name: "no device by DN or CN", req: certOnly(f.leafNoDevice), wantErr: auth.ErrBadCredentials},
		{name: "app B's CA does not reach app A's devices", req: certOnly(f.leafB), wantErr: auth.ErrBadCredentials},
		{name: "app B's CA key under app A's CA name", req: certOnly(f.leafForged), wantErr: auth.ErrBadCredentials},
		{name: "app A's chain after app B's leaf", req: certOnly(f.leafB, f.interA), wantErr: auth.ErrBadCredentials},
		{name: "disabled device", req: certOnly(f.leafOffDev), wantErr: auth.ErrDisabled},
		{name: "disabled application", req: certOnly(f.leafOffApp), wantErr: auth.ErrDisabled},
		{name: "nil certificate in the chain", req: auth.Request{Certificates: []*x509.Certificate{f.leafCN.cert, nil}}, wantErr: auth.ErrBadCredentials},
		{name: "empty chain is no certificate", req: auth.Request{Certificates: []*x509.Certificate{}}, wantErr: auth.ErrBadCredentials},

		// A certificate rules out rows A and B (SPEC §5).
		{name: "certificate plus username", req: auth.Request{Username: "device2@appA", HasUsername: true, Certificates: chain(f.leafCN)}, wantErr: auth.ErrBadCredentials},
		{name: "certificate plus empty username", req: auth.Request{HasUsername: true, Certificates: chain(f.leafCN)}, wantErr: auth.ErrBadCredentials},
		{name: "certificate plus password", req: auth.Request{Password: []byte("pw2"), HasPassword: true, Certificates: chain(f.leafCN)}, wantErr: auth.ErrBadCredentials},
		{
			name:    "certificate plus valid row A credentials",
			req:     auth.Request{Username: "device2@appA", HasUsername: true, Password: []byte("pw2"), HasPassword: true, Certificates: chain(f.leafCN)},
			wantErr: auth.ErrBadCredentials,
		},
		{name: "certificate plus PSK identity", req: auth.Request{PSKIdentity: "device2@appA", Certificates: chain(f.leafCN)}, wantErr: auth.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := a.Authenticate(t.Context(), tt.req)
			if tt.wantErr != nil {
				t.Logf("refused: %v", err)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Authenticate() error = %v, want %v", err, tt.wantErr)
				}
				if id != (auth.Identity{}) {
					t.Errorf("refused Authenticate() returned identity %+v", id)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate() error = %v", err)
			}
			if id.App == nil || id.Device == nil || id.App.Name != tt.app || id.Device.Name != tt.device {
				t.Fatalf("Authenticate() = %+v, want %s/%s", id, tt.app, tt.device)
			}
		})
	}
	// The same client without its certificate still has row A.
	if _, err := a.Authenticate(t.Context(), auth.Request{Username: "device2@appA", HasUsername: true, Password: []byte("pw2"), HasPassword: true}); err != nil {
		t.Errorf("row A without certificate: %v", err)
	}
}

// TestCertificateTime checks that verification uses the Authenticator's
// clock for every certificate of the chain.
func TestCertificateTime(t *testing.T) {
	f := newX509Fixture(t)
	a := auth.New(registry.NewStore(f.reg), auth.Options{})
	req := auth.Request{Certificates: chain(f.leafInter, f.interA)}
	for _, tt := range []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{name: "now", now: time.Now(), ok: true},
		{name: "at the leaf's notAfter", now: f.leafInter.cert.NotAfter, ok: true},
		{name: "after the leaf's notAfter", now: f.leafInter.cert.NotAfter.Add(time.Second)},
		{name: "before the intermediate's notBefore", now: f.interA.cert.NotBefore.Add(-time.Second)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			auth.SetNow(a, func() time.Time { return tt.now })
			_, err := a.Authenticate(t.Context(), req)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, auth.ErrBadCredentials)) {
				t.Errorf("Authenticate() error = %v, want ok = %t", err, tt.ok)
			}
		})
	}
}

// TestCertificateAfterReload checks that a reload removing an application's
// anchor refuses its certificates from then on.
func TestCertificateAfterReload(t *testing.T) {
	f := newX509Fixture(t)
	var src swappable
	src.p.Store(f.reg)
	a := auth.New(&src, auth.Options{})
	req := auth.Request{Certificates: chain(f.leafCN)}
	if _, err := a.Authenticate(t.Context(), req); err != nil {
		t.Fatalf("before reload: %v", err)
	}
	src.p.Store(parse(t, "kind: Application\nmetadata: {name: appA}\n---\nkind: Device\nmetadata: {name: device2, application: appA}\n"))
	if _, err := a.Authenticate(t.Context(), req); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("after the anchor was removed: error = %v, want ErrBadCredentials", err)
	}
	// Another application taking over the CA gets the certificate, not appA.
	src.p.Store(parse(t, fmt.Sprintf("kind: Application\nmetadata: {name: appX}\nspec: {trustAnchors: {anchors: [{certificate: %s}]}}\n---\nkind: Device\nmetadata: {name: device2, application: appX}\n", anchor(f.rootA.cert))))
	if id, err := a.Authenticate(t.Context(), req); err != nil || id.App.Name != "appX" {
		t.Errorf("after the anchor moved: %+v, %v; want appX/device2", id, err)
	}
}

func BenchmarkAuthenticateCertificate(b *testing.B) {
	f := newX509Fixture(b)
	a := auth.New(registry.NewStore(f.reg), auth.Options{})
	for _, bc := range []struct {
		name string
		req  auth.Request
	}{
		{"direct", auth.Request{Certificates: chain(f.leafCN)}},
		{"intermediate", auth.Request{Certificates: chain(f.leafInter, f.interA)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(b.Context(), bc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
