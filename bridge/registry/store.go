package registry

import (
	"crypto/sha256"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Status describes the registry a Store serves and its reloads, for logs,
// metrics and readiness detail (SPEC §3, §8).
type Status struct {
	Path          string    // the watched path; empty for a fixed registry
	Loaded        time.Time // when the current registry was loaded
	LastError     error     // why the last load failed; nil once a load succeeds
	LastAttempt   time.Time // when the files were last parsed, or failed to be read
	Apps, Devices int       // counts of the current registry
	Reloads       uint64    // successful loads after the first
	Failures      uint64    // failed loads
}

// Store serves the current Registry and swaps in a new one when the files
// change and parse; a broken change keeps the last good registry.
type Store struct {
	cur  atomic.Pointer[Registry]
	path string
	log  *slog.Logger
	opts watchOptions
	done chan struct{} // closed when watching stops

	mu     sync.Mutex // guards status and subs
	status Status
	subs   []func(*Registry)

	lastHash [sha256.Size]byte // digest of the files last parsed; watch goroutine only
}

// NewStore returns a Store that always serves r (development mode, tests).
func NewStore(r *Registry) *Store {
	s := &Store{log: slog.New(slog.DiscardHandler), done: make(chan struct{})}
	close(s.done)
	s.cur.Store(r)
	s.status.Loaded = time.Now()
	s.status.Apps, s.status.Devices = r.Counts()
	return s
}

// Current returns the current registry; it does not lock and is meant for
// the hot path.
func (s *Store) Current() *Registry {
	return s.cur.Load()
}

// Status returns the state of the current registry and of the last reload.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Subscribe registers fn to be called with the new registry after every
// successful reload, for example to update metrics or drop cached data. fn
// runs on the watching goroutine and should return quickly.
func (s *Store) Subscribe(fn func(*Registry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
}

// swap installs r as the current registry and notifies subscribers.
func (s *Store) swap(r *Registry, first bool) {
	now := time.Now()
	s.cur.Store(r)
	apps, devices := r.Counts()
	s.mu.Lock()
	s.status.Loaded, s.status.LastAttempt, s.status.LastError = now, now, nil
	s.status.Apps, s.status.Devices = apps, devices
	if !first {
		s.status.Reloads++
	}
	subs := s.subs
	s.mu.Unlock()
	msg := "registry reloaded"
	if first {
		msg = "registry loaded"
	}
	s.log.Info(msg, "file", s.path, "apps", apps, "devices", devices)
	for _, fn := range subs {
		fn(r)
	}
}

// failed records a failed load, logging it unless it repeats the last one.
func (s *Store) failed(err error) {
	s.mu.Lock()
	repeated := s.status.LastError != nil && s.status.LastError.Error() == err.Error()
	s.status.LastError, s.status.LastAttempt = err, time.Now()
	s.status.Failures++
	s.mu.Unlock()
	if !repeated {
		s.log.Error("registry reload failed, keeping the last good registry", "file", s.path, "err", err)
	}
}
