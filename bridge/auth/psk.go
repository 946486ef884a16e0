package auth

import (
	"bytes"
	"strings"
	"time"

	"mqtt-endpoint/bridge/registry"
)

// PSKKey returns the TLS-PSK key of identity "<device>@<application>" at
// now; the PSK listener calls it inside the handshake (drogue-mqtt.md §2
// "TLS-PSK", SPEC §5). The identity is split at the first '@' and not
// percent-decoded; application and device are found by name or alias.
//
// The candidates are the device's psk credentials valid at now: from
// notBefore inclusive to notAfter exclusive, a missing bound being
// unbounded. Entries without validity come first, then the earliest
// notBefore, then the latest notAfter, then the first listed; the key of
// the first candidate is returned, as a copy.
//
// It fails with ErrBadCredentials for a malformed identity, an unknown
// application or device, or no candidate, and with ErrDisabled for a
// disabled application or device; either way the handshake must fail, and
// the client must not learn which. It only does map lookups and copies the
// key.
func (a *Authenticator) PSKKey(identity string, now time.Time) ([]byte, error) {
	id, err := pskIdentity(a.reg.Current(), identity)
	if err != nil {
		return nil, err
	}
	var best *registry.Credential
	for i := range id.Device.Credentials {
		c := &id.Device.Credentials[i]
		if c.Kind == registry.CredentialPSK && len(c.PSK) > 0 && pskValid(c, now) && (best == nil || pskBefore(c, best)) {
			best = c
		}
	}
	if best == nil {
		return nil, ErrBadCredentials
	}
	return bytes.Clone(best.PSK), nil
}

// pskIdentity resolves a TLS-PSK identity "<device>@<application>", split at
// the first '@' without percent-decoding. It is row D of Authenticate too:
// the handshake checked the key already (drogue-mqtt.md §1).
func pskIdentity(r *registry.Registry, identity string) (Identity, error) {
	device, app, ok := strings.Cut(identity, "@")
	if !ok || device == "" || app == "" {
		return Identity{}, ErrBadCredentials
	}
	id, ok := lookup(r, app, device)
	switch {
	case !ok:
		return Identity{}, ErrBadCredentials
	case id.App.Disabled || id.Device.Disabled:
		return Identity{}, ErrDisabled
	default:
		return id, nil
	}
}

// pskValid reports whether c's validity covers now: notBefore inclusive,
// notAfter exclusive, a zero bound unbounded.
func pskValid(c *registry.Credential, now time.Time) bool {
	return (c.NotBefore.IsZero() || !now.Before(c.NotBefore)) && (c.NotAfter.IsZero() || now.Before(c.NotAfter))
}

// pskBefore reports whether key x is preferred over y: no validity first,
// then the earliest notBefore (none is earliest), then the latest notAfter
// (none is latest). Ties keep the listed order.
func pskBefore(x, y *registry.Credential) bool {
	xNone, yNone := !hasValidity(x), !hasValidity(y)
	switch {
	case xNone || yNone:
		return xNone && !yNone
	case !x.NotBefore.Equal(y.NotBefore):
		return x.NotBefore.Before(y.NotBefore) // a zero time is the earliest
	case x.NotAfter.IsZero() || y.NotAfter.IsZero():
		return x.NotAfter.IsZero() && !y.NotAfter.IsZero()
	default:
		return x.NotAfter.After(y.NotAfter)
	}
}

// hasValidity reports whether c has a validity window at all.
func hasValidity(c *registry.Credential) bool {
	return !c.NotBefore.IsZero() || !c.NotAfter.IsZero()
}
