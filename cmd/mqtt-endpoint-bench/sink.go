package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The event types the sink tells apart.
const (
	typeEvent      = "io.drogue.event.v1"
	typeConnection = "io.drogue.connection.v1"
)

// Sink modes: normal answers 202; the outage modes answer 503 at once, or hang until the outage
// ends (or the sender gives up) and then answer 503.
const (
	sinkNormal int32 = iota
	sinkUnavailable
	sinkHang
)

// sink is the tool's own CloudEvents receiver: the K_SINK of the endpoint and the target of the
// baseline. It reads binary-mode events cheaply (the ce-type and ce-device headers and the body,
// whose first bytes carry the publish time), answers 202 and counts.
type sink struct {
	URL string

	srv *http.Server
	ln  net.Listener

	events      atomic.Uint64 // io.drogue.event.v1 accepted
	connections atomic.Uint64 // io.drogue.connection.v1 accepted
	other       atomic.Uint64 // any other request accepted
	refused     atomic.Uint64 // answered 503 in an outage
	hanging     atomic.Int64  // requests held by a hanging outage now
	bytes       atomic.Uint64 // event body bytes accepted

	latency atomic.Pointer[hist] // publish → sink, from the payload's timestamp; nil: not recorded

	tracked    atomic.Pointer[tracking]
	mode       atomic.Int32
	mu         sync.Mutex
	hangEnded  chan struct{} // closed when a hanging outage ends
	bufs       sync.Pool
	firstEvent atomic.Int64 // unix ns of the first event since reset
	lastEvent  atomic.Int64 // unix ns of the last event
}

// tracking counts the events of each device of a phase.
type tracking struct {
	index    map[string]int  // device name → index
	received []atomic.Int64  // events by device
	notify   []chan struct{} // signalled after each event of the device
}

// startSink listens on addr ("127.0.0.1:0" picks a port) and serves until ctx ends.
func startSink(ctx context.Context, addr string) (*sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln, URL: "http://" + ln.Addr().String() + "/", hangEnded: make(chan struct{})}
	s.bufs.New = func() any { b := make([]byte, 4096); return &b }
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	context.AfterFunc(ctx, func() { _ = s.srv.Close() })
	return s, nil
}

// track sets the devices whose events are counted one by one, and resets every counter.
func (s *sink) track(names []string, lat *hist) {
	t := &tracking{index: make(map[string]int, len(names)), received: make([]atomic.Int64, len(names)), notify: make([]chan struct{}, len(names))}
	for i, n := range names {
		t.index[n] = i
		t.notify[i] = make(chan struct{}, 1)
	}
	s.tracked.Store(t)
	s.latency.Store(lat)
	s.events.Store(0)
	s.connections.Store(0)
	s.other.Store(0)
	s.refused.Store(0)
	s.bytes.Store(0)
	s.firstEvent.Store(0)
	s.lastEvent.Store(0)
}

// receivedBy returns the events received for device i so far.
func (s *sink) receivedBy(i int) int64 {
	t := s.tracked.Load()
	if t == nil || i >= len(t.received) {
		return 0
	}
	return t.received[i].Load()
}

// notifier returns the channel signalled after events of device i.
func (s *sink) notifier(i int) <-chan struct{} {
	return s.tracked.Load().notify[i]
}

// setMode switches between normal operation and an outage.
func (s *sink) setMode(m int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.mode.Swap(m)
	if old == sinkHang && m != sinkHang {
		close(s.hangEnded)
		s.hangEnded = make(chan struct{})
	}
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch s.mode.Load() {
	case sinkUnavailable:
		_, _ = io.Copy(io.Discard, r.Body)
		s.refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case sinkHang:
		s.mu.Lock()
		ended := s.hangEnded
		s.mu.Unlock()
		s.hanging.Add(1)
		select {
		case <-ended:
		case <-r.Context().Done():
		}
		s.hanging.Add(-1)
		s.refused.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	n, err := io.ReadFull(r.Body, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if n == len(buf) { // longer than the buffer: count the rest, don't keep it
		m, _ := io.Copy(io.Discard, r.Body)
		n += int(m)
	}
	now := time.Now().UnixNano()
	switch r.Header.Get("Ce-Type") {
	case typeEvent:
		s.events.Add(1)
		s.bytes.Add(uint64(n))
		s.firstEvent.CompareAndSwap(0, now)
		s.lastEvent.Store(now)
		if t := s.tracked.Load(); t != nil {
			if i, ok := t.index[r.Header.Get("Ce-Device")]; ok {
				t.received[i].Add(1)
				select {
				case t.notify[i] <- struct{}{}:
				default:
				}
			}
		}
		if h := s.latency.Load(); h != nil {
			if ts, ok := payloadTime(buf[:min(n, len(buf))]); ok {
				h.Record(time.Duration(now - ts))
			}
		}
	case typeConnection:
		s.connections.Add(1)
	default:
		s.other.Add(1)
	}
	w.WriteHeader(http.StatusAccepted)
}
