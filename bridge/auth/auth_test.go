package auth_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"golang.org/x/crypto/bcrypt"

	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/bridge/registry"
)

// swappable is a registry source whose snapshot a test replaces.
type swappable struct {
	p atomic.Pointer[registry.Registry]
}

func (s *swappable) Current() *registry.Registry { return s.p.Load() }

// bcryptHash hashes pw at the minimum cost.
func bcryptHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// sha512Hash hashes pw with SHA-512 crypt at the minimum rounds.
func sha512Hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := shacrypt.New(shacrypt.WithSHA512(), shacrypt.WithIterations(shacrypt.IterationsMin))
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	return d.Encode()
}

// parse builds a registry from YAML or fails the test.
func parse(t testing.TB, data string) *registry.Registry {
	t.Helper()
	r, err := registry.Parse("test.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// matrixRegistry has a device for every row of the credential matrix.
func matrixRegistry(t testing.TB) *registry.Registry {
	return parse(t, fmt.Sprintf(`
kind: Application
metadata: {name: app1}
---
kind: Application
metadata: {name: off-app}
spec: {core: {disabled: true}}
---
kind: Device
metadata: {name: d1, application: app1}
spec:
  alias: [d1-alias]
  authentication:
    credentials:
      - pass: pw1
      - pass: {bcrypt: %q}
      - pass: {sha512: %q}
      - user: {username: u-unique, password: upw, unique: true}
      - user: {username: d1, password: {bcrypt: %q}}
      - user: {username: other, password: opw}
---
kind: Device
metadata: {name: dev/x, application: app1}
spec: {authentication: {credentials: [{pass: pwx}]}}
---
kind: Device
metadata: {name: off-dev, application: app1}
spec:
  core: {disabled: true}
  authentication: {credentials: [{pass: pw2}]}
---
kind: Device
metadata: {name: d3, application: off-app}
spec: {authentication: {credentials: [{pass: pw3}]}}
---
kind: Device
metadata: {name: legacy, application: app1}
spec: {credentials: {credentials: [{pass: lpw}]}}
---
kind: Device
metadata: {name: nocreds, application: app1}
`, bcryptHash(t, "bpw"), sha512Hash(t, "spw"), bcryptHash(t, "nupw")))
}

func TestAuthenticate(t *testing.T) {
	a := auth.New(registry.NewStore(matrixRegistry(t)), auth.Options{})
	// rowA is a username "<device>@<app>" with a password.
	rowA := func(username, password string) auth.Request {
		return auth.Request{Username: username, HasUsername: true, Password: []byte(password), HasPassword: true, ClientID: "ignored"}
	}
	// rowB is a plain username and password with the client id "<device>@<app>".
	rowB := func(username, password, clientID string) auth.Request {
		return auth.Request{Username: username, HasUsername: true, Password: []byte(password), HasPassword: true, ClientID: clientID}
	}
	tests := []struct {
		name    string
		req     auth.Request
		app     string // expected application, "" when refused
		device  string // expected device
		wantErr error
	}{
		// Row A (drogue-mqtt.md §1, §2).
		{name: "A: pass by name", req: rowA("d1@app1", "pw1"), app: "app1", device: "d1"},
		{name: "A: pass by alias resolves to the name", req: rowA("d1-alias@app1", "pw1"), app: "app1", device: "d1"},
		{name: "A: bcrypt", req: rowA("d1@app1", "bpw"), app: "app1", device: "d1"},
		{name: "A: sha512", req: rowA("d1@app1", "spw"), app: "app1", device: "d1"},
		{name: "A: unique user by its username as device string", req: rowA("u-unique@app1", "upw"), app: "app1", device: "d1"},
		{name: "A: unique user needs its username presented", req: rowA("d1@app1", "upw"), wantErr: auth.ErrBadCredentials},
		{name: "A: non-unique user named like the device", req: rowA("d1@app1", "nupw"), app: "app1", device: "d1"},
		{name: "A: non-unique user named like the device, via alias", req: rowA("d1-alias@app1", "nupw"), app: "app1", device: "d1"},
		{name: "A: non-unique user with another username", req: rowA("d1@app1", "opw"), wantErr: auth.ErrBadCredentials},
		{name: "A: percent-decoded device", req: rowA("dev%2Fx@app1", "pwx"), app: "app1", device: "dev/x"},
		{name: "A: legacy credentials", req: rowA("legacy@app1", "lpw"), app: "app1", device: "legacy"},
		{name: "A: wrong password", req: rowA("d1@app1", "nope"), wantErr: auth.ErrBadCredentials},
		{name: "A: another device's password", req: rowA("d1@app1", "pwx"), wantErr: auth.ErrBadCredentials},
		{name: "A: empty password", req: rowA("d1@app1", ""), wantErr: auth.ErrBadCredentials},
		{name: "A: password not UTF-8", req: rowA("d1@app1", "pw1\xff"), wantErr: auth.ErrBadCredentials},
		{name: "A: unknown device", req: rowA("nobody@app1", "pw1"), wantErr: auth.ErrBadCredentials},
		{name: "A: unknown application", req: rowA("d1@app9", "pw1"), wantErr: auth.ErrBadCredentials},
		{name: "A: application alias of another case", req: rowA("d1@App1", "pw1"), wantErr: auth.ErrBadCredentials},
		{name: "A: empty device part", req: rowA("@app1", "pw1"), wantErr: auth.ErrBadCredentials},
		{name: "A: device without credentials", req: rowA("nocreds@app1", ""), wantErr: auth.ErrBadCredentials},
		{name: "A: disabled device (SPEC §9)", req: rowA("off-dev@app1", "pw2"), wantErr: auth.ErrDisabled},
		{name: "A: disabled device, wrong password", req: rowA("off-dev@app1", "nope"), wantErr: auth.ErrBadCredentials},
		{name: "A: disabled application", req: rowA("d3@off-app", "pw3"), wantErr: auth.ErrDisabled},
		{name: "A: disabled application, wrong password", req: rowA("d3@off-app", "nope"), wantErr: auth.ErrBadCredentials},

		// Row B.
		{name: "B: user credential by username", req: rowB("other", "opw", "d1@app1"), app: "app1", device: "d1"},
		{name: "B: unique user credential", req: rowB("u-unique", "upw", "d1@app1"), app: "app1", device: "d1"},
		{name: "B: client id by alias", req: rowB("other", "opw", "d1-alias@app1"), app: "app1", device: "d1"},
		{name: "B: user credential with bcrypt", req: rowB("d1", "nupw", "d1@app1"), app: "app1", device: "d1"},
		{name: "B: pass when the username is the device name", req: rowB("d1", "pw1", "d1@app1"), app: "app1", device: "d1"},
		{name: "B: pass when the username is an alias", req: rowB("d1-alias", "pw1", "d1@app1"), wantErr: auth.ErrBadCredentials},
		{name: "B: user password under another username", req: rowB("u-unique", "opw", "d1@app1"), wantErr: auth.ErrBadCredentials},
		{name: "B: percent-decoded client id", req: rowB("dev/x", "pwx", "dev%2Fx@app1"), app: "app1", device: "dev/x"},
		{name: "B: client id without @", req: rowB("d1", "pw1", "d1"), wantErr: auth.ErrBadCredentials},
		{name: "B: empty client id", req: rowB("other", "opw", ""), wantErr: auth.ErrBadCredentials},
		{name: "B: unknown application", req: rowB("other", "opw", "d1@app9"), wantErr: auth.ErrBadCredentials},
		{name: "B: disabled device", req: rowB("off-dev", "pw2", "off-dev@app1"), wantErr: auth.ErrDisabled},

		// Nothing fits.
		{name: "username without password", req: auth.Request{Username: "d1@app1", HasUsername: true}, wantErr: auth.ErrBadCredentials},
		{name: "password without username", req: auth.Request{Password: []byte("pw1"), HasPassword: true, ClientID: "d1@app1"}, wantErr: auth.ErrBadCredentials},
		{name: "nothing", req: auth.Request{ClientID: "d1@app1"}, wantErr: auth.ErrBadCredentials},
		{name: "zero request", wantErr: auth.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := a.Authenticate(t.Context(), tt.req)
			if tt.wantErr != nil {
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
}

// counter counts slow hash computations of a.
func counter(a *auth.Authenticator) *atomic.Int32 {
	var n atomic.Int32
	auth.OnSlowHash(a, func() { n.Add(1) })
	return &n
}

// oneDevice is a registry with app1/d1 holding the given credentials.
func oneDevice(t testing.TB, credentials string) *registry.Registry {
	return parse(t, "kind: Application\nmetadata: {name: app1}\n---\nkind: Device\nmetadata: {name: d1, application: app1}\nspec:\n  authentication:\n    credentials:\n"+credentials)
}

func connect(password string) auth.Request {
	return auth.Request{Username: "d1@app1", HasUsername: true, Password: []byte(password), HasPassword: true}
}

func TestCache(t *testing.T) {
	type step struct {
		password  string
		wantErr   error
		wantSlow  int32 // slow computations so far
		swap      string
		advance   time.Duration
		wantCache int
	}
	bcryptCred := func(t testing.TB, pw string) string {
		return fmt.Sprintf("      - pass: {bcrypt: %q}\n", bcryptHash(t, pw))
	}
	tests := []struct {
		name  string
		opts  auth.Options
		creds func(t testing.TB) string
		steps func(t testing.TB) []step
	}{
		{
			name:  "second success is remembered",
			creds: func(t testing.TB) string { return bcryptCred(t, "secret") },
			steps: func(t testing.TB) []step {
				return []step{{password: "secret", wantSlow: 1, wantCache: 1}, {password: "secret", wantSlow: 1, wantCache: 1}}
			},
		},
		{
			name:  "sha512 is remembered too",
			creds: func(t testing.TB) string { return fmt.Sprintf("      - pass: {sha512: %q}\n", sha512Hash(t, "secret")) },
			steps: func(t testing.TB) []step {
				return []step{{password: "secret", wantSlow: 1, wantCache: 1}, {password: "secret", wantSlow: 1, wantCache: 1}}
			},
		},
		{
			name:  "failures are not remembered",
			creds: func(t testing.TB) string { return bcryptCred(t, "secret") },
			steps: func(t testing.TB) []step {
				return []step{
					{password: "wrong", wantErr: auth.ErrBadCredentials, wantSlow: 1},
					{password: "wrong", wantErr: auth.ErrBadCredentials, wantSlow: 2},
				}
			},
		},
		{
			name:  "a changed hash misses, the old password stops working",
			creds: func(t testing.TB) string { return bcryptCred(t, "secret") },
			steps: func(t testing.TB) []step {
				return []step{
					{password: "secret", wantSlow: 1, wantCache: 1},
					{swap: bcryptCred(t, "secret"), password: "secret", wantSlow: 2, wantCache: 2},
					{swap: bcryptCred(t, "new"), password: "secret", wantErr: auth.ErrBadCredentials, wantSlow: 3, wantCache: 2},
					{password: "new", wantSlow: 4, wantCache: 3},
				}
			},
		},
		{
			name:  "entries expire",
			opts:  auth.Options{CacheTTL: time.Minute},
			creds: func(t testing.TB) string { return bcryptCred(t, "secret") },
			steps: func(t testing.TB) []step {
				return []step{
					{password: "secret", wantSlow: 1, wantCache: 1},
					{advance: 59 * time.Second, password: "secret", wantSlow: 1, wantCache: 1},
					{advance: time.Second, password: "secret", wantSlow: 2, wantCache: 1},
				}
			},
		},
		{
			name:  "least recently used is evicted",
			opts:  auth.Options{CacheSize: 1},
			creds: func(t testing.TB) string { return bcryptCred(t, "one") + bcryptCred(t, "two") },
			steps: func(t testing.TB) []step {
				return []step{
					{password: "one", wantSlow: 1, wantCache: 1},
					{password: "two", wantSlow: 3, wantCache: 1}, // "one"'s hash fails first
					{password: "two", wantSlow: 3, wantCache: 1},
					{password: "one", wantSlow: 4, wantCache: 1},
				}
			},
		},
		{
			name:  "disabled cache",
			opts:  auth.Options{CacheSize: -1},
			creds: func(t testing.TB) string { return bcryptCred(t, "secret") },
			steps: func(t testing.TB) []step {
				return []step{{password: "secret", wantSlow: 1}, {password: "secret", wantSlow: 2}}
			},
		},
		{
			name:  "plain passwords skip the cache and the slow path",
			creds: func(t testing.TB) string { return "      - pass: secret\n" },
			steps: func(t testing.TB) []step {
				return []step{{password: "secret"}, {password: "secret"}, {password: "x", wantErr: auth.ErrBadCredentials}}
			},
		},
		{
			name:  "a remembered hash is tried before a slow one",
			creds: func(t testing.TB) string { return bcryptCred(t, "one") + bcryptCred(t, "two") },
			steps: func(t testing.TB) []step {
				return []step{{password: "two", wantSlow: 2, wantCache: 1}, {password: "two", wantSlow: 2, wantCache: 1}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src swappable
			src.p.Store(oneDevice(t, tt.creds(t)))
			a := auth.New(&src, tt.opts)
			slow := counter(a)
			now := time.Unix(1_700_000_000, 0)
			if tt.opts.CacheSize >= 0 {
				auth.SetClock(a, func() time.Time { return now })
			}
			for i, s := range tt.steps(t) {
				if s.swap != "" {
					src.p.Store(oneDevice(t, s.swap))
				}
				now = now.Add(s.advance)
				_, err := a.Authenticate(t.Context(), connect(s.password))
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: Authenticate() error = %v, want %v", i, err, s.wantErr)
				}
				if n := slow.Load(); n != s.wantSlow {
					t.Errorf("step %d: %d slow hash computations, want %d", i, n, s.wantSlow)
				}
				if n := auth.CacheLen(a); n != s.wantCache {
					t.Errorf("step %d: %d remembered verifications, want %d", i, n, s.wantCache)
				}
			}
		})
	}
}

// TestHashSlotsHonourContext fills the only hash slot and checks that a
// second client gives up when its context ends.
func TestHashSlotsHonourContext(t *testing.T) {
	a := auth.New(registry.NewStore(oneDevice(t, fmt.Sprintf("      - pass: {bcrypt: %q}\n", bcryptHash(t, "secret")))),
		auth.Options{MaxConcurrentHashes: 1, CacheSize: -1})
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	auth.OnSlowHash(a, func() {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	})
	first := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(t.Context(), connect("secret"))
		first <- err
	}()
	<-entered

	ctx, cancel := context.WithCancel(t.Context())
	second := make(chan error, 1)
	go func() {
		_, err := a.Authenticate(ctx, connect("secret"))
		second <- err
	}()
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) || errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("waiting Authenticate() error = %v, want context.Canceled only", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Errorf("first Authenticate() error = %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d slow computations, want 1", n)
	}
}

// TestRegistryReloadApplies checks that every call reads the current snapshot.
func TestRegistryReloadApplies(t *testing.T) {
	var src swappable
	src.p.Store(oneDevice(t, "      - pass: old\n"))
	a := auth.New(&src, auth.Options{})
	if _, err := a.Authenticate(t.Context(), connect("old")); err != nil {
		t.Fatal(err)
	}
	src.p.Store(oneDevice(t, "      - pass: new\n"))
	if _, err := a.Authenticate(t.Context(), connect("old")); !errors.Is(err, auth.ErrBadCredentials) {
		t.Errorf("old password after reload: error = %v, want ErrBadCredentials", err)
	}
	if _, err := a.Authenticate(t.Context(), connect("new")); err != nil {
		t.Errorf("new password after reload: %v", err)
	}
}
