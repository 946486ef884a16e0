//go:build !(psk && cgo)

package psk

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// errUnsupported is returned by everything in a build without TLS-PSK.
var errUnsupported = fmt.Errorf("psk: TLS-PSK is not compiled in; build with -tags psk and CGO_ENABLED=1: %w",
	errors.ErrUnsupported)

// Available reports whether TLS-PSK is compiled in. It is false in this build.
func Available() bool { return false }

// Server always fails in this build with an error wrapping errors.ErrUnsupported. It does not
// touch conn.
func Server(conn net.Conn, keys KeyFunc) (*Conn, error) { return nil, errUnsupported }

// Client always fails in this build with an error wrapping errors.ErrUnsupported. It does not
// touch conn.
func Client(conn net.Conn, identity string, key []byte) (*Conn, error) { return nil, errUnsupported }

// Conn is a TLS-PSK connection. This build cannot create one; its methods fail.
type Conn struct{}

// Read fails: TLS-PSK is not compiled in.
func (c *Conn) Read(b []byte) (int, error) { return 0, errUnsupported }

// Write fails: TLS-PSK is not compiled in.
func (c *Conn) Write(b []byte) (int, error) { return 0, errUnsupported }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// LocalAddr returns nil.
func (c *Conn) LocalAddr() net.Addr { return nil }

// RemoteAddr returns nil.
func (c *Conn) RemoteAddr() net.Addr { return nil }

// SetDeadline fails: TLS-PSK is not compiled in.
func (c *Conn) SetDeadline(t time.Time) error { return errUnsupported }

// SetReadDeadline fails: TLS-PSK is not compiled in.
func (c *Conn) SetReadDeadline(t time.Time) error { return errUnsupported }

// SetWriteDeadline fails: TLS-PSK is not compiled in.
func (c *Conn) SetWriteDeadline(t time.Time) error { return errUnsupported }

// NetConn returns nil.
func (c *Conn) NetConn() net.Conn { return nil }

// PSKIdentity returns "".
func (c *Conn) PSKIdentity() string { return "" }

// ConnectionState returns the zero state.
func (c *Conn) ConnectionState() tls.ConnectionState { return tls.ConnectionState{} }
