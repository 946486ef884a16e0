package auth

import (
	"crypto/x509"
	"fmt"
	"slices"

	"mqtt-endpoint/bridge/registry"
)

// certificate is row C: a TLS client certificate chain, leaf first
// (drogue-mqtt.md §1, §2 "X.509"; SPEC §5). The application is the one whose
// trust anchor issued the first certificate of the chain, leaf first, that
// one issued; the leaf must then verify, through the presented
// intermediates, to that application's anchors only, for client
// authentication, with every certificate of the chain within its validity
// period. The device is the one whose name or alias is the leaf subject's
// DN string (registry.DNString), else its common name. Device credentials
// are not consulted.
func (a *Authenticator) certificate(r *registry.Registry, certs []*x509.Certificate) (Identity, error) {
	if slices.Contains(certs, nil) {
		return Identity{}, ErrBadCredentials
	}
	leaf := certs[0]
	var app *registry.Application
	for _, c := range certs {
		if found, ok := r.ApplicationForIssuer(c); ok {
			app = found
			break
		}
	}
	if app == nil {
		return Identity{}, fmt.Errorf("%w: client certificate %s: no application has its issuer %s as trust anchor",
			ErrBadCredentials, dnOf(leaf.RawSubject), dnOf(leaf.RawIssuer))
	}
	opts := x509.VerifyOptions{
		Roots:       x509.NewCertPool(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		CurrentTime: a.now(),
	}
	for _, c := range app.Anchors {
		opts.Roots.AddCert(c)
	}
	if len(certs) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range certs[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := leaf.Verify(opts); err != nil {
		return Identity{}, fmt.Errorf("%w: client certificate %s for application %q: %v",
			ErrBadCredentials, dnOf(leaf.RawSubject), app.Name, err)
	}
	dev, ok := certDevice(r, app, leaf)
	if !ok {
		return Identity{}, fmt.Errorf("%w: client certificate %s: application %q has no device named by its subject or common name",
			ErrBadCredentials, dnOf(leaf.RawSubject), app.Name)
	}
	if app.Disabled || dev.Disabled {
		return Identity{}, ErrDisabled
	}
	return Identity{App: app, Device: dev}, nil
}

// certDevice finds the device of app whose name or alias is the DN string
// of leaf's subject, else its common name.
func certDevice(r *registry.Registry, app *registry.Application, leaf *x509.Certificate) (*registry.Device, bool) {
	if dn, err := registry.DNString(leaf.RawSubject); err == nil && dn != "" {
		if d, ok := r.Device(app.Name, dn); ok {
			return d, true
		}
	}
	if cn := leaf.Subject.CommonName; cn != "" {
		return r.Device(app.Name, cn)
	}
	return nil, false
}

// dnOf quotes the DN string of a raw name for a log message.
func dnOf(raw []byte) string {
	dn, err := registry.DNString(raw)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return fmt.Sprintf("%q", dn)
}
