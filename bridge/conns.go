package bridge

import "sync"

// deviceKey names a device across applications.
type deviceKey struct{ app, device string }

// ConnTable maps each device to its one open connection (SPEC §5: one connection per device).
// It is an interface because a later issue spreads connections over several replicas.
type ConnTable interface {
	// Claim makes c the connection of its device and returns the connection it replaced, if any.
	Claim(c *conn) (old *conn)
	// Release removes c if it is still its device's connection.
	Release(c *conn)
	// Lookup returns the open connection of a device, or nil.
	Lookup(app, device string) *conn
}

// memTable is the ConnTable of a single replica.
type memTable struct {
	mu       sync.RWMutex // guards byDevice
	byDevice map[deviceKey]*conn
}

func newMemTable() *memTable { return &memTable{byDevice: make(map[deviceKey]*conn)} }

func (t *memTable) Claim(c *conn) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.byDevice[c.key]
	t.byDevice[c.key] = c
	return old
}

func (t *memTable) Release(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byDevice[c.key] == c { // compare-and-delete: a takeover may already have replaced c
		delete(t.byDevice, c.key)
	}
}

func (t *memTable) Lookup(app, device string) *conn {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.byDevice[deviceKey{app, device}]
}
