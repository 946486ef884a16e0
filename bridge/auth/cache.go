package auth

import (
	"container/list"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// macSize is the size of a cache key.
const macSize = sha256.Size

// cache remembers successful slow-hash verifications, least recently used
// first out. It stores only an HMAC of the stored hash and the password
// under a random per-Authenticator key, never the password; a changed credential
// has a different stored hash and so misses.
type cache struct {
	secret [32]byte
	max    int
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex // guards entries and order
	entries map[[macSize]byte]*list.Element
	order   *list.List // of *entry, most recently used first
}

// entry is one remembered verification.
type entry struct {
	key     [macSize]byte
	expires time.Time
}

// newCache returns an empty cache of at most max entries living ttl each.
func newCache(max int, ttl time.Duration) *cache {
	c := &cache{
		max:     max,
		ttl:     ttl,
		now:     time.Now,
		entries: make(map[[macSize]byte]*list.Element),
		order:   list.New(),
	}
	_, _ = rand.Read(c.secret[:]) // never fails since Go 1.24; it crashes the program instead
	return c
}

// key returns HMAC-SHA256(secret, hash || 0x00 || password). The registry
// allows no NUL in stored hashes, so the encoding is unambiguous.
func (c *cache) key(hash string, password []byte) [macSize]byte {
	m := hmac.New(sha256.New, c.secret[:])
	m.Write([]byte(hash))
	m.Write([]byte{0})
	m.Write(password)
	var k [macSize]byte
	m.Sum(k[:0])
	return k
}

// has reports whether k was verified within the TTL.
func (c *cache) has(k [macSize]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return false
	}
	if !c.now().Before(el.Value.(*entry).expires) {
		c.order.Remove(el)
		delete(c.entries, k)
		return false
	}
	c.order.MoveToFront(el)
	return true
}

// add remembers k for the TTL, evicting the least recently used entry when
// the cache is full.
func (c *cache) add(k [macSize]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	expires := c.now().Add(c.ttl)
	if el, ok := c.entries[k]; ok {
		el.Value.(*entry).expires = expires
		c.order.MoveToFront(el)
		return
	}
	c.entries[k] = c.order.PushFront(&entry{key: k, expires: expires})
	if c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.entries, oldest.Value.(*entry).key)
	}
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
