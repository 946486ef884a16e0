package auth_test

import (
	"fmt"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/bridge/registry"
)

// benchBcrypt returns an Authenticator over a device with a bcrypt password
// of the default cost, as a production registry would hold.
func benchBcrypt(b *testing.B, opts auth.Options) *auth.Authenticator {
	h, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	r := oneDevice(b, fmt.Sprintf("      - pass: {bcrypt: %q}\n", h))
	return auth.New(registry.NewStore(r), opts)
}

func benchAuthenticate(b *testing.B, a *auth.Authenticator, password string) {
	req := connect(password)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := a.Authenticate(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateBcryptCached(b *testing.B) {
	a := benchBcrypt(b, auth.Options{})
	if _, err := a.Authenticate(b.Context(), connect("secret")); err != nil {
		b.Fatal(err)
	}
	benchAuthenticate(b, a, "secret")
}

func BenchmarkAuthenticateBcryptUncached(b *testing.B) {
	benchAuthenticate(b, benchBcrypt(b, auth.Options{CacheSize: -1}), "secret")
}

func BenchmarkAuthenticatePlain(b *testing.B) {
	a := auth.New(registry.NewStore(oneDevice(b, "      - pass: secret\n")), auth.Options{})
	benchAuthenticate(b, a, "secret")
}
