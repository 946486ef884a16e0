package bridge

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// tcpListener accepts TCP connections — plain, TLS, or TLS-PSK when secure is set — and gives
// each one ConnectTimeout for the handshake and its CONNECT packet; mochi itself waits forever
// (mochi-tls.md A.9).
type tcpListener struct {
	id             string
	address        string
	connectTimeout time.Duration
	tls            *tls.Config                      // TLS with certificates; nil for plain or PSK
	secure         func(net.Conn) (net.Conn, error) // runs a handshake before MQTT (TLS-PSK); nil for none
	ended          func(net.Conn)                   // called once mochi is done with a connection

	ln        net.Listener
	log       *slog.Logger
	closeOnce sync.Once
}

var _ listeners.Listener = (*tcpListener)(nil)

func (l *tcpListener) ID() string { return l.id }

func (l *tcpListener) Protocol() string {
	if l.tls != nil || l.secure != nil {
		return "tls"
	}
	return "tcp"
}

func (l *tcpListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

func (l *tcpListener) Init(log *slog.Logger) error {
	l.log = log
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls.Clone())
	}
	l.ln = ln
	return nil
}

func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.log.Error("accept failed; listener stops", "listener", l.id, "err", err)
			}
			return
		}
		go func() {
			// mochi replaces this deadline with the keep-alive one once the client is authenticated.
			_ = c.SetDeadline(time.Now().Add(l.connectTimeout))
			if l.secure != nil {
				sc, err := l.secure(c)
				if err != nil {
					l.log.Debug("handshake failed", "listener", l.id, "remote", c.RemoteAddr().String(), "err", err)
					_ = c.Close()
					return
				}
				c = sc
			}
			if err := establish(l.id, c); err != nil {
				l.log.Debug("connection ended", "listener", l.id, "remote", c.RemoteAddr().String(), "err", err)
			}
			l.ended(c)
		}()
	}
}

// stopAccepting closes the socket; open connections stay.
func (l *tcpListener) stopAccepting() {
	if l.ln != nil {
		_ = l.ln.Close()
	}
}

func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	l.closeOnce.Do(func() {
		if l.ln != nil {
			_ = l.ln.Close()
		}
		closeClients(l.id)
	})
}
