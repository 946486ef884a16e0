package auth

import (
	"context"
	"crypto/subtle"
	"fmt"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"golang.org/x/crypto/bcrypt"

	"mqtt-endpoint/bridge/registry"
)

// match reports whether password matches any of candidates. Cheap checks
// run first (plain passwords, remembered verifications), then the slow
// hashes one by one.
func (a *Authenticator) match(ctx context.Context, candidates []registry.Password, password []byte) (bool, error) {
	var keys [][macSize]byte // remembered-verification keys, by candidate; nil without a cache
	if a.cache != nil {
		keys = make([][macSize]byte, len(candidates))
	}
	for i, p := range candidates {
		hash := storedHash(p)
		switch {
		case hash == "":
			if p.Plain != "" && subtle.ConstantTimeCompare([]byte(p.Plain), password) == 1 {
				return true, nil
			}
		case a.cache != nil:
			keys[i] = a.cache.key(hash, password)
			if a.cache.has(keys[i]) {
				return true, nil
			}
		}
	}
	for i, p := range candidates {
		if storedHash(p) == "" {
			continue
		}
		ok, err := a.slowMatch(ctx, p, password)
		if err != nil {
			return false, err
		}
		if ok {
			if a.cache != nil {
				a.cache.add(keys[i])
			}
			return true, nil
		}
	}
	return false, nil
}

// storedHash returns the hash of p, or "" for a plain password.
func storedHash(p registry.Password) string {
	if p.Bcrypt != "" {
		return p.Bcrypt
	}
	return p.SHA512
}

// slowMatch computes a bcrypt or SHA-512 crypt hash, waiting for a slot of
// the semaphore as long as ctx allows.
func (a *Authenticator) slowMatch(ctx context.Context, p registry.Password, password []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("authenticate: %w", err)
	}
	select {
	case a.hashes <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("authenticate: wait for a hash slot: %w", ctx.Err())
	}
	defer func() { <-a.hashes }()
	if a.onSlow != nil {
		a.onSlow()
	}
	if p.Bcrypt != "" {
		return bcrypt.CompareHashAndPassword([]byte(p.Bcrypt), password) == nil, nil
	}
	// The registry validated the hash; a decode failure is a mismatch.
	d, err := shacrypt.DecodeVariant(shacrypt.VariantSHA512)(p.SHA512)
	if err != nil {
		return false, nil
	}
	return d.MatchBytes(password), nil
}
