package bridge

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// wsListener serves MQTT over WebSocket on any path (SPEC §3). It keeps the TLS state of the
// HTTP request, so that client certificates reach authentication over wss (mochi's own
// websocket listener hides them, mochi-tls.md E).
type wsListener struct {
	id             string
	address        string
	tls            *tls.Config // nil for ws
	connectTimeout time.Duration
	maxPacketSize  int64
	ended          func(net.Conn) // called once mochi is done with a connection

	ln        net.Listener
	srv       *http.Server
	log       *slog.Logger
	closeOnce sync.Once
}

var _ listeners.Listener = (*wsListener)(nil)

func (l *wsListener) ID() string { return l.id }

func (l *wsListener) Protocol() string {
	if l.tls != nil {
		return "wss"
	}
	return "ws"
}

func (l *wsListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

func (l *wsListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	if l.tls != nil {
		cfg := l.tls.Clone() // net/http mutates NextProtos (mochi-tls.md A.9)
		cfg.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(ln, cfg)
	}
	l.ln = ln
	l.srv = &http.Server{
		ReadHeaderTimeout: l.connectTimeout,
		ErrorLog:          slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// Serve answers upgrades until Close; mochi calls it once, after Init.
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	up := &websocket.Upgrader{
		Subprotocols:     []string{"mqtt", "mqttv3.1"},
		HandshakeTimeout: l.connectTimeout,
		CheckOrigin:      func(*http.Request) bool { return true }, // devices and dashboards of any origin; auth is MQTT's
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, "MQTT Web Socket protocol only", http.StatusNotFound)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader answered the client
		}
		ws.SetReadLimit(l.maxPacketSize + 16)
		c := &wsConn{ws: ws}
		if r.TLS != nil {
			c.state = *r.TLS
		}
		_ = c.SetDeadline(time.Now().Add(l.connectTimeout))
		if err := establish(l.id, c); err != nil {
			l.log.Debug("connection ended", "listener", l.id, "remote", r.RemoteAddr, "err", err)
		}
		l.ended(c)
	})
	l.srv.Handler = handler // Close touches only the server's own state, never Handler
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		l.log.Error("websocket listener stopped", "listener", l.id, "err", err)
	}
}

// stopAccepting closes the socket; upgraded connections are the endpoint's and stay.
func (l *wsListener) stopAccepting() {
	if l.srv != nil {
		_ = l.srv.Close()
	}
}

func (l *wsListener) Close(closeClients listeners.CloseFn) {
	l.closeOnce.Do(func() {
		if l.srv != nil {
			_ = l.srv.Close()
		} else if l.ln != nil {
			_ = l.ln.Close()
		}
		closeClients(l.id)
	})
}

// wsConn is an MQTT byte stream over binary WebSocket messages.
type wsConn struct {
	ws    *websocket.Conn
	state tls.ConnectionState
	r     io.Reader // the message being read

	wmu sync.Mutex // serialises writes and close (gorilla allows one writer)
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errors.New("websocket: MQTT needs binary messages")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) Close() error {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	return c.ws.Close()
}

func (c *wsConn) LocalAddr() net.Addr                { return c.ws.LocalAddr() }
func (c *wsConn) RemoteAddr() net.Addr               { return c.ws.RemoteAddr() }
func (c *wsConn) SetDeadline(t time.Time) error      { return c.ws.NetConn().SetDeadline(t) }
func (c *wsConn) SetReadDeadline(t time.Time) error  { return c.ws.SetReadDeadline(t) }
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.ws.SetWriteDeadline(t) }

// ConnectionState is the TLS state of the wss request; empty for ws.
func (c *wsConn) ConnectionState() tls.ConnectionState { return c.state }
