package bridge

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"mqtt-endpoint/bridge/registry"
	"mqtt-endpoint/source"
)

// conn is the endpoint's state of one authenticated device connection.
type conn struct {
	nonce   string // random, unguessable; unique per connection
	key     deviceKey
	cl      *mqtt.Client
	app     *registry.Application
	dev     *registry.Device
	dialect registry.Dialect
	v5      bool
	log     *slog.Logger

	ctx         context.Context // ends when the connection ends
	cancel      context.CancelFunc
	acks        *ackQueue
	pending     pending // the connection's events still being sent (QoS 0 and QoS 1)
	pendingDone func()  // pending.done as a value, made once rather than per publish
	cmds        *commandState

	will        *source.Publish // the last will as an event, nil without one
	willOnClose atomic.Bool     // a v5 DISCONNECT with a reason other than 0x00 keeps the will
	finishOne   sync.Once       // emits the disconnect events exactly once
}

func newNonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// namespace prefixes the connection's subscriptions in mochi's topic tree.
func (c *conn) namespace() string { return "$ns/" + c.nonce + "/" }

// publishFor builds the event skeleton of a publish by this connection for dev.
func (c *conn) publishFor(dev *registry.Device) source.Publish {
	return source.Publish{
		Application:    c.app.Name,
		ApplicationUID: c.app.UID,
		Device:         dev.Name,
		DeviceUID:      dev.UID,
		Sender:         c.dev.Name,
		SenderUID:      c.dev.UID,
	}
}

// flushAck writes the acknowledgement of one QoS 1 publish. On MQTT 3.1.1, which has no negative
// acknowledgement, a failure closes the connection instead so that the client sends it again (SPEC §6).
func (c *conn) flushAck(id uint16, err error) bool {
	if err != nil && !c.v5 {
		c.log.Info("closing v3.1.1 connection: publish not accepted", "packet_id", id, "err", err)
		c.cl.Stop(err)
		return false
	}
	code := pubackCode(err)
	ack := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Puback},
		PacketID:    id,
		ReasonCode:  code.Code,
	}
	if err != nil {
		ack.Properties.ReasonString = code.Reason
	}
	return c.cl.WritePacket(ack) == nil
}

// pending counts events in flight and tells when none is left. Unlike a sync.WaitGroup it may
// be waited on while events are still being added (a takeover finishes a connection whose reader
// may still be running).
type pending struct {
	mu   sync.Mutex // guards n and idle
	n    int
	idle chan struct{} // closed when n drops to 0; nil while nobody waits
}

func (p *pending) add() {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
}

func (p *pending) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n--
	if p.n == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
}

// drained returns a channel closed once no event is in flight.
func (p *pending) drained() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	return p.idle
}
