package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/bridge/psk"
	"mqtt-endpoint/bridge/registry"
	"mqtt-endpoint/source"
)

var (
	errShuttingDown   = errors.New("server shutting down")
	errConnectionLost = errors.New("connection lost")
)

// Forwarder sends events to the sink; *source.Forwarder implements it.
type Forwarder interface {
	// Forward sends one event and returns once the sink accepted (nil) or refused it.
	Forward(ctx context.Context, p source.Publish) error
	// ForwardAsync queues one best-effort event without blocking; false means it was dropped.
	// Otherwise done is called once the send ended.
	ForwardAsync(p source.Publish, done func()) bool
	// Submit queues one event for the sink without blocking and calls done with the sink's
	// answer; an error means it was refused at once and done is not called.
	Submit(p source.Publish, done func(error)) error
}

// Registry is the current device registry.
type Registry interface {
	Current() *registry.Registry
}

// Transport is how MQTT packets travel on a listener.
type Transport int

// The transports of SPEC §3.
const (
	TCP       Transport = iota // MQTT over TCP, or TLS when the listener has a certificate
	WebSocket                  // MQTT over WebSocket (binary messages, any path, subprotocol mqtt)
	PSK                        // MQTT over TLS-PSK (built with -tags psk)
)

// Listener is one network address the server accepts MQTT connections on.
type Listener struct {
	Name      string // "mqtt", "mqtts", "ws", "wss", "psk"; appears in logs and metrics
	Address   string // host:port; port 0 picks a free one
	Transport Transport
	// Certificate makes the listener TLS (mqtts, wss); nil for plain ones.
	Certificate *CertificateFiles
	// NoClientCertificates stops a TLS listener from requesting client certificates: browsers
	// fail the handshake when asked for one (the wss profile for dashboards).
	NoClientCertificates bool
}

// Options configures a Server. Zero values mean the defaults.
type Options struct {
	Listeners         []Listener
	Registry          Registry
	Authenticator     *auth.Authenticator
	Forwarder         Forwarder
	Logger            *slog.Logger
	Metrics           prometheus.Registerer
	ReceiveMaximum    uint16        // QoS 1 publishes in flight per connection; default 32
	MaximumPacketSize uint32        // default 256 KiB
	TopicAliasMaximum uint16        // inbound topic aliases; default 16
	MaxKeepalive      uint16        // seconds, imposed on clients asking for none; default 300
	ConnectTimeout    time.Duration // TCP accept → CONNECT read and authenticated; default 10s
	EventTimeout      time.Duration // bound for connection and will events; default 10s
}

func (o *Options) setDefaults() {
	if o.ReceiveMaximum == 0 {
		o.ReceiveMaximum = 32
	}
	if o.MaximumPacketSize == 0 {
		o.MaximumPacketSize = 256 << 10
	}
	if o.TopicAliasMaximum == 0 {
		o.TopicAliasMaximum = 16
	}
	if o.MaxKeepalive == 0 {
		o.MaxKeepalive = 300
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.EventTimeout == 0 {
		o.EventTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Server is the device-facing MQTT server: it authenticates devices, turns their publishes into
// events and keeps one connection per device.
type Server struct {
	opts    Options
	log     *slog.Logger
	mochi   *mqtt.Server
	table   *memTable
	conns   sync.Map // *mqtt.Client → *conn, for every authenticated connection
	byNet   sync.Map // net.Conn → *mqtt.Client of the same connections
	metrics *metrics
	closing atomic.Bool

	ctx    context.Context // the server's lifetime; parent of every connection's context
	cancel context.CancelFunc

	mu        sync.Mutex // guards addrs and accepting
	addrs     map[string]string
	accepting []interface{ stopAccepting() } // the listeners, to stop them before the clients
}

// New creates a server; Start opens its listeners.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	if opts.Registry == nil || opts.Authenticator == nil || opts.Forwarder == nil {
		panic("bridge: Options need Registry, Authenticator and Forwarder")
	}
	s := &Server{opts: opts, log: opts.Logger, table: newMemTable(), addrs: make(map[string]string)}
	s.metrics = newMetrics(opts.Metrics)
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	caps.RetainAvailable = 0
	caps.SharedSubAvailable = 0
	caps.SubIDAvailable = 0
	caps.WildcardSubAvailable = 1
	caps.MaximumSessionExpiryInterval = 0
	caps.ReceiveMaximum = opts.ReceiveMaximum
	caps.MaximumInflight = 64
	caps.MaximumClientWritesPending = 64
	caps.MaximumPacketSize = opts.MaximumPacketSize
	caps.TopicAliasMaximum = opts.TopicAliasMaximum
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	s.mochi = mqtt.New(&mqtt.Options{
		Capabilities: caps,
		// MQTT packets of devices are small; a larger packet is read in several calls anyway.
		ClientNetReadBufferSize:  1024,
		ClientNetWriteBufferSize: 1024,
		Logger:                   opts.Logger.With("component", "mochi"),
		SysTopicResendInterval:   1 << 30,
		InlineClient:             false, // nothing is routed through mochi: commands are written per connection
	})
	if err := s.mochi.AddHook(&hook{s: s}, nil); err != nil {
		return nil, fmt.Errorf("add mqtt hook: %w", err)
	}
	return s, nil
}

// Start binds every listener and serves until Close. Listener addresses are then in Addrs.
func (s *Server) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, l := range s.opts.Listeners {
		ln, err := s.listener(l)
		if err != nil {
			return err
		}
		if err := s.mochi.AddListener(ln); err != nil {
			return fmt.Errorf("listen %s on %s: %w", l.Name, l.Address, err)
		}
		s.mu.Lock()
		s.addrs[l.Name] = ln.Address()
		s.accepting = append(s.accepting, ln.(interface{ stopAccepting() }))
		s.mu.Unlock()
		s.log.Info("listening", "listener", l.Name, "address", ln.Address())
	}
	if err := s.mochi.Serve(); err != nil {
		return fmt.Errorf("serve mqtt: %w", err)
	}
	return nil
}

// listener builds the mochi listener of one configured address.
func (s *Server) listener(l Listener) (listeners.Listener, error) {
	var tlsConfig *tls.Config
	if l.Certificate != nil {
		tlsConfig = serverTLS(l.Certificate, !l.NoClientCertificates)
	}
	switch l.Transport {
	case TCP:
		return &tcpListener{id: l.Name, address: l.Address, connectTimeout: s.opts.ConnectTimeout, tls: tlsConfig,
			ended: s.connectionEnded}, nil
	case WebSocket:
		return &wsListener{id: l.Name, address: l.Address, connectTimeout: s.opts.ConnectTimeout,
			tls: tlsConfig, maxPacketSize: int64(s.opts.MaximumPacketSize), ended: s.connectionEnded}, nil
	case PSK:
		if !psk.Available() {
			return nil, fmt.Errorf("listener %s: TLS-PSK needs a build with -tags psk and CGO_ENABLED=1", l.Name)
		}
		keys := func(identity string) ([]byte, error) {
			return s.opts.Authenticator.PSKKey(identity, time.Now())
		}
		return &tcpListener{id: l.Name, address: l.Address, connectTimeout: s.opts.ConnectTimeout,
			secure: func(c net.Conn) (net.Conn, error) { return psk.Server(c, keys) }, ended: s.connectionEnded}, nil
	default:
		panic(fmt.Sprintf("bridge: unknown transport %d", l.Transport))
	}
}

// Addrs returns the bound address of every listener by name.
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.addrs))
	for k, v := range s.addrs {
		out[k] = v
	}
	return out
}

// Ready reports whether the server takes connections.
func (s *Server) Ready() error {
	if s.closing.Load() {
		return errShuttingDown
	}
	return nil
}

// Shutdown ends the server gracefully (SPEC §8): it stops accepting connections and refuses new
// publishes (v5 0x89, v3.1.1 close), waits for the publishes in flight to be answered by the
// sink and acknowledged, then disconnects every client (v5 DISCONNECT 0x8B) and waits for their
// last events. When ctx ends first, the rest is cut short: what was not acknowledged is sent
// again by the devices.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for _, l := range s.accepting {
		l.stopAccepting()
	}
	s.mu.Unlock()
	s.conns.Range(func(_, v any) bool {
		select {
		case <-v.(*conn).pending.drained():
			return true
		case <-ctx.Done():
			return false
		}
	})
	s.conns.Range(func(_, v any) bool {
		s.disconnect(v.(*conn), packets.ErrServerShuttingDown) // v5 DISCONNECT 0x8B, v3.1.1 close
		return true
	})
	_ = s.mochi.Close() // whoever is left (mochi writes its DISCONNECT to any version)
	for ctx.Err() == nil && s.open() > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	if n := s.open(); n > 0 {
		return fmt.Errorf("shutdown: %d connections still closing: %w", n, ctx.Err())
	}
	return nil
}

// Close ends the server at once: every client is disconnected (v5 0x8B).
func (s *Server) Close() error {
	s.closing.Store(true)
	err := s.mochi.Close()
	if s.cancel != nil {
		s.cancel()
	}
	return err
}

// open counts the connections whose end has not been processed yet.
func (s *Server) open() int {
	n := 0
	s.conns.Range(func(_, _ any) bool { n++; return true })
	return n
}

// connectionEnded releases a connection mochi gave up on without OnDisconnect (it skips the hook
// when writing the CONNACK fails), so that the device is not left claimed.
func (s *Server) connectionEnded(nc net.Conn) {
	if v, ok := s.byNet.Load(nc); ok {
		s.release(v.(*mqtt.Client), errConnectionLost)
	}
}

// release ends the endpoint's side of a connection once: the device is released and the last
// will (unless the client disconnected normally) and the disconnected event are emitted.
func (s *Server) release(cl *mqtt.Client, err error) {
	v, ok := s.conns.LoadAndDelete(cl)
	if !ok {
		return
	}
	c := v.(*conn)
	s.byNet.Delete(cl.Net.Conn)
	c.cancel()
	s.table.Release(c)
	s.metrics.connections.WithLabelValues(cl.Net.Listener, c.key.app).Dec()
	s.finish(c, err != nil)
}

func (s *Server) connOf(cl *mqtt.Client) *conn {
	if v, ok := s.conns.Load(cl); ok {
		return v.(*conn)
	}
	return nil
}

// disconnect closes a connection with a reason: a DISCONNECT packet on v5, a socket close on v3.1.1.
func (s *Server) disconnect(c *conn, code packets.Code) {
	if c.v5 {
		_ = s.mochi.DisconnectClient(c.cl, code)
		return
	}
	c.cl.Stop(code)
}

// takeover closes the older connection of a device at once (SPEC §5) and emits its events.
func (s *Server) takeover(old *conn) {
	old.log.Info("connection taken over by a new connection of the device")
	s.disconnect(old, packets.ErrSessionTakenOver)
	old.cancel()
	s.finish(old, true)
}

// finish emits, once per connection, the last will (after an abnormal end) and the disconnected
// event, after the connection's own events were sent (bounded by EventTimeout): a consumer sees
// connected, the device's events, then disconnected.
func (s *Server) finish(c *conn, abnormal bool) {
	c.finishOne.Do(func() {
		select {
		case <-c.pending.drained():
		case <-time.After(s.opts.EventTimeout):
			c.log.Warn("events of the connection still in flight at disconnect")
		}
		if c.will != nil && (abnormal || c.willOnClose.Load()) {
			s.emit(c, *c.will)
		}
		s.emit(c, source.ConnectionEvent(c.publishFor(c.dev), false))
		c.log.Info("device disconnected", "abnormal", abnormal)
	})
}

// emit sends a connection-related event, bounded by EventTimeout.
func (s *Server) emit(c *conn, p source.Publish) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.EventTimeout)
	defer cancel()
	if err := s.opts.Forwarder.Forward(ctx, p); err != nil {
		c.log.Warn("event not delivered", "type", p.Type, "subject", p.Channel, "err", err)
		s.metrics.publish("event_lost")
	}
}

// publish resolves a publish packet into the event it stands for (SPEC §6).
func (s *Server) publish(c *conn, pk packets.Packet) (source.Publish, error) {
	t, err := parseTopic(c.dialect, pk.TopicName)
	if err != nil {
		return source.Publish{}, err
	}
	dev, err := s.resolve(c, t)
	if err != nil {
		return source.Publish{}, err
	}
	p := c.publishFor(dev)
	p.Channel = t.channel
	p.ContentType = pk.Properties.ContentType
	p.Payload = pk.Payload
	return p, nil
}

// resolve finds the device a publish is for: the connected device, or a device that names the
// connected device (by name or alias) in its gatewaySelector.
func (s *Server) resolve(c *conn, t target) (*registry.Device, error) {
	if !t.named {
		return c.dev, nil
	}
	reg := s.opts.Registry.Current()
	d, ok := reg.Device(c.app.Name, t.device)
	if !ok {
		return nil, errNotAuthorized
	}
	if d.Name == c.dev.Name {
		return c.dev, nil
	}
	if d.Disabled {
		return nil, errNotAuthorized
	}
	for _, m := range d.Gateways {
		if m == c.dev.Name {
			return d, nil
		}
		if g, ok := reg.Device(c.app.Name, m); ok && g.Name == c.dev.Name {
			return d, nil
		}
	}
	return nil, errNotAuthorized
}

// refusePublish answers a publish that will not become an event: a negative PUBACK in order on
// v5 QoS 1, a closed connection on v3.1.1 (which cannot be told otherwise), a counted drop on v5 QoS 0.
func (s *Server) refusePublish(c *conn, pk packets.Packet, err error) {
	s.metrics.publish("refused")
	c.log.Debug("publish refused", "topic", pk.TopicName, "qos", pk.FixedHeader.Qos, "err", err)
	switch {
	case !c.v5:
		c.log.Info("closing v3.1.1 connection: publish refused", "topic", pk.TopicName, "err", err)
		c.cl.Stop(err)
	case pk.FixedHeader.Qos > 0:
		if f, rerr := c.acks.reserve(c.ctx, pk.PacketID); rerr == nil {
			c.acks.complete(f, err)
		}
	}
}
