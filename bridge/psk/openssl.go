//go:build psk && cgo

package psk

/*
#cgo LDFLAGS: -lssl -lcrypto

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#if OPENSSL_VERSION_NUMBER < 0x10101000L
#error "bridge/psk needs OpenSSL 1.1.1 or newer (TLS 1.3 external PSK callbacks)"
#endif

// Implemented in Go (export.go).
extern int pskGoServerKey(uintptr_t h, char *identity, size_t identityLen, unsigned char *out, size_t outMax);
extern int pskGoClientKey(uintptr_t h, char *identity, size_t identityMax, unsigned char *out, size_t outMax);

enum { PSK_OP_HANDSHAKE, PSK_OP_READ, PSK_OP_WRITE, PSK_OP_SHUTDOWN };

// psk_result carries the outcome of one OpenSSL call back to Go. OpenSSL's error queue is
// thread-local and a goroutine may change threads between two cgo calls, so every call that can
// fail clears the queue first and drains it into msg before returning.
typedef struct {
	int    ret;
	int    err;      // SSL_get_error
	size_t n;        // bytes read or written
	char   msg[512]; // the drained error queue, "; "-separated
} psk_result;

static void psk_collect(psk_result *r) {
	unsigned long e;
	size_t off = 0;
	r->msg[0] = 0;
	while ((e = ERR_get_error()) != 0) {
		if (off + 3 >= sizeof r->msg) {
			continue; // keep draining
		}
		if (off > 0) {
			r->msg[off++] = ';';
			r->msg[off++] = ' ';
		}
		ERR_error_string_n(e, r->msg + off, sizeof r->msg - off);
		off += strlen(r->msg + off);
	}
}

static uintptr_t psk_handle(SSL *ssl) {
	return (uintptr_t)SSL_get_app_data(ssl);
}

// psk_server_cb serves TLS 1.2 PSK suites. In TLS 1.3 OpenSSL calls it only when
// psk_find_session_cb found no key, so it refuses instead of asking Go a second time.
static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk, unsigned int max_psk_len) {
	uintptr_t h = psk_handle(ssl);
	int n;
	if (h == 0 || identity == NULL || SSL_version(ssl) >= TLS1_3_VERSION) {
		return 0;
	}
	n = pskGoServerKey(h, (char *)identity, strlen(identity), psk, max_psk_len);
	return n > 0 ? (unsigned int)n : 0;
}

static const unsigned char psk_tls13_aes128gcmsha256[] = {0x13, 0x01};

// psk_find_session_cb serves TLS 1.3 external PSKs: it builds a session that holds the key.
// Its cipher fixes the PSK's hash; OpenSSL has already chosen the connection's ciphersuite,
// preferring SHA-256 ones because a PSK server callback is set and there is no certificate,
// and SHA-256 is the default hash of an external PSK (RFC 8446 4.2.11, what OpenSSL's and
// mosquitto's clients use). Returning 1 with *sess == NULL means "no PSK": with no certificate
// the handshake then fails.
static int psk_find_session_cb(SSL *ssl, const unsigned char *identity, size_t identity_len, SSL_SESSION **sess) {
	unsigned char key[PSK_MAX_PSK_LEN];
	const SSL_CIPHER *cipher;
	SSL_SESSION *s = NULL;
	uintptr_t h = psk_handle(ssl);
	int n;

	*sess = NULL;
	if (h == 0) {
		return 1;
	}
	n = pskGoServerKey(h, (char *)identity, identity_len, key, sizeof key);
	if (n <= 0) {
		OPENSSL_cleanse(key, sizeof key);
		return 1;
	}
	cipher = SSL_get_pending_cipher(ssl);
	if (cipher == NULL) {
		cipher = SSL_CIPHER_find(ssl, psk_tls13_aes128gcmsha256);
	}
	s = SSL_SESSION_new();
	if (s == NULL || cipher == NULL
	    || !SSL_SESSION_set1_master_key(s, key, (size_t)n)
	    || !SSL_SESSION_set_cipher(s, cipher)
	    || !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		OPENSSL_cleanse(key, sizeof key);
		SSL_SESSION_free(s);
		return 0;
	}
	OPENSSL_cleanse(key, sizeof key);
	*sess = s; // OpenSSL takes this reference
	return 1;
}

// psk_client_cb serves both TLS 1.2 and TLS 1.3 on the client side (OpenSSL turns the key
// into a SHA-256 external PSK for TLS 1.3, as mosquitto clients do).
static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity, unsigned int max_identity_len,
                                  unsigned char *psk, unsigned int max_psk_len) {
	uintptr_t h = psk_handle(ssl);
	int n;
	(void)hint;
	if (h == 0) {
		return 0;
	}
	n = pskGoClientKey(h, identity, max_identity_len, psk, max_psk_len);
	return n > 0 ? (unsigned int)n : 0;
}

static SSL_CTX *psk_new_ctx(int server, const char *ciphers, const char *suites, psk_result *r) {
	SSL_CTX *ctx;
	ERR_clear_error();
	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL
	    || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)
	    || !SSL_CTX_set_cipher_list(ctx, ciphers)
	    || !SSL_CTX_set_ciphersuites(ctx, suites)) {
		goto err;
	}
	// Every connection runs the key lookup: no session resumption (a revoked key must not
	// live on in a ticket), no renegotiation, no compression.
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (server) {
		if (!SSL_CTX_set_num_tickets(ctx, 0)) {
			goto err;
		}
		SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
		SSL_CTX_set_psk_find_session_callback(ctx, psk_find_session_cb);
	} else {
		// No trust anchors: a server that authenticates with a certificate instead of the
		// PSK (possible in TLS 1.3) fails verification.
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
	}
	return ctx;
err:
	psk_collect(r);
	SSL_CTX_free(ctx);
	return NULL;
}

// psk_new_ssl creates one connection's SSL with a memory BIO for each direction: rbio holds
// bytes from the network for OpenSSL, wbio holds OpenSSL's bytes for the network.
static SSL *psk_new_ssl(SSL_CTX *ctx, uintptr_t h, int server, int max_version, BIO **rbio, BIO **wbio,
                        psk_result *r) {
	SSL *ssl;
	BIO *in = NULL, *out = NULL;
	ERR_clear_error();
	ssl = SSL_new(ctx);
	if (ssl == NULL) {
		goto err;
	}
	in = BIO_new(BIO_s_mem());
	out = BIO_new(BIO_s_mem());
	if (in == NULL || out == NULL
	    || (max_version != 0 && !SSL_set_max_proto_version(ssl, max_version))
	    || !SSL_set_app_data(ssl, (void *)h)) {
		goto err;
	}
	SSL_set_bio(ssl, in, out); // ssl owns both now
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
	}
	*rbio = in;
	*wbio = out;
	return ssl;
err:
	psk_collect(r);
	BIO_free(in);
	BIO_free(out);
	SSL_free(ssl);
	return NULL;
}

// psk_key_update sends a TLS 1.3 KeyUpdate that asks the peer to update its keys too.
static void psk_key_update(SSL *ssl, psk_result *r) {
	int ret;
	ERR_clear_error();
	ret = SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED);
	if (ret == 1) {
		ret = SSL_do_handshake(ssl);
	}
	r->ret = ret;
	r->err = ret > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, ret);
	psk_collect(r);
}

static void psk_clear_handle(SSL *ssl) {
	SSL_set_app_data(ssl, NULL);
}

static void psk_op(SSL *ssl, int op, void *buf, size_t len, psk_result *r) {
	int ret = 0;
	r->n = 0;
	ERR_clear_error();
	switch (op) {
	case PSK_OP_HANDSHAKE:
		ret = SSL_do_handshake(ssl);
		break;
	case PSK_OP_READ:
		ret = SSL_read_ex(ssl, buf, len, &r->n);
		break;
	case PSK_OP_WRITE:
		ret = SSL_write_ex(ssl, buf, len, &r->n);
		break;
	case PSK_OP_SHUTDOWN:
		ret = SSL_shutdown(ssl);
		break;
	}
	r->ret = ret;
	r->err = ret > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, ret);
	psk_collect(r);
}

typedef struct {
	int      version;
	uint16_t cipher;
	int      reused;
} psk_info;

static void psk_get_info(SSL *ssl, psk_info *info) {
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	info->version = SSL_version(ssl);
	info->cipher = c != NULL ? SSL_CIPHER_get_protocol_id(c) : 0;
	info->reused = SSL_session_reused(ssl);
}

static const char *psk_servername(SSL *ssl) {
	return SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
}

static int psk_bio_write(BIO *b, const void *buf, int len) {
	ERR_clear_error();
	return BIO_write(b, buf, len);
}
*/
import "C"

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	// readBufSize is how much is read from the socket at a time. Each connection keeps one
	// such buffer; a full TLS record (16 KiB) takes two reads.
	readBufSize = 8 * 1024
	// writeChunk bounds the plaintext handed to SSL_write at once, and so the ciphertext
	// buffered in memory before it goes to the socket.
	writeChunk = 64 * 1024
	// closeNotifyTimeout bounds sending close_notify in Close, as crypto/tls does.
	closeNotifyTimeout = 5 * time.Second
)

// Available reports whether TLS-PSK is compiled in. It is true in this build.
func Available() bool { return true }

type ctxResult struct {
	ctx *C.SSL_CTX
	err error
}

// The SSL_CTXs are created once and shared: OpenSSL allows concurrent SSL_new on one context.
var (
	serverCtx = sync.OnceValue(func() ctxResult { return newCtx(true) })
	clientCtx = sync.OnceValue(func() ctxResult { return newCtx(false) })
)

func newCtx(server bool) ctxResult {
	ciphers := C.CString(tls12Ciphers)
	defer C.free(unsafe.Pointer(ciphers))
	suites := C.CString(tls13Suites)
	defer C.free(unsafe.Pointer(suites))
	var r C.psk_result
	ctx := C.psk_new_ctx(cbool(server), ciphers, suites, &r)
	if ctx == nil {
		return ctxResult{err: fmt.Errorf("psk: creating the OpenSSL context: %s", opensslMsg(&r))}
	}
	return ctxResult{ctx: ctx}
}

// Server runs the server side of a TLS-PSK handshake on conn (TLS 1.2 PSK suites and TLS 1.3
// external PSK) and returns the secured connection. The caller bounds the handshake with a
// deadline on conn; keys is called during the handshake with the client's identity.
//
// On error the caller still owns conn and should close it. A failed handshake's error carries
// the identity and OpenSSL's error string, and wraps the KeyFunc's error if the lookup failed
// (and the net.Conn's error, such as os.ErrDeadlineExceeded, if the socket failed).
func Server(conn net.Conn, keys KeyFunc) (*Conn, error) {
	if conn == nil || keys == nil {
		return nil, errors.New("psk: Server needs a connection and a KeyFunc")
	}
	cr := serverCtx()
	if cr.err != nil {
		return nil, cr.err
	}
	return handshake(conn, cr.ctx, true, 0, &handshakeState{keys: keys})
}

// Client runs the client side of a TLS-PSK handshake on conn with one identity and key,
// offering TLS 1.3 (external PSK, SHA-256) and TLS 1.2 PSK suites. It is meant for tests and
// tools; key is copied, not modified. On error the caller still owns conn.
func Client(conn net.Conn, identity string, key []byte) (*Conn, error) {
	return client(conn, identity, key, 0)
}

// client is Client with an optional highest TLS version (tls.VersionTLS12), for tests.
func client(conn net.Conn, identity string, key []byte, maxVersion uint16) (*Conn, error) {
	if conn == nil || identity == "" || strings.IndexByte(identity, 0) >= 0 || len(key) == 0 {
		return nil, errors.New("psk: Client needs a connection, an identity without NUL bytes and a key")
	}
	cr := clientCtx()
	if cr.err != nil {
		return nil, cr.err
	}
	hs := &handshakeState{clientIdentity: identity, clientKey: append([]byte(nil), key...)}
	defer clear(hs.clientKey)
	return handshake(conn, cr.ctx, false, maxVersion, hs)
}

// sslState owns one connection's SSL object and its two BIOs. mu serializes every OpenSSL
// call on them; it is never held while blocked on the socket. ssl is nil once freed.
type sslState struct {
	mu    sync.Mutex
	ssl   *C.SSL
	rbio  *C.BIO // network -> OpenSSL
	wbio  *C.BIO // OpenSSL -> network
	fatal error  // a fatal TLS error: every later Read and Write returns it
	eof   bool   // close_notify received
}

// free releases the SSL (and with it the BIOs). It is idempotent.
func (st *sslState) free() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ssl != nil {
		C.SSL_free(st.ssl)
		st.ssl, st.rbio, st.wbio = nil, nil, nil
	}
}

// Conn is a TLS-PSK connection over a net.Conn. All socket I/O happens in Go on that
// net.Conn, so its deadlines apply; OpenSSL only sees memory buffers. Read, Write and Close may
// be called from different goroutines.
type Conn struct {
	raw net.Conn
	st  *sslState

	readMu  sync.Mutex // one Read at a time; guards rbuf
	rbuf    []byte
	writeMu sync.Mutex // one Write at a time, so one Write's records are not interleaved
	outMu   sync.Mutex // orders ciphertext on the socket; guards werr
	werr    error      // a failed socket write: the TLS stream is broken, later writes fail

	closed atomic.Bool

	// Fixed after the handshake.
	identity   string
	version    uint16
	cipher     uint16
	serverName string
}

// handshake creates the SSL and drives the handshake until it completes or fails.
func handshake(conn net.Conn, ctx *C.SSL_CTX, server bool, maxVersion uint16, hs *handshakeState) (*Conn, error) {
	h := cgo.NewHandle(hs)
	defer h.Delete()

	var r C.psk_result
	var rbio, wbio *C.BIO
	ssl := C.psk_new_ssl(ctx, C.uintptr_t(h), cbool(server), C.int(maxVersion), &rbio, &wbio, &r)
	if ssl == nil {
		return nil, fmt.Errorf("psk: creating the OpenSSL connection: %s", opensslMsg(&r))
	}
	c := &Conn{raw: conn, st: &sslState{ssl: ssl, rbio: rbio, wbio: wbio}, rbuf: make([]byte, readBufSize)}
	ok := false
	defer func() {
		if !ok {
			c.st.free()
		}
	}()

	for {
		c.st.mu.Lock()
		C.psk_op(ssl, C.PSK_OP_HANDSHAKE, nil, 0, &r)
		c.st.mu.Unlock()
		// Send what OpenSSL produced, a fatal alert included, before looking at the result.
		if err := c.flush(); err != nil {
			switch r.err {
			case C.SSL_ERROR_NONE, C.SSL_ERROR_WANT_READ, C.SSL_ERROR_WANT_WRITE:
				return nil, handshakeError(hs, "", err)
			} // else report OpenSSL's error, which says more
		}
		switch r.err {
		case C.SSL_ERROR_NONE:
		case C.SSL_ERROR_WANT_READ:
			n, err := conn.Read(c.rbuf)
			if n > 0 {
				if ferr := c.feed(c.rbuf[:n]); ferr != nil {
					return nil, handshakeError(hs, "", ferr)
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return nil, handshakeError(hs, "", err)
			}
			continue
		case C.SSL_ERROR_WANT_WRITE:
			continue
		default:
			return nil, handshakeError(hs, opensslMsg(&r), nil)
		}
		break
	}

	var info C.psk_info
	c.st.mu.Lock()
	C.psk_clear_handle(ssl) // the handle dies with this function; no callback may see it
	C.psk_get_info(ssl, &info)
	if sn := C.psk_servername(ssl); sn != nil {
		c.serverName = C.GoString(sn)
	}
	c.st.mu.Unlock()
	c.version, c.cipher, c.identity = uint16(info.version), uint16(info.cipher), hs.identity

	// Belt and braces: the handshake must have used the PSK (a TLS 1.3 handshake without it
	// would be certificate-based, which neither side is configured for).
	if c.identity == "" || (c.version >= tls.VersionTLS13 && info.reused == 0) {
		return nil, handshakeError(hs, "handshake completed without the pre-shared key", nil)
	}
	ok = true
	runtime.AddCleanup(c, func(st *sslState) { st.free() }, c.st)
	return c, nil
}

// handshakeError describes a failed handshake for the caller's log.
func handshakeError(hs *handshakeState, sslMsg string, err error) error {
	var b strings.Builder
	b.WriteString("psk: handshake failed")
	id := hs.tried
	if hs.keys == nil {
		id = hs.clientIdentity
	}
	if id != "" {
		fmt.Fprintf(&b, " (identity %q)", id)
	}
	if sslMsg != "" {
		b.WriteString(": ")
		b.WriteString(sslMsg)
	}
	switch {
	case err != nil && hs.keyErr != nil:
		return fmt.Errorf("%s: %w (key lookup: %w)", b.String(), err, hs.keyErr)
	case err != nil:
		return fmt.Errorf("%s: %w", b.String(), err)
	case hs.keyErr != nil:
		return fmt.Errorf("%s: key lookup: %w", b.String(), hs.keyErr)
	}
	return errors.New(b.String())
}

// opensslMsg is the drained OpenSSL error queue of r, or the SSL_get_error code.
func opensslMsg(r *C.psk_result) string {
	if msg := C.GoString(&r.msg[0]); msg != "" {
		return msg
	}
	switch r.err {
	case C.SSL_ERROR_SYSCALL:
		return "SSL_ERROR_SYSCALL (unexpected end of the TLS stream)"
	case C.SSL_ERROR_ZERO_RETURN:
		return "the peer closed the TLS stream"
	}
	return fmt.Sprintf("SSL_get_error %d", int(r.err))
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// feed hands bytes read from the socket to OpenSSL.
func (c *Conn) feed(b []byte) error {
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	if c.st.ssl == nil {
		return net.ErrClosed
	}
	if n := C.psk_bio_write(c.st.rbio, unsafe.Pointer(&b[0]), C.int(len(b))); int(n) != len(b) {
		return errors.New("psk: buffering received bytes failed (out of memory?)")
	}
	return nil
}

// outBufs holds the buffers ciphertext passes through on its way to the socket; they are
// shared, so an idle connection holds none.
var outBufs = sync.Pool{New: func() any {
	b := make([]byte, writeChunk+4096)
	return &b
}}

// flush sends every byte OpenSSL has produced to the socket, in order.
func (c *Conn) flush() error {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.flushLocked()
}

// flushLocked is flush with outMu held. Draining and sending happen under outMu, so
// ciphertext drained by different goroutines reaches the socket in the order OpenSSL made it.
func (c *Conn) flushLocked() error {
	if c.werr != nil {
		return c.werr
	}
	for {
		c.st.mu.Lock()
		if c.st.ssl == nil {
			c.st.mu.Unlock()
			return net.ErrClosed
		}
		pending := int(C.BIO_ctrl_pending(c.st.wbio))
		if pending == 0 {
			c.st.mu.Unlock()
			return nil
		}
		bp := outBufs.Get().(*[]byte)
		buf := *bp
		n := int(C.BIO_read(c.st.wbio, unsafe.Pointer(&buf[0]), C.int(min(pending, len(buf)))))
		c.st.mu.Unlock()
		var err error
		if n > 0 {
			_, err = c.raw.Write(buf[:n])
		}
		outBufs.Put(bp)
		if n <= 0 {
			return nil
		}
		if err != nil {
			c.werr = err
			return err
		}
	}
}

// Read reads decrypted application data. It returns io.EOF after the peer's close_notify, or
// when the socket ends at a record boundary.
func (c *Conn) Read(b []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if len(b) == 0 {
		return 0, nil
	}
	st := c.st
	var r C.psk_result
	for {
		st.mu.Lock()
		if st.ssl == nil {
			st.mu.Unlock()
			return 0, net.ErrClosed
		}
		if st.fatal != nil || st.eof {
			err := st.fatal
			if err == nil {
				err = io.EOF
			}
			st.mu.Unlock()
			return 0, err
		}
		C.psk_op(st.ssl, C.PSK_OP_READ, unsafe.Pointer(&b[0]), C.size_t(len(b)), &r)
		var err error
		switch r.err {
		case C.SSL_ERROR_NONE, C.SSL_ERROR_WANT_READ, C.SSL_ERROR_WANT_WRITE:
		case C.SSL_ERROR_ZERO_RETURN:
			st.eof = true
			err = io.EOF
		default:
			st.fatal = fmt.Errorf("psk: read: %s", opensslMsg(&r))
			err = st.fatal
		}
		pending := C.BIO_ctrl_pending(st.wbio) > 0
		st.mu.Unlock()

		// Reading can make OpenSSL answer (a TLS 1.3 key update, an alert): send it now.
		if pending {
			if ferr := c.flush(); ferr != nil && err == nil && r.n == 0 {
				return 0, ferr
			}
		}
		if r.n > 0 {
			return int(r.n), nil
		}
		if err != nil {
			return 0, err
		}

		// OpenSSL needs more bytes: read them from the socket without holding st.mu, so that
		// writers and Close go on meanwhile.
		n, rerr := c.raw.Read(c.rbuf)
		if n > 0 {
			if ferr := c.feed(c.rbuf[:n]); ferr != nil {
				return 0, c.closedErr(ferr)
			}
		}
		if rerr != nil {
			if n > 0 {
				// Decrypt what arrived first; the error comes back on the next socket read.
				continue
			}
			return 0, c.readErr(rerr)
		}
	}
}

// readErr maps a socket read error. EOF without close_notify is io.EOF at a record boundary
// (as crypto/tls accepts it) and io.ErrUnexpectedEOF inside a record.
func (c *Conn) readErr(err error) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if !errors.Is(err, io.EOF) {
		return err
	}
	st := c.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ssl == nil {
		return net.ErrClosed
	}
	if C.BIO_ctrl_pending(st.rbio) > 0 || C.SSL_has_pending(st.ssl) == 1 {
		return io.ErrUnexpectedEOF
	}
	return io.EOF
}

func (c *Conn) closedErr(err error) error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	return err
}

// Write encrypts b and sends it. Once a socket write failed (a write deadline, say), the TLS
// stream is broken and every later Write fails too.
func (c *Conn) Write(b []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	st := c.st
	var r C.psk_result
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), writeChunk)]
		st.mu.Lock()
		if st.ssl == nil {
			st.mu.Unlock()
			return written, net.ErrClosed
		}
		if st.fatal != nil {
			err := st.fatal
			st.mu.Unlock()
			return written, err
		}
		C.psk_op(st.ssl, C.PSK_OP_WRITE, unsafe.Pointer(&chunk[0]), C.size_t(len(chunk)), &r)
		var err error
		if r.err != C.SSL_ERROR_NONE || int(r.n) != len(chunk) {
			// Memory BIOs never block, so anything but success is fatal.
			st.fatal = fmt.Errorf("psk: write: %s", opensslMsg(&r))
			err = st.fatal
		}
		st.mu.Unlock()
		if ferr := c.flush(); ferr != nil {
			return written, c.closedErr(ferr)
		}
		if err != nil {
			return written, err
		}
		written += len(chunk)
		b = b[len(chunk):]
	}
	return written, nil
}

// Close sends close_notify (best effort, unless a Write is in flight, at most
// closeNotifyTimeout), closes the underlying connection and frees the OpenSSL state. A blocked
// Read or Write returns net.ErrClosed. Close is idempotent: later calls return net.ErrClosed.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	if c.outMu.TryLock() {
		st := c.st
		send := false
		st.mu.Lock()
		if st.ssl != nil && st.fatal == nil {
			var r C.psk_result
			C.psk_op(st.ssl, C.PSK_OP_SHUTDOWN, nil, 0, &r)
			send = C.BIO_ctrl_pending(st.wbio) > 0
		}
		st.mu.Unlock()
		if send && c.werr == nil {
			_ = c.raw.SetWriteDeadline(time.Now().Add(closeNotifyTimeout))
			_ = c.flushLocked()
		}
		c.outMu.Unlock()
	}
	err := c.raw.Close()
	c.st.free()
	return err
}

// keyUpdate sends a TLS 1.3 KeyUpdate asking the peer to update its keys as well (tests use
// it to exercise OpenSSL answering from inside Read).
func (c *Conn) keyUpdate() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	var r C.psk_result
	c.st.mu.Lock()
	if c.st.ssl == nil {
		c.st.mu.Unlock()
		return net.ErrClosed
	}
	C.psk_key_update(c.st.ssl, &r)
	c.st.mu.Unlock()
	if r.err != C.SSL_ERROR_NONE {
		return fmt.Errorf("psk: key update: %s", opensslMsg(&r))
	}
	return c.flush()
}

// LocalAddr returns the local address of the underlying connection.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr returns the remote address of the underlying connection.
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

// SetDeadline sets the underlying connection's read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.raw.SetDeadline(t) }

// SetReadDeadline sets the underlying connection's read deadline. A timed-out Read can be
// retried.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.raw.SetReadDeadline(t) }

// SetWriteDeadline sets the underlying connection's write deadline. A timed-out Write breaks
// the connection: every later Write fails.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// NetConn returns the underlying connection. Reading or writing it directly corrupts the TLS
// stream.
func (c *Conn) NetConn() net.Conn { return c.raw }

// PSKIdentity returns the PSK identity the handshake used (the client's, on a server).
func (c *Conn) PSKIdentity() string { return c.identity }

// ConnectionState returns what auth code needs from a TLS connection: the version, the
// cipher suite (0 if unknown; tls.CipherSuiteName names PSK suites only by number), the SNI
// server name if the client sent one, and HandshakeComplete. There are never certificates.
func (c *Conn) ConnectionState() tls.ConnectionState {
	return tls.ConnectionState{
		Version:           c.version,
		HandshakeComplete: true,
		CipherSuite:       c.cipher,
		ServerName:        c.serverName,
	}
}
