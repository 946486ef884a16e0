package registry

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastWatch reacts within milliseconds; polling is off unless a test sets it.
var fastWatch = watchOptions{debounce: 10 * time.Millisecond, poll: time.Hour, notify: true}

// openTest opens path with opts and stops watching when the test ends.
func openTest(t *testing.T, path string, opts watchOptions, log *slog.Logger) *Store {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s, err := open(ctx, path, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// hasDevice reports whether the current registry of s has app1/name.
func hasDevice(s *Store, name string) bool {
	_, ok := s.Current().Device("app1", name)
	return ok
}

// syncBuffer is a bytes.Buffer safe for the watch goroutine to log into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestStoreReload(t *testing.T) {
	tests := []struct {
		name string
		opts watchOptions
	}{
		{name: "file events", opts: fastWatch},
		{name: "polling only (a missed event still reloads)", opts: watchOptions{poll: 10 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "registry.yaml", appYAML+"---\n"+deviceYAML("d1"))
			var logs syncBuffer
			s := openTest(t, path, tt.opts, slog.New(slog.NewTextHandler(&logs, nil)))
			var notified atomic.Int32
			s.Subscribe(func(*Registry) { notified.Add(1) })
			if !hasDevice(s, "d1") {
				t.Fatal("initial registry lacks d1")
			}

			// change
			writeFile(t, dir, "registry.yaml", appYAML+"---\n"+deviceYAML("d2"))
			eventually(t, "d2 to appear", func() bool { return hasDevice(s, "d2") })
			if hasDevice(s, "d1") {
				t.Error("d1 still present after reload")
			}

			// break: the last good registry stays
			writeFile(t, dir, "registry.yaml", appYAML+"---\n"+deviceYAML("d3")+"spec: {alias: 7}\n")
			eventually(t, "the failure in Status", func() bool { return s.Status().LastError != nil })
			st := s.Status()
			if !hasDevice(s, "d2") {
				t.Error("broken registry replaced the last good one")
			}
			if msg := st.LastError.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "document 2 (Device app1/d3): spec.alias: must be a sequence") {
				t.Errorf("LastError = %q, want it to name the file and object", msg)
			}
			if st.Failures != 1 || st.Reloads != 1 {
				t.Errorf("Failures, Reloads = %d, %d; want 1, 1", st.Failures, st.Reloads)
			}
			if st.LastAttempt.Before(st.Loaded) {
				t.Errorf("LastAttempt %v before Loaded %v", st.LastAttempt, st.Loaded)
			}

			// fix
			writeFile(t, dir, "registry.yaml", appYAML+"---\n"+deviceYAML("d3"))
			eventually(t, "d3 to appear", func() bool { return hasDevice(s, "d3") })
			st = s.Status()
			if st.LastError != nil || st.Reloads != 2 || st.Apps != 1 || st.Devices != 1 || st.Path != path {
				t.Errorf("Status() = %+v", st)
			}
			// Subscribers run right after the swap, on the watching goroutine.
			eventually(t, "the second notification", func() bool { return notified.Load() == 2 })
			errLines := strings.Count(logs.String(), "level=ERROR")
			if errLines != 1 || !strings.Contains(logs.String(), "Device app1/d3") {
				t.Errorf("want one error line naming the object, got:\n%s", logs.String())
			}
		})
	}
}

// TestStoreKubernetesSwap replays how the kubelet updates a mounted Secret:
// the keys are symlinks through "..data", which is swapped atomically to a
// new timestamped directory.
func TestStoreKubernetesSwap(t *testing.T) {
	tests := []struct {
		name string
		path func(dir string) string
	}{
		{name: "directory", path: func(dir string) string { return dir }},
		{name: "file inside the mount", path: func(dir string) string { return filepath.Join(dir, "registry.yaml") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "..2026_01_01/registry.yaml", appYAML+"---\n"+deviceYAML("d1"))
			symlink(t, "..2026_01_01", filepath.Join(dir, "..data"))
			symlink(t, "..data/registry.yaml", filepath.Join(dir, "registry.yaml"))
			s := openTest(t, tt.path(dir), fastWatch, nil)
			if !hasDevice(s, "d1") {
				t.Fatal("initial registry lacks d1")
			}

			writeFile(t, dir, "..2026_01_02/registry.yaml", appYAML+"---\n"+deviceYAML("d2"))
			symlink(t, "..2026_01_02", filepath.Join(dir, "..data_tmp"))
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(dir, "..2026_01_01")); err != nil {
				t.Fatal(err)
			}
			eventually(t, "d2 to appear", func() bool { return hasDevice(s, "d2") })
			if st := s.Status(); st.LastError != nil || st.Reloads != 1 {
				t.Errorf("Status() = %+v", st)
			}
		})
	}
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

// TestStoreCheck drives check directly: no watching goroutine runs, so the
// order of events is exact.
func TestStoreCheck(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "registry.yaml", appYAML)
	var logs bytes.Buffer
	s := openTest(t, path, watchOptions{poll: time.Hour}, slog.New(slog.NewTextHandler(&logs, nil)))
	first := s.Current()

	s.check()
	if s.Current() != first || s.Status().Reloads != 0 {
		t.Fatal("unchanged files were rebuilt")
	}

	writeFile(t, dir, "registry.yaml", brokenYAML)
	s.check()
	s.check() // same broken content: not parsed, not logged again
	if st := s.Status(); st.Failures != 1 || st.LastError == nil || s.Current() != first {
		t.Errorf("after a broken change: Status() = %+v", st)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s.check()
	s.check() // the same read error is counted but logged once
	if st := s.Status(); st.Failures != 3 || !strings.Contains(st.LastError.Error(), "no such file") {
		t.Errorf("after removal: Status() = %+v", st)
	}

	writeFile(t, dir, "registry.yaml", appYAML) // back to the first content
	s.check()
	if st := s.Status(); st.LastError != nil || st.Reloads != 1 {
		t.Errorf("after restore: Status() = %+v", st)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 2 {
		t.Errorf("got %d error lines, want 2:\n%s", n, logs.String())
	}
}

func TestOpenFails(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "registry.yaml", brokenYAML)
	_, err := Open(t.Context(), path, nil)
	if err == nil || !strings.Contains(err.Error(), "load registry "+path) {
		t.Fatalf("Open() error = %v, want a load error naming %s", err, path)
	}
}

func TestOpenStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "registry.yaml", appYAML)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("watching did not stop after the context was cancelled")
	}
}

func TestNewStore(t *testing.T) {
	r := mustParse(t, appYAML+"---\n"+deviceYAML("d1"))
	s := NewStore(r)
	if s.Current() != r {
		t.Error("Current() is not the given registry")
	}
	if st := s.Status(); st.Apps != 1 || st.Devices != 1 || st.Loaded.IsZero() || st.LastError != nil {
		t.Errorf("Status() = %+v", st)
	}
}
