package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"mqtt-endpoint/bridge/registry"
)

// Refusals of Authenticate. Retrying with the same credentials does not help.
var (
	// ErrBadCredentials covers a wrong password, an unknown device or
	// application and malformed input alike; callers must not tell them
	// apart (SPEC §5: v3 code 4, v5 0x86).
	ErrBadCredentials = errors.New("bad credentials")
	// ErrDisabled means the credentials are right but the application or the
	// device has spec.core.disabled (SPEC §5: v3 code 5, v5 0x87).
	ErrDisabled = errors.New("application or device disabled")
)

// Request is what a client presented in its CONNECT packet and its TLS
// handshake.
type Request struct {
	Username    string
	HasUsername bool
	Password    []byte
	HasPassword bool
	ClientID    string
	// Certificates is the TLS client certificate chain as presented, leaf
	// first (tls.ConnectionState.PeerCertificates), not yet verified.
	Certificates []*x509.Certificate
	// PSKIdentity is the TLS-PSK identity, set only by a listener whose
	// handshake verified the key PSKKey returned for it.
	PSKIdentity string
}

// Identity is the application and device a client authenticated as: the
// registry objects themselves, so their Name is the resolved metadata.name
// even when the client presented an alias.
type Identity struct {
	App    *registry.Application
	Device *registry.Device
}

// Options tunes an Authenticator; the zero value means the defaults.
type Options struct {
	// CacheSize bounds the remembered successful hash verifications;
	// 0 means 65536 and a negative value disables remembering.
	CacheSize int
	// CacheTTL is how long a verification is remembered; 0 means 10 minutes.
	CacheTTL time.Duration
	// MaxConcurrentHashes bounds concurrent bcrypt and SHA-512 crypt
	// computations; 0 means GOMAXPROCS.
	MaxConcurrentHashes int
}

// Defaults for zero Options fields.
const (
	defaultCacheSize = 65536
	defaultCacheTTL  = 10 * time.Minute
)

// Authenticator checks CONNECT credentials against the current registry. It
// is safe for concurrent use.
type Authenticator struct {
	reg    interface{ Current() *registry.Registry }
	cache  *cache           // nil when disabled
	hashes chan struct{}    // semaphore bounding slow hash computations
	now    func() time.Time // the clock client certificates are verified with
	// onSlow, when set, runs before every slow hash computation; a test seam.
	onSlow func()
}

// New returns an Authenticator that reads reg.Current() on every call, so
// that registry reloads apply to the next connection.
func New(reg interface{ Current() *registry.Registry }, opts Options) *Authenticator {
	if opts.CacheSize == 0 {
		opts.CacheSize = defaultCacheSize
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = defaultCacheTTL
	}
	if opts.MaxConcurrentHashes <= 0 {
		opts.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	a := &Authenticator{reg: reg, hashes: make(chan struct{}, opts.MaxConcurrentHashes), now: time.Now}
	if opts.CacheSize > 0 {
		a.cache = newCache(opts.CacheSize, opts.CacheTTL)
	}
	return a
}

// Authenticate returns the identity req proves, following the first row of
// Drogue's credential matrix that fits req (SPEC §5, drogue-mqtt.md §1):
//
//	A: username "<device>@<app>" and password;
//	B: username without '@', password, client id "<device>@<app>";
//	C: a client certificate, no username, no password;
//	D: a TLS-PSK identity, no username, no password.
//
// Rows A and B need neither a certificate nor a PSK identity, so a
// certificate or a PSK identity together with a username or a password is
// refused, and so is a username without a password.
//
// Credentials are checked before the disabled flags, so ErrDisabled is only
// ever returned to a client that proved who it is. A refusal is or wraps
// ErrBadCredentials or ErrDisabled; the wrapped detail (why a certificate
// did not verify, say) is for the log, never for the client. Any other
// error means the check did not finish (ctx was done); refuse the client
// then too.
func (a *Authenticator) Authenticate(ctx context.Context, req Request) (Identity, error) {
	if req.HasPassword && !utf8.Valid(req.Password) {
		return Identity{}, ErrBadCredentials // drogue-mqtt.md §1: the password must be UTF-8
	}
	r := a.reg.Current()
	userPass := req.HasUsername && req.HasPassword
	neither := !req.HasUsername && !req.HasPassword
	cert, psk := len(req.Certificates) > 0, req.PSKIdentity != ""
	switch {
	case userPass && !cert && !psk && strings.Contains(req.Username, "@"):
		return a.deviceUsername(ctx, r, req)
	case userPass && !cert && !psk:
		return a.userClientID(ctx, r, req)
	case neither && cert && !psk:
		return a.certificate(r, req.Certificates)
	case neither && psk && !cert:
		return pskIdentity(r, req.PSKIdentity)
	default:
		// Includes a username without a password, which MQTT 3.1.1 allows,
		// and a certificate or PSK identity with a username (SPEC §5).
		return Identity{}, ErrBadCredentials
	}
}

// deviceUsername is row A: username "<device>@<app>" and a password. It
// passes on any pass credential, a unique user credential whose username
// is the device string presented, or a non-unique one whose username is
// the device's name (drogue-mqtt.md §2).
func (a *Authenticator) deviceUsername(ctx context.Context, r *registry.Registry, req Request) (Identity, error) {
	device, app, ok := ParseUsername(req.Username)
	if !ok {
		return Identity{}, ErrBadCredentials
	}
	id, ok := lookup(r, app, device)
	if !ok {
		return Identity{}, ErrBadCredentials
	}
	var candidates []registry.Password
	for _, c := range id.Device.Credentials {
		switch {
		case c.Kind == registry.CredentialPass,
			c.Kind == registry.CredentialUser && c.Unique && c.Username == device,
			c.Kind == registry.CredentialUser && !c.Unique && c.Username == id.Device.Name:
			candidates = append(candidates, c.Password)
		}
	}
	return a.verify(ctx, id, candidates, req.Password)
}

// userClientID is row B: a username without '@', a password and the client
// id "<device>@<app>". It passes on a pass credential when the username is
// the device's name, or on any user credential with that username
// (drogue-mqtt.md §2).
func (a *Authenticator) userClientID(ctx context.Context, r *registry.Registry, req Request) (Identity, error) {
	device, app, ok := ParseUsername(req.ClientID)
	if !ok {
		return Identity{}, ErrBadCredentials
	}
	id, ok := lookup(r, app, device)
	if !ok {
		return Identity{}, ErrBadCredentials
	}
	var candidates []registry.Password
	for _, c := range id.Device.Credentials {
		switch {
		case c.Kind == registry.CredentialPass && req.Username == id.Device.Name,
			c.Kind == registry.CredentialUser && c.Username == req.Username:
			candidates = append(candidates, c.Password)
		}
	}
	return a.verify(ctx, id, candidates, req.Password)
}

// lookup finds the application and the device by name or alias.
func lookup(r *registry.Registry, app, device string) (Identity, bool) {
	a, ok := r.Application(app)
	if !ok {
		return Identity{}, false
	}
	d, ok := r.Device(a.Name, device)
	if !ok {
		return Identity{}, false
	}
	return Identity{App: a, Device: d}, true
}

// verify accepts id when password matches one of candidates and neither
// the application nor the device is disabled.
func (a *Authenticator) verify(ctx context.Context, id Identity, candidates []registry.Password, password []byte) (Identity, error) {
	ok, err := a.match(ctx, candidates, password)
	switch {
	case err != nil:
		return Identity{}, err
	case !ok:
		return Identity{}, ErrBadCredentials
	case id.App.Disabled || id.Device.Disabled:
		// SPEC §9: unlike Drogue, a disabled device is refused too.
		return Identity{}, ErrDisabled
	default:
		return id, nil
	}
}
