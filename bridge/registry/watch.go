package registry

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchOptions tune how a Store notices changes; tests shorten them.
type watchOptions struct {
	debounce time.Duration // quiet time after a file event before reloading
	poll     time.Duration // fallback: check the content hash this often
	notify   bool          // use file events (fsnotify) besides polling
}

// How Open watches.
const (
	defaultDebounce = 100 * time.Millisecond
	defaultPoll     = 5 * time.Second
)

// Open loads the registry at path (see Load) and keeps reloading it when it
// changes until ctx is done. It fails when the first load fails. A nil log
// discards log output.
//
// Changes are seen through file events on the directory (the parent
// directory for a file path), so that Kubernetes' atomic swap of the
// "..data" symlink is noticed, debounced by 100 ms; a content hash checked
// every 5 s catches missed events, and an unchanged hash skips rebuilding.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	return open(ctx, path, log, watchOptions{debounce: defaultDebounce, poll: defaultPoll, notify: true})
}

// open is Open with adjustable watch options.
func open(ctx context.Context, path string, log *slog.Logger, opts watchOptions) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{path: path, log: log, opts: opts, done: make(chan struct{})}
	s.status.Path = path
	srcs, err := readSources(path)
	if err != nil {
		return nil, err
	}
	r, err := parseAt(path, srcs)
	if err != nil {
		return nil, err
	}
	s.lastHash = hashSources(srcs)
	s.swap(r, true)

	var w *fsnotify.Watcher
	if opts.notify {
		if w, err = newWatcher(path); err != nil {
			log.Warn("registry file events unavailable, polling only", "file", path, "err", err)
		}
	}
	go s.watch(ctx, w)
	return s, nil
}

// newWatcher watches path if it is a directory, else its parent directory.
func newWatcher(path string) (*fsnotify.Watcher, error) {
	dir := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		dir = filepath.Dir(path)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	return w, nil
}

// watch reloads on debounced file events and on every poll tick until ctx
// is done; w may be nil (polling only).
func (s *Store) watch(ctx context.Context, w *fsnotify.Watcher) {
	defer close(s.done)
	var (
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	if w != nil {
		defer func() { _ = w.Close() }()
		events, errs = w.Events, w.Errors
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	poll := time.NewTicker(s.opts.poll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			debounce.Reset(s.opts.debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			s.log.Warn("registry file events", "file", s.path, "err", err)
		case <-debounce.C:
			s.check()
		case <-poll.C:
			s.check()
		}
	}
}

// check reloads the registry if the files changed since they were last
// parsed.
func (s *Store) check() {
	srcs, err := readSources(s.path)
	if err != nil {
		s.lastHash = [len(s.lastHash)]byte{} // re-parse once the files are back
		s.failed(err)
		return
	}
	h := hashSources(srcs)
	if h == s.lastHash {
		return
	}
	s.lastHash = h
	r, err := parseAt(s.path, srcs)
	if err != nil {
		s.failed(err)
		return
	}
	s.swap(r, false)
}
