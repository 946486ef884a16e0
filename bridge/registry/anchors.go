package registry

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// roleAnchor is the role of an application key taken from the subject of
// one of its trust anchors.
const roleAnchor = "trust-anchor subject"

// pemMarker starts every PEM block.
const pemMarker = "-----BEGIN "

// parseAnchor parses one spec.trustAnchors.anchors[].certificate value: base64
// of PEM text, as Drogue stores it (drogue-mqtt.md §2), or PEM text. Every
// PEM block must be a CERTIFICATE of a CA; text around the blocks is
// ignored.
func parseAnchor(s string) ([]*x509.Certificate, error) {
	data := []byte(s)
	if !strings.Contains(s, pemMarker) {
		decoded, err := base64.StdEncoding.DecodeString(strings.Map(dropSpace, s))
		if err != nil {
			return nil, fmt.Errorf("neither PEM text nor base64 of PEM text: %v", err)
		}
		if !bytes.Contains(decoded, []byte(pemMarker)) {
			return nil, errors.New("base64 does not decode to PEM text (want base64 of PEM, or PEM)")
		}
		data = decoded
	}
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		block, rest := pem.Decode(data)
		if block == nil {
			if bytes.Contains(data, []byte(pemMarker)) {
				return nil, fmt.Errorf("PEM block %d is incomplete or broken", n)
			}
			break
		}
		data = rest
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is %q, want CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %v", n, err)
		}
		// X.509 v1 certificates cannot say they are a CA; v3 ones must.
		if c.Version >= 3 && !(c.BasicConstraintsValid && c.IsCA) {
			return nil, fmt.Errorf("PEM block %d: certificate %q is not a CA (basicConstraints cA is not true)", n, subjectDN(c))
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// dropSpace drops white space, which YAML block scalars put into long
// base64 values.
func dropSpace(r rune) rune {
	if unicode.IsSpace(r) {
		return -1
	}
	return r
}

// subjectDN returns the DN string of c's subject for messages.
func subjectDN(c *x509.Certificate) string {
	dn, err := DNString(c.RawSubject)
	if err != nil {
		return c.Subject.String() // only for a message
	}
	return dn
}

// anchorOwner is an application holding a CA as a trust anchor.
type anchorOwner struct {
	app    placed[*Application]
	anchor int // index in spec.trustAnchors.anchors
	cert   *x509.Certificate
}

// checkAnchors reports CA subjects shared by two applications: the issuer
// of a client certificate must identify one application (SPEC §5). It
// returns, per application, the DN strings already reported that way, so
// that the clash of the same strings as aliases is not reported again.
// Within one application, anchors may share a subject (a CA and its
// re-keyed successor).
func (b *builder) checkAnchors() map[*Application]map[string]bool {
	owners := make(map[string][]anchorOwner) // by RawSubject
	reported := make(map[*Application]map[string]bool)
	for _, a := range b.apps {
		for i, c := range a.obj.Anchors {
			idx := a.obj.anchorOf[i]
			prev := owners[string(c.RawSubject)]
			owners[string(c.RawSubject)] = append(prev, anchorOwner{app: a, anchor: idx, cert: c})
			other := slices.IndexFunc(prev, func(o anchorOwner) bool { return o.app.obj != a.obj })
			if other < 0 {
				continue
			}
			if same := slices.IndexFunc(prev, func(o anchorOwner) bool {
				return o.app.obj != a.obj && bytes.Equal(o.cert.RawSubjectPublicKeyInfo, c.RawSubjectPublicKeyInfo)
			}); same >= 0 {
				b.problemf(a.pos, a.where, "spec.trustAnchors.anchors[%d]: CA %q is also trust anchor %d of %s; a CA belongs to one application",
					idx, subjectDN(c), prev[same].anchor, prev[same].app.where)
			} else {
				b.problemf(a.pos, a.where, "spec.trustAnchors.anchors[%d]: CA subject %q is also the subject of trust anchor %d of %s; an issuer must identify one application",
					idx, subjectDN(c), prev[other].anchor, prev[other].app.where)
			}
			if reported[a.obj] == nil {
				reported[a.obj] = make(map[string]bool)
			}
			reported[a.obj][subjectDN(c)] = true
		}
	}
	return reported
}

// ApplicationForIssuer returns the application one of whose trust anchors
// has cert's issuer as subject, that is the application whose CA issued
// cert directly. A CA subject belongs to at most one application, so the
// issuer name alone decides; whether cert really was signed by that CA is
// for the caller to verify against the application's Anchors.
func (r *Registry) ApplicationForIssuer(cert *x509.Certificate) (*Application, bool) {
	if r == nil || cert == nil {
		return nil, false
	}
	a, ok := r.issuers[string(cert.RawIssuer)]
	return a, ok
}
