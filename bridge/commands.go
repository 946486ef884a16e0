package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"mqtt-endpoint/bridge/registry"
	"mqtt-endpoint/sink"
)

var _ sink.Deliverer = (*Server)(nil)

// filterKind classifies the only subscriptions a device may hold (SPEC §7).
type filterKind int

const (
	filterSelf  filterKind = iota + 1 // command/inbox//#: the device's own commands
	filterAll                         // command/inbox/# or command/inbox/+/#: own and proxied
	filterNamed                       // command/inbox/<device>/#: commands for that device
)

// subscription is one granted command filter of a connection.
type subscription struct {
	kind   filterKind
	device string // filterNamed: the device segment as subscribed (name or alias)
	qos    byte
}

// parseFilter accepts a command filter, or reports that it is not one.
func parseFilter(f string) (subscription, bool) {
	rest, ok := strings.CutPrefix(f, "command/inbox/")
	if !ok {
		return subscription{}, false
	}
	switch rest {
	case "#", "+/#":
		return subscription{kind: filterAll}, true
	case "/#":
		return subscription{kind: filterSelf}, true
	}
	dev, ok := strings.CutSuffix(rest, "/#")
	if !ok || dev == "" || strings.ContainsAny(dev, "/+#") {
		return subscription{}, false
	}
	return subscription{kind: filterNamed, device: dev}, true
}

// commandState is a connection's command side: its subscriptions and the QoS 1 deliveries that
// wait for the device's PUBACK. Packet ids are the endpoint's own, not mochi's, whose single
// inflight map mixes both directions (mochi-tls.md A.7).
type commandState struct {
	mu      sync.Mutex // guards subs, waiting and nextID
	subs    map[string]subscription
	waiting map[uint16]chan byte // packet id → PUBACK reason code
	nextID  uint16
	slots   chan struct{} // QoS 1 deliveries in flight, bounded by the client's Receive Maximum
}

func newCommandState(receiveMaximum uint16) *commandState {
	n := int(receiveMaximum)
	if n == 0 || n > 64 {
		n = 64
	}
	return &commandState{subs: map[string]subscription{}, waiting: map[uint16]chan byte{}, slots: make(chan struct{}, n)}
}

func (cs *commandState) subscribe(filter string, sub subscription) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.subs[filter] = sub
}

func (cs *commandState) unsubscribe(filter string) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.subs, filter)
}

// route picks the topic and QoS of a command for target on this connection, once even when
// several filters match (SPEC §9); the QoS is the highest of the filters that match that topic.
// isSelf tells whether the connection is the target itself.
func (cs *commandState) route(reg *registry.Registry, app string, target *registry.Device, isSelf bool, command string) (topic string, qos byte, ok bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	// The device's own commands go to command/inbox//<command> when a filter covers that topic.
	if isSelf {
		best := -1
		for _, s := range cs.subs {
			if s.kind == filterSelf || s.kind == filterAll {
				best = max(best, int(s.qos))
			}
		}
		if best >= 0 {
			return "command/inbox//" + command, byte(best), true
		}
	}
	// Otherwise command/inbox/<segment>/<command>, where the segment names the target: its name
	// when a filter allows it, else the alias it was subscribed by (the smallest, to be stable).
	segment, best := "", -1
	for _, s := range cs.subs {
		switch {
		case s.kind == filterAll && !isSelf:
			segment = target.Name
		case s.kind == filterNamed && segment != target.Name &&
			(s.device == target.Name || segment == "" || s.device < segment):
			if d, found := reg.Device(app, s.device); found && d.Name == target.Name {
				segment = s.device
			}
		}
	}
	if segment == "" {
		return "", 0, false
	}
	for _, s := range cs.subs {
		if (s.kind == filterAll && !isSelf) || (s.kind == filterNamed && s.device == segment) {
			best = max(best, int(s.qos))
		}
	}
	return "command/inbox/" + segment + "/" + command, byte(best), true
}

// acked hands a device's PUBACK to the delivery waiting for it; false when none waits.
func (cs *commandState) acked(id uint16, reason byte) bool {
	cs.mu.Lock()
	ch, ok := cs.waiting[id]
	delete(cs.waiting, id)
	cs.mu.Unlock()
	if ok {
		ch <- reason
	}
	return ok
}

// register allocates a free packet id for a QoS 1 delivery.
func (cs *commandState) register() (uint16, chan byte) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for {
		cs.nextID++
		if cs.nextID == 0 {
			cs.nextID = 1
		}
		if _, busy := cs.waiting[cs.nextID]; !busy {
			ch := make(chan byte, 1)
			cs.waiting[cs.nextID] = ch
			return cs.nextID, ch
		}
	}
}

func (cs *commandState) forget(id uint16) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.waiting, id)
}

// delivery is one connection a command goes to.
type delivery struct {
	c     *conn
	topic string
	qos   byte
}

// Deliver sends a command to the target device's connection and to every connected gateway of
// it that subscribed for it, once per connection, and waits for QoS 1 acknowledgements (SPEC §7).
func (s *Server) Deliver(ctx context.Context, cmd sink.Command) error {
	start := time.Now()
	err := s.deliver(ctx, cmd)
	s.metrics.command(err, start)
	return err
}

func (s *Server) deliver(ctx context.Context, cmd sink.Command) error {
	reg := s.opts.Registry.Current()
	app, ok := reg.Application(cmd.Application)
	if !ok || app.Disabled {
		return fmt.Errorf("application %q: %w", cmd.Application, sink.ErrUnknownTarget)
	}
	dev, ok := reg.Device(app.Name, cmd.Device)
	if !ok || dev.Disabled {
		return fmt.Errorf("device %q of %q: %w", cmd.Device, app.Name, sink.ErrUnknownTarget)
	}
	var targets []delivery
	var seen []*conn // a handful at most: a slice beats a map on this per-command path
	consider := func(c *conn, isSelf bool) {
		if c == nil || slices.Contains(seen, c) {
			return
		}
		seen = append(seen, c)
		if topic, qos, ok := c.cmds.route(reg, app.Name, dev, isSelf, cmd.Name); ok {
			targets = append(targets, delivery{c: c, topic: topic, qos: qos})
		}
	}
	consider(s.table.Lookup(app.Name, dev.Name), true)
	for _, m := range dev.Gateways {
		if g, ok := reg.Device(app.Name, m); ok && g.Name != dev.Name {
			consider(s.table.Lookup(app.Name, g.Name), false)
		}
	}
	switch len(targets) {
	case 0:
		return fmt.Errorf("device %s/%s: %w", app.Name, dev.Name, sink.ErrUnreachable)
	case 1: // the common case: no goroutine needed
		return commandOutcome([]error{s.deliverTo(ctx, targets[0], cmd)})
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { errs[i] = s.deliverTo(ctx, t, cmd) })
	}
	wg.Wait()
	return commandOutcome(errs)
}

// commandOutcome is success when any connection took the command; otherwise the most telling failure.
func commandOutcome(errs []error) error {
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	for _, want := range []error{sink.ErrNotAcknowledged, sink.ErrTooLarge, sink.ErrRefused, sink.ErrUnreachable} {
		for _, err := range errs {
			if errors.Is(err, want) {
				return err
			}
		}
	}
	return fmt.Errorf("%w: %w", sink.ErrUnreachable, errors.Join(errs...))
}

// deliverTo writes the command to one connection and, for QoS 1, waits for its PUBACK.
func (s *Server) deliverTo(ctx context.Context, t delivery, cmd sink.Command) error {
	c := t.c
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: t.qos},
		TopicName:   t.topic,
		Payload:     cmd.Payload,
	}
	if c.v5 && cmd.ContentType != "" {
		pk.Properties.ContentType = cmd.ContentType
	}
	if !cmd.Expires.IsZero() {
		pk.Expiry = cmd.Expires.Unix() // mochi turns it into the v5 Message Expiry Interval
	}
	if t.qos == 0 {
		return s.write(c, pk)
	}

	select {
	case c.cmds.slots <- struct{}{}:
		defer func() { <-c.cmds.slots }()
	case <-ctx.Done():
		return fmt.Errorf("waiting for the device's receive window: %w", sink.ErrNotAcknowledged)
	case <-c.ctx.Done():
		return fmt.Errorf("connection closed: %w", sink.ErrUnreachable)
	}
	id, acked := c.cmds.register()
	pk.PacketID = id
	if err := s.write(c, pk); err != nil {
		c.cmds.forget(id)
		return err
	}
	select {
	case reason := <-acked:
		switch {
		case reason == packets.ErrQuotaExceeded.Code: // the device is busy: a retry may succeed
			return fmt.Errorf("device answered PUBACK 0x%02x (quota exceeded): %w", reason, sink.ErrUnreachable)
		case reason >= packets.ErrUnspecifiedError.Code:
			return fmt.Errorf("%w: PUBACK reason code 0x%02x", sink.ErrRefused, reason)
		}
		return nil
	case <-ctx.Done():
		c.cmds.forget(id)
		return fmt.Errorf("packet %d on %s: %w", id, t.topic, sink.ErrNotAcknowledged)
	case <-c.ctx.Done():
		c.cmds.forget(id)
		return fmt.Errorf("connection closed before PUBACK: %w", sink.ErrUnreachable)
	}
}

// write sends a command packet on a connection.
func (s *Server) write(c *conn, pk packets.Packet) error {
	pk.Created = time.Now().Unix()
	switch err := c.cl.WritePacket(pk); {
	case err == nil:
		return nil
	case errors.Is(err, packets.ErrPacketTooLarge):
		return fmt.Errorf("topic %s: %w", pk.TopicName, sink.ErrTooLarge)
	case errors.Is(err, mqtt.ErrConnectionClosed):
		return fmt.Errorf("connection closed: %w", sink.ErrUnreachable)
	default:
		return fmt.Errorf("write to %s: %w: %w", c.key.device, sink.ErrUnreachable, err)
	}
}
