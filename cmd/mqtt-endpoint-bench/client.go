package main

// The load clients are a small MQTT client written for this tool rather than paho: the load
// generator shares the machine's cores with the endpoint, so a client must cost as little as
// possible. Each connection has exactly one goroutine (its reader), writes are one syscall per
// packet under a mutex, packets are encoded into reused buffers, and nothing is allocated per
// received PUBACK. paho.golang runs several goroutines and allocates a packet struct, a
// properties struct and a channel round trip per publish; paho.mqtt.golang keeps a message store
// and a router. Both would measure the client as much as the endpoint.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// dialConfig says how to reach the endpoint and who to be.
type dialConfig struct {
	Transport      string // "tcp" or "ws"
	Address        string // host:port
	Version        byte   // 4 or 5
	ClientID       string
	Username       string
	Password       string
	Keepalive      uint16
	ReceiveMaximum uint16
	Timeout        time.Duration
	LocalAddr      *net.TCPAddr // source address; nil lets the kernel choose
}

// client is one raw MQTT connection. Its callbacks run on the reader goroutine and must not block.
type client struct {
	version byte
	nc      net.Conn        // tcp; nil for ws
	ws      *websocket.Conn // ws; nil for tcp
	r       *bufio.Reader
	Connack packet

	wmu       sync.Mutex
	wbuf      []byte
	lastWrite atomic.Int64 // unix nanoseconds

	h atomic.Pointer[handlers]

	done       chan struct{}
	err        error // why the reader stopped; read after done is closed
	disconnect atomic.Int32
	closing    atomic.Bool
}

// handlers are the callbacks of a client; they run on its reader goroutine and must not block.
// Any may be nil.
type handlers struct {
	// Puback receives each PUBACK with the time it was read.
	Puback func(id uint16, code byte, now int64)
	// Publish receives each PUBLISH (a command). Topic and payload are only valid during the
	// call. A QoS 1 PUBLISH is acknowledged after the call returns.
	Publish func(topic, payload []byte, qos byte, now int64)
	// Suback receives each SUBACK's first return code.
	Suback func(id uint16, code byte)
}

// setHandlers replaces the callbacks; safe while the reader runs.
func (c *client) setHandlers(h *handlers) { c.h.Store(h) }

// errServerDisconnect is the reader's error after a v5 DISCONNECT from the server.
var errServerDisconnect = errors.New("server sent DISCONNECT")

// connackError is a refused CONNECT.
type connackError struct{ code byte }

func (e connackError) Error() string { return fmt.Sprintf("CONNACK code 0x%02x", e.code) }

// dial connects, sends CONNECT and reads CONNACK. Call start to run the reader.
func dial(ctx context.Context, cfg dialConfig) (*client, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c := &client{version: cfg.Version, done: make(chan struct{})}
	deadline, _ := ctx.Deadline()
	switch cfg.Transport {
	case "ws":
		nd := &net.Dialer{}
		if cfg.LocalAddr != nil {
			nd.LocalAddr = cfg.LocalAddr
		}
		d := websocket.Dialer{
			NetDialContext:   nd.DialContext,
			Subprotocols:     []string{"mqtt"},
			HandshakeTimeout: cfg.Timeout,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
		}
		u := url.URL{Scheme: "ws", Host: cfg.Address, Path: "/mqtt"}
		ws, resp, err := d.DialContext(ctx, u.String(), nil)
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("websocket dial: %w", err)
		}
		c.ws = ws
		_ = ws.SetReadDeadline(deadline)
		c.r = bufio.NewReaderSize(&wsReader{ws: ws}, 512)
	default:
		var d net.Dialer
		if cfg.LocalAddr != nil {
			d.LocalAddr = cfg.LocalAddr
		}
		nc, err := d.DialContext(ctx, "tcp", cfg.Address)
		if err != nil {
			return nil, err
		}
		c.nc = nc
		_ = nc.SetReadDeadline(deadline)
		c.r = bufio.NewReaderSize(nc, 512)
	}
	var pw []byte
	if cfg.Password != "" {
		pw = []byte(cfg.Password)
	}
	err := c.write(encodeConnect(connectOptions{
		Version: cfg.Version, ClientID: cfg.ClientID, Username: cfg.Username, Password: pw,
		Keepalive: cfg.Keepalive, ReceiveMaximum: cfg.ReceiveMaximum,
	}))
	if err != nil {
		c.close()
		return nil, err
	}
	first, body, _, err := readPacket(c.r, nil)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("read CONNACK: %w", err)
	}
	p, err := parsePacket(c.version, first, body)
	if err != nil || p.Type != typeConnack {
		c.close()
		return nil, fmt.Errorf("expected CONNACK, got type %d: %v", p.Type, err)
	}
	c.Connack = p
	if p.Code != 0 {
		c.close()
		return nil, connackError{p.Code}
	}
	if c.nc != nil {
		_ = c.nc.SetReadDeadline(time.Time{})
	} else {
		_ = c.ws.SetReadDeadline(time.Time{})
	}
	return c, nil
}

// start runs the reader goroutine.
func (c *client) start() { go c.read() }

func (c *client) read() {
	defer close(c.done)
	var buf []byte
	for {
		first, body, b, err := readPacket(c.r, buf)
		buf = b
		if err != nil {
			if c.err == nil {
				c.err = err
			}
			return
		}
		p, err := parsePacket(c.version, first, body)
		if err != nil {
			c.err = err
			c.close()
			return
		}
		now := time.Now().UnixNano()
		h := c.h.Load()
		if h == nil {
			h = &handlers{}
		}
		switch p.Type {
		case typePuback:
			if h.Puback != nil {
				h.Puback(p.ID, p.Code, now)
			}
		case typePublish:
			if h.Publish != nil {
				h.Publish(p.Topic, p.Payload, p.QoS, now)
			}
			if p.QoS > 0 {
				var ack [4]byte
				if err := c.write(appendPuback(ack[:0], p.ID)); err != nil {
					c.err = err
					return
				}
			}
		case typeSuback:
			if h.Suback != nil {
				h.Suback(p.ID, p.Code)
			}
		case typeDisconnect:
			c.disconnect.Store(int32(p.Code) | 0x100)
			c.err = fmt.Errorf("%w 0x%02x", errServerDisconnect, p.Code)
		}
	}
}

// write sends one encoded packet.
func (c *client) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

func (c *client) writeLocked(b []byte) error {
	c.lastWrite.Store(time.Now().UnixNano())
	if c.ws != nil {
		return c.ws.WriteMessage(websocket.BinaryMessage, b)
	}
	_, err := c.nc.Write(b)
	return err
}

// publish encodes and sends one PUBLISH through the client's write buffer.
func (c *client) publish(topic string, qos byte, id uint16, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = appendPublish(c.wbuf[:0], c.version, topic, qos, id, payload)
	return c.writeLocked(c.wbuf)
}

// ping sends PINGREQ when nothing was written for idle.
func (c *client) ping(idle time.Duration) {
	if time.Since(time.Unix(0, c.lastWrite.Load())) >= idle {
		_ = c.write(pingreq)
	}
}

// close ends the connection without DISCONNECT.
func (c *client) close() {
	c.closing.Store(true)
	if c.nc != nil {
		_ = c.nc.Close()
	}
	if c.ws != nil {
		_ = c.ws.Close()
	}
}

// abort closes the connection with a TCP reset (SO_LINGER 0), as a lost network would: no
// DISCONNECT, and no TIME_WAIT socket left on the client side.
func (c *client) abort() {
	c.closing.Store(true)
	nc := c.nc
	if c.ws != nil {
		nc = c.ws.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

// disconnectAndClose sends DISCONNECT (normal) and closes.
func (c *client) disconnectAndClose() {
	_ = c.write(disconnect)
	c.close()
}

// wsReader reads the binary messages of a WebSocket as one stream.
type wsReader struct {
	ws  *websocket.Conn
	cur io.Reader
}

func (w *wsReader) Read(p []byte) (int, error) {
	for {
		if w.cur == nil {
			_, r, err := w.ws.NextReader()
			if err != nil {
				return 0, err
			}
			w.cur = r
		}
		n, err := w.cur.Read(p)
		if err == io.EOF {
			w.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}
