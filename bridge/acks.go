package bridge

import (
	"context"
	"sync"
)

// ackQueue keeps the QoS 1 publishes of one connection that wait for the sink, in arrival order,
// so that acknowledgements leave in PUBLISH order ([MQTT-4.6.0-2]) although the sink answers them
// in any order. Its capacity is the Receive Maximum advertised in CONNACK.
type ackQueue struct {
	slots chan struct{} // one token per publish in flight; capacity = receive maximum

	mu      sync.Mutex // guards pending and closed
	pending []*inflight
	closed  bool
	flush   func(id uint16, err error) bool // writes one ack; false stops the queue (connection gone)
}

// inflight is one publish waiting for its outcome.
type inflight struct {
	id   uint16
	done bool
	err  error
}

func newAckQueue(capacity int, flush func(id uint16, err error) bool) *ackQueue {
	return &ackQueue{slots: make(chan struct{}, capacity), flush: flush}
}

// reserve takes a slot for the publish with packet id, blocking while the window is full
// (backpressure on the connection's reader). It fails when ctx ends first.
func (q *ackQueue) reserve(ctx context.Context, id uint16) (*inflight, error) {
	select {
	case q.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f := &inflight{id: id}
	q.mu.Lock()
	q.pending = append(q.pending, f)
	q.mu.Unlock()
	return f, nil
}

// complete records the outcome of f and writes every ack at the head of the queue that is ready.
func (q *ackQueue) complete(f *inflight, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f.done, f.err = true, err
	for !q.closed && len(q.pending) > 0 && q.pending[0].done {
		head := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		<-q.slots
		if !q.flush(head.id, head.err) {
			q.closed = true
		}
	}
}

// len reports how many publishes wait for an ack.
func (q *ackQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}
