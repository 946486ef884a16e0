package source

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// Sender is the one thing the forwarder needs from a CloudEvents client.
type Sender interface {
	// Send delivers e and returns the sink's answer: an ACK result (or nil)
	// when the sink accepted it.
	Send(ctx context.Context, e cloudevents.Event) protocol.Result
}

// deadlineSender is a Sender that also takes a deadline, which spares the forwarder a context
// with a timer per attempt; NewClient's Sender is one.
type deadlineSender interface {
	SendBefore(ctx context.Context, deadline time.Time, e cloudevents.Event) protocol.Result
}

// Defaults of Options.
const (
	DefaultInstance     = "drogue"              // SPEC §3 INSTANCE
	DefaultTimeout      = 5 * time.Second       // per attempt
	DefaultRetries      = 2                     // retries after the first attempt
	DefaultBackoff      = 50 * time.Millisecond // before the first retry, doubling
	DefaultAsyncWorkers = 128                   // sender goroutines, for QoS 1 (Submit) and QoS 0
	DefaultAsyncQueue   = 4096                  // QoS 0 events waiting for a worker
	DefaultMaxInFlight  = 8192                  // QoS 1 events being sent at once, all connections together
)

// Options configures a Forwarder; the zero value means the defaults.
type Options struct {
	// Instance is the value of the instance extension; "" means
	// DefaultInstance.
	Instance string
	// Timeout bounds each attempt to send an event; 0 means DefaultTimeout.
	Timeout time.Duration
	// Retries is how often a transient failure (transport error, timeout,
	// 404, 408, 409, 429, 5xx) is retried; 0 means DefaultRetries and a
	// negative value means no retries.
	Retries int
	// Backoff is the wait before the first retry, doubled for each further
	// one; 0 means DefaultBackoff.
	Backoff time.Duration
	// AsyncWorkers is the number of goroutines sending the events of Submit and
	// ForwardAsync; 0 means DefaultAsyncWorkers.
	AsyncWorkers int
	// AsyncQueue is the number of QoS 0 events that may wait for a worker;
	// 0 means DefaultAsyncQueue.
	AsyncQueue int
	// MaxInFlight bounds the events Forward sends at once across all callers, so that a
	// slow or failing sink costs bounded memory: beyond it Forward refuses at once with
	// ErrQueueFull instead of queueing; 0 means DefaultMaxInFlight.
	MaxInFlight int
	// Metrics, when set, receives the forwarder's metrics: events by outcome, sink request
	// latency by outcome, requests in flight.
	Metrics prometheus.Registerer
	// Logger receives failures and drops; nil discards them.
	Logger *slog.Logger
	// Now is the clock for event times; nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Instance == "" {
		o.Instance = DefaultInstance
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.AsyncWorkers <= 0 {
		o.AsyncWorkers = DefaultAsyncWorkers
	}
	if o.AsyncQueue <= 0 {
		o.AsyncQueue = DefaultAsyncQueue
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Stats is a snapshot of a Forwarder's counters.
type Stats struct {
	// Sent counts events the sink accepted.
	Sent uint64
	// Failed counts events the sink did not accept after all attempts.
	Failed uint64
	// Retried counts attempts after the first.
	Retried uint64
	// Dropped counts QoS 0 events never sent: queue full, not ready, invalid
	// or closed.
	Dropped uint64
	// InFlight is the number of events being sent now.
	InFlight int64
	// Queued is the number of QoS 0 events waiting for a worker.
	Queued int
}

// Forwarder sends the events of device publishes to the sink, synchronously
// for QoS 1 and through a bounded worker pool for QoS 0; it is safe for
// concurrent use.
type Forwarder struct {
	sender  Sender
	builder EventBuilder
	opts    Options
	log     *slog.Logger

	// base is the context of the QoS 0 workers, cancelled when Close gives
	// up waiting for them.
	base   context.Context
	cancel context.CancelFunc

	mu     sync.RWMutex // guards closed and sends on queue
	closed bool
	queue  chan queued
	acked  chan submitted // Submit's events, before QoS 0's
	wg     sync.WaitGroup // the workers

	sent, failed, retried, dropped atomic.Uint64
	inFlight                       atomic.Int64
	forwarding                     atomic.Int64 // Forward calls in progress, bounded by MaxInFlight
	latency                        *prometheus.HistogramVec
}

// NewForwarder returns a Forwarder sending through s, and starts its QoS 0
// worker pool, which Close stops. A nil s means no sink is configured (SPEC
// §3): the forwarder is not ready, Forward returns ErrNotReady and
// ForwardAsync drops everything.
func NewForwarder(s Sender, opts Options) *Forwarder {
	opts = opts.withDefaults()
	// The pool's lifetime is bounded by Close, not by a caller's context.
	base, cancel := context.WithCancel(context.Background())
	f := &Forwarder{
		sender:  s,
		builder: EventBuilder{Instance: opts.Instance},
		opts:    opts,
		log:     opts.Logger,
		base:    base,
		cancel:  cancel,
	}
	f.latency = f.registerMetrics(opts.Metrics)
	if s == nil {
		return f
	}
	f.queue = make(chan queued, opts.AsyncQueue)
	f.acked = make(chan submitted, opts.MaxInFlight)
	for range opts.AsyncWorkers {
		f.wg.Go(f.work)
	}
	return f
}

// Ready returns nil when events can be forwarded, or why not.
func (f *Forwarder) Ready() error {
	if f.sender == nil {
		return ErrNotReady
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return ErrClosed
	}
	return nil
}

// Forward builds the event of p and sends it, retrying transient failures,
// until the sink answered or ctx is done. It returns nil only when the sink
// accepted the event (2xx); otherwise the error wraps ErrNotReady,
// ErrInvalidPublish, ErrPayloadInvalid, ErrSinkUnavailable or ErrSinkRejected,
// and the sink's last answer.
func (f *Forwarder) Forward(ctx context.Context, p Publish) error {
	if f.sender == nil {
		return fmt.Errorf("forward event of %s/%s: %w", p.Application, p.Device, ErrNotReady)
	}
	if n := f.forwarding.Add(1); n > int64(f.opts.MaxInFlight) {
		f.forwarding.Add(-1)
		return fmt.Errorf("forward event of %s/%s: %d events in flight: %w", p.Application, p.Device, n-1, ErrQueueFull)
	}
	defer f.forwarding.Add(-1)
	e, err := f.builder.Event(p, f.opts.Now())
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	err = f.send(ctx, e)
	if err != nil {
		f.logFailure(ctx, slog.LevelDebug, e, err)
	}
	return err
}

// queued is one QoS 0 event waiting for a worker.
type queued struct {
	e    cloudevents.Event
	done func() // called once the send ended, whatever its outcome; may be nil
}

// ForwardAsync builds the event of p and queues it for the QoS 0 workers
// without blocking. It returns false, and counts a drop, when the event was
// not queued: not ready, invalid publish or payload, queue full (ErrQueueFull)
// or closed. Send failures are counted and logged, never returned. When it
// returns true, done (if not nil) is called once the send ended, so that a
// caller can wait for its events before announcing a disconnect.
func (f *Forwarder) ForwardAsync(p Publish, done func()) bool {
	if f.sender == nil {
		f.drop(p, ErrNotReady)
		return false
	}
	e, err := f.builder.Event(p, f.opts.Now())
	if err != nil {
		f.drop(p, err)
		return false
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		f.drop(p, ErrClosed)
		return false
	}
	select {
	case f.queue <- queued{e, done}:
		return true
	default:
		f.drop(p, ErrQueueFull)
		return false
	}
}

// Close stops accepting QoS 0 events and waits until the queued ones are sent
// or ctx is done. In the latter case it cancels the sends still running, lets
// the workers count the events still queued as dropped, and returns ctx's
// error without waiting for them. Forward keeps working after Close.
func (f *Forwarder) Close(ctx context.Context) error {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		if f.queue != nil {
			close(f.queue)
		}
	}
	f.mu.Unlock()

	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		f.cancel()
		if c, ok := f.sender.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
		return nil
	case <-ctx.Done():
		f.cancel()
		return fmt.Errorf("close forwarder: %w", ctx.Err())
	}
}

// Stats returns a snapshot of the counters.
func (f *Forwarder) Stats() Stats {
	return Stats{
		Sent:     f.sent.Load(),
		Failed:   f.failed.Load(),
		Retried:  f.retried.Load(),
		Dropped:  f.dropped.Load(),
		InFlight: f.inFlight.Load(),
		Queued:   len(f.queue),
	}
}

// submitted is one event of Submit waiting for a worker.
type submitted struct {
	e    cloudevents.Event
	done func(error)
}

// Submit builds the event of p and has a worker send it like Forward does, then calls done
// with the outcome (nil only when the sink accepted it). A bounded pool of senders, rather than
// a goroutine per event, keeps the connections to the sink few and busy. It returns an error,
// and does not call done, when the event is refused at once: not ready, invalid publish or
// payload, ErrQueueFull beyond MaxInFlight, or closed.
func (f *Forwarder) Submit(p Publish, done func(error)) error {
	if f.sender == nil {
		return fmt.Errorf("submit event of %s/%s: %w", p.Application, p.Device, ErrNotReady)
	}
	e, err := f.builder.Event(p, f.opts.Now())
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if n := f.forwarding.Add(1); n > int64(f.opts.MaxInFlight) {
		f.forwarding.Add(-1)
		return fmt.Errorf("submit event of %s/%s: %d events in flight: %w", p.Application, p.Device, n-1, ErrQueueFull)
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		f.forwarding.Add(-1)
		return fmt.Errorf("submit event of %s/%s: %w", p.Application, p.Device, ErrClosed)
	}
	f.acked <- submitted{e, done} // never blocks: capacity MaxInFlight
	return nil
}

// work sends the events of Submit, and those of ForwardAsync when none of Submit waits,
// until the QoS 0 queue is closed.
func (f *Forwarder) work() {
	for {
		select {
		case s := <-f.acked:
			f.sendSubmitted(s)
			continue
		default:
		}
		select {
		case s := <-f.acked:
			f.sendSubmitted(s)
		case q, ok := <-f.queue:
			if !ok {
				for {
					select {
					case s := <-f.acked:
						f.sendSubmitted(s)
					default:
						return
					}
				}
			}
			if f.base.Err() != nil {
				f.dropped.Add(1)
			} else if err := f.send(f.base, q.e); err != nil {
				f.logFailure(f.base, slog.LevelWarn, q.e, err)
			}
			if q.done != nil {
				q.done()
			}
		}
	}
}

func (f *Forwarder) sendSubmitted(s submitted) {
	err := f.send(f.base, s.e)
	f.forwarding.Add(-1)
	if err != nil {
		f.logFailure(f.base, slog.LevelDebug, s.e, err)
	}
	s.done(err)
}

// send delivers e with up to Retries retries of transient failures, each
// attempt bounded by Timeout, and counts the outcome.
func (f *Forwarder) send(ctx context.Context, e cloudevents.Event) error {
	f.inFlight.Add(1)
	defer f.inFlight.Add(-1)

	backoff := f.opts.Backoff
	for attempt := 0; ; attempt++ {
		res := f.attempt(ctx, e)
		class := classify(res)
		if class == nil {
			f.sent.Add(1)
			return nil
		}
		if class == ErrSinkRejected || attempt >= f.opts.Retries {
			f.failed.Add(1)
			return fmt.Errorf("send event %s: attempt %d: %w: %w", e.ID(), attempt+1, class, res)
		}
		if err := sleep(ctx, backoff); err != nil {
			f.failed.Add(1)
			return fmt.Errorf("send event %s: attempt %d: %w: %w (waiting to retry: %w)", e.ID(), attempt+1, ErrSinkUnavailable, res, err)
		}
		backoff *= 2
		f.retried.Add(1)
	}
}

func (f *Forwarder) attempt(ctx context.Context, e cloudevents.Event) protocol.Result {
	start := time.Now()
	var res protocol.Result
	if ds, ok := f.sender.(deadlineSender); ok {
		res = ds.SendBefore(ctx, start.Add(f.opts.Timeout), e)
	} else {
		actx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
		res = f.sender.Send(actx, e)
		cancel()
	}
	if f.latency != nil {
		outcome := "accepted"
		switch classify(res) {
		case nil:
		case ErrSinkRejected:
			outcome = "rejected"
		default:
			outcome = "unavailable"
		}
		f.latency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	}
	return res
}

// registerMetrics registers the forwarder's collectors; the counters read the Stats atomics.
func (f *Forwarder) registerMetrics(reg prometheus.Registerer) *prometheus.HistogramVec {
	if reg == nil {
		return nil
	}
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mqtt_endpoint_sink_request_duration_seconds",
		Help:    "Duration of each POST of an event to the sink, by outcome (accepted, rejected, unavailable).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"outcome"})
	events := func(outcome string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "mqtt_endpoint_events_total",
			Help:        "Events by outcome: sent (the sink accepted them), failed (not accepted after every attempt), retried (attempts after the first), dropped (QoS 0, never sent).",
			ConstLabels: prometheus.Labels{"outcome": outcome},
		}, func() float64 { return float64(v.Load()) })
	}
	reg.MustRegister(latency,
		events("sent", &f.sent), events("failed", &f.failed),
		events("retried", &f.retried), events("dropped", &f.dropped),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mqtt_endpoint_sink_requests_in_flight",
			Help: "Events being sent to the sink now.",
		}, func() float64 { return float64(f.inFlight.Load()) }),
	)
	return latency
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *Forwarder) drop(p Publish, err error) {
	f.dropped.Add(1)
	if f.log.Enabled(f.base, slog.LevelDebug) {
		f.log.LogAttrs(f.base, slog.LevelDebug, "event dropped",
			slog.String("app", p.Application),
			slog.String("device", p.Device),
			slog.Any("err", err))
	}
}

func (f *Forwarder) logFailure(ctx context.Context, level slog.Level, e cloudevents.Event, err error) {
	if !f.log.Enabled(ctx, level) {
		return
	}
	app, _ := e.Extensions()[ExtApplication].(string)
	device, _ := e.Extensions()[ExtDevice].(string)
	f.log.LogAttrs(ctx, level, "event not delivered",
		slog.String("app", app),
		slog.String("device", device),
		slog.String("event_id", e.ID()),
		slog.Any("err", err))
}
