package bridge

import (
	"context"
	"crypto/tls"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/source"
)

// hook is the one mochi hook of the endpoint: every event of a device connection passes here.
// mochi is told to route nothing: publishes become events, never messages to other clients.
type hook struct {
	mqtt.HookBase
	s *Server
}

// ID names the hook for mochi.
func (h *hook) ID() string { return "mqtt-endpoint" }

// Provides lists the mochi events the hook handles; mochi skips a method not listed here.
func (h *hook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnSessionEstablish, mqtt.OnDisconnect,
		mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnWill,
		mqtt.OnSubscribe, mqtt.OnUnsubscribe:
		return true
	}
	return false
}

// OnConnect authenticates the client and refuses it with the CONNACK code of SPEC §5.
// mochi sends no CONNACK when this returns an error, so refusals are sent here.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	s := h.s
	refuse := func(err error) error {
		code := connackCode(cl.Properties.ProtocolVersion, err)
		s.log.Info("connection refused", "remote", cl.Net.Remote, "listener", cl.Net.Listener,
			"username", string(pk.Connect.Username), "client_id", pk.Connect.ClientIdentifier, "code", code.Code, "err", err)
		s.metrics.refused(err)
		_ = s.mochi.SendConnack(cl, code, false, nil)
		return err
	}
	if s.closing.Load() {
		return refuse(errShuttingDown)
	}
	if !pk.Connect.Clean {
		return refuse(errCleanStartRequired)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.ConnectTimeout)
	defer cancel()
	req := auth.Request{
		Username:    string(pk.Connect.Username),
		HasUsername: pk.Connect.UsernameFlag,
		Password:    pk.Connect.Password,
		HasPassword: pk.Connect.PasswordFlag,
		ClientID:    pk.Connect.ClientIdentifier,
	}
	// TLS client certificates (mqtts, wss) and the verified TLS-PSK identity are further
	// credentials; the listeners' connections expose them.
	if tc, ok := cl.Net.Conn.(interface{ ConnectionState() tls.ConnectionState }); ok {
		req.Certificates = tc.ConnectionState().PeerCertificates
	}
	if pc, ok := cl.Net.Conn.(interface{ PSKIdentity() string }); ok {
		req.PSKIdentity = pc.PSKIdentity()
	}
	id, err := s.opts.Authenticator.Authenticate(ctx, req)
	if err != nil {
		return refuse(err)
	}

	c := &conn{
		nonce:   newNonce(),
		key:     deviceKey{id.App.Name, id.Device.Name},
		cl:      cl,
		app:     id.App,
		dev:     id.Device,
		dialect: dialectOf(id.App, id.Device),
		v5:      cl.Properties.ProtocolVersion == 5,
	}
	c.log = s.log.With("app", c.key.app, "device", c.key.device, "conn", c.nonce)
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.acks = newAckQueue(int(s.opts.ReceiveMaximum), c.flushAck)
	c.cmds = newCommandState(cl.Properties.Props.ReceiveMaximum)
	c.pendingDone = c.pending.done
	if pk.Connect.WillFlag {
		w := c.publishFor(id.Device)
		w.Channel = pk.Connect.WillTopic // the will topic verbatim, not parsed (drogue-mqtt.md §9.4)
		w.ContentType = pk.Connect.WillProperties.ContentType
		w.Payload = pk.Connect.WillPayload
		c.will = &w
	}
	// mochi would deliver the will to other clients: it becomes an event instead (mochi-tls.md A.8).
	cl.Properties.Will = mqtt.Will{}
	// mochi keys sessions by client id across all tenants; a per-connection id keeps devices of
	// different applications apart and leaves takeover to the endpoint (OnSessionEstablish).
	cl.ID = c.key.app + "/" + c.key.device + "/" + c.nonce
	if cl.State.Keepalive == 0 {
		// A client that asks for no keep-alive would hold its socket forever.
		cl.State.Keepalive = s.opts.MaxKeepalive
		cl.State.ServerKeepalive = true
	}
	s.conns.Store(cl, c)
	s.byNet.Store(cl.Net.Conn, cl)
	return nil
}

// OnConnectAuthenticate accepts exactly the clients OnConnect authenticated.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	_, ok := h.s.conns.Load(cl)
	return ok
}

// OnSessionEstablish takes the device over from an older connection and emits the connected
// event before CONNACK, so that it precedes the device's first event.
func (h *hook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	c := h.s.connOf(cl)
	if c == nil {
		return
	}
	if old := h.s.table.Claim(c); old != nil {
		h.s.takeover(old)
	}
	h.s.metrics.connects.WithLabelValues("accepted").Inc()
	h.s.metrics.connections.WithLabelValues(cl.Net.Listener, c.key.app).Inc()
	c.log.Info("device connected", "remote", cl.Net.Remote, "listener", cl.Net.Listener, "protocol", cl.Properties.ProtocolVersion)
	h.s.emit(c, source.ConnectionEvent(c.publishFor(c.dev), true))
}

// OnDisconnect releases the connection and emits the last will (unless the client disconnected
// normally) and the disconnected event.
func (h *hook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	h.s.release(cl, err)
}

// OnPacketRead refuses what mochi would otherwise accept or drop silently.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	c := h.s.connOf(cl)
	if c == nil {
		return pk, nil
	}
	switch pk.FixedHeader.Type {
	case packets.Publish:
		if pk.FixedHeader.Qos > 1 { // CONNACK says Maximum QoS 1
			h.s.disconnect(c, packets.ErrQosNotSupported)
			return pk, packets.ErrRejectPacket
		}
		if hasSysPrefix(pk.TopicName) {
			// mochi drops $SYS publishes without an ack; refuse them in order instead.
			h.s.refusePublish(c, pk, errNotAuthorized)
		}
	case packets.Puback: // the device acknowledged a command (mochi has no record of it)
		c.cmds.acked(pk.PacketID, pk.ReasonCode)
	case packets.Disconnect:
		if pk.ReasonCode != packets.CodeDisconnect.Code {
			// Only a normal disconnection (0x00) discards the will [MQTT-3.1.2-10].
			c.willOnClose.Store(true)
		}
	}
	return pk, nil
}

// OnPacketEncode advertises the endpoint's limits in the v5 CONNACK (SPEC §9).
func (h *hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Connack || pk.ProtocolVersion != 5 || pk.ReasonCode != packets.CodeSuccess.Code {
		return pk
	}
	p := &pk.Properties
	p.MaximumPacketSize = h.s.opts.MaximumPacketSize
	p.TopicAliasMaximum = h.s.opts.TopicAliasMaximum
	p.RetainAvailable, p.RetainAvailableFlag = 0, true
	p.SharedSubAvailable, p.SharedSubAvailableFlag = 0, true
	p.SubIDAvailable, p.SubIDAvailableFlag = 0, true
	p.WildcardSubAvailable, p.WildcardSubAvailableFlag = 1, true
	return pk
}

// OnACLCheck lets every publish reach OnPublish (which refuses in order) and only the
// subscriptions OnSubscribe moved into the connection's own namespace.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return true
	}
	c := h.s.connOf(cl)
	return c != nil && strings.HasPrefix(topic, c.namespace())
}

// OnSubscribe grants only the command filters of SPEC §7: it records them for routing and moves
// them into a namespace of the connection, so that mochi's shared topic tree never matches them
// for anyone else. Other filters stay as they are and OnACLCheck refuses them (v5 0x87, v3 0x80).
func (h *hook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	c := h.s.connOf(cl)
	if c == nil {
		return pk
	}
	for i, f := range pk.Filters {
		sub, ok := parseFilter(f.Filter)
		if !ok {
			continue
		}
		sub.qos = min(f.Qos, 1)
		c.cmds.subscribe(f.Filter, sub)
		pk.Filters[i].Filter = c.namespace() + f.Filter
	}
	return pk
}

// OnUnsubscribe removes command filters the same way OnSubscribe added them; mochi answers 0x11
// (v5) for a filter that was never granted.
func (h *hook) OnUnsubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	c := h.s.connOf(cl)
	if c == nil {
		return pk
	}
	for i, f := range pk.Filters {
		if _, ok := parseFilter(f.Filter); ok {
			c.cmds.unsubscribe(f.Filter)
			pk.Filters[i].Filter = c.namespace() + f.Filter
		}
	}
	return pk
}

// OnWill never lets mochi publish a will; OnConnect already removed it.
func (h *hook) OnWill(_ *mqtt.Client, w mqtt.Will) (mqtt.Will, error) {
	w.Flag = 0
	return w, nil
}

// OnPublish turns a device publish into an event. It never lets mochi route or retain it:
// success is sent by the ack queue once the sink answered, so mochi is told to drop the packet.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	s := h.s
	c := s.connOf(cl)
	if c == nil {
		return pk, packets.ErrRejectPacket
	}
	p, err := s.publish(c, pk)
	if err == nil && s.closing.Load() {
		err = errShuttingDown
	}
	if err != nil {
		s.refusePublish(c, pk, err)
		return pk, packets.ErrRejectPacket
	}
	if pk.FixedHeader.Qos == 0 {
		c.pending.add()
		if !s.opts.Forwarder.ForwardAsync(p, c.pendingDone) {
			c.pending.done()
			s.metrics.publish("dropped")
		}
		return pk, packets.ErrRejectPacket
	}
	f, err := c.acks.reserve(c.ctx, pk.PacketID)
	if err != nil { // the connection ended while the window was full
		return pk, packets.ErrRejectPacket
	}
	c.pending.add()
	answered := func(err error) {
		s.metrics.publishResult(err)
		c.acks.complete(f, err)
		c.pending.done()
	}
	if err := s.opts.Forwarder.Submit(p, answered); err != nil {
		answered(err)
	}
	return pk, packets.ErrRejectPacket
}

// hasSysPrefix reports whether topic starts with $SYS, as mochi checks it.
func hasSysPrefix(topic string) bool {
	return len(topic) >= 4 && strings.EqualFold(topic[:4], "$SYS")
}
