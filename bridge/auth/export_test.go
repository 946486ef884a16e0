package auth

import "time"

// OnSlowHash sets a function run before every slow hash computation.
func OnSlowHash(a *Authenticator, fn func()) { a.onSlow = fn }

// SetClock replaces the clock of a's verification cache.
func SetClock(a *Authenticator, now func() time.Time) { a.cache.now = now }

// CacheLen returns the number of remembered verifications, 0 without a cache.
func CacheLen(a *Authenticator) int {
	if a.cache == nil {
		return 0
	}
	return a.cache.len()
}

// SetNow replaces the clock a verifies client certificates with.
func SetNow(a *Authenticator, now func() time.Time) { a.now = now }
