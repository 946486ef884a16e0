package psk

import "net"

// KeyFunc returns the pre-shared key for a PSK identity, or an error to fail the handshake.
//
// It runs inside the handshake, on the goroutine that called Server, and may block (a registry
// lookup, say): the connection's deadline does not interrupt it, so bound it yourself.
//
// Ownership: Server copies the key into OpenSSL and then zeroes the returned slice. Return a
// fresh copy of the key, never a slice that a cache or a registry snapshot still uses.
type KeyFunc func(identity string) ([]byte, error)

// Cipher configuration, shared by the server and the client side.
const (
	// tls12Ciphers is the OpenSSL cipher list for TLS 1.2: PSK suites only (RFC 4279, 5487,
	// 5489, 6655, 7905). No certificate is ever configured, so nothing else could work anyway.
	tls12Ciphers = "PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:PSK-AES128-CCM8:PSK-AES128-CCM:" +
		"ECDHE-PSK-AES128-CBC-SHA256:ECDHE-PSK-CHACHA20-POLY1305:PSK-CHACHA20-POLY1305"
	// tls13Suites is the TLS 1.3 ciphersuite list. TLS 1.3 suites do not name the
	// authentication; the server accepts only handshakes with an external PSK because it has no
	// certificate. The CCM suites are there for constrained devices (mbedTLS, Zephyr).
	tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:" +
		"TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"
)

var _ net.Conn = (*Conn)(nil)
