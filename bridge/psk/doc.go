// Package psk terminates TLS-PSK connections: TLS 1.2 PSK cipher suites (RFC 4279/5487/5489,
// CCM, ChaCha20) and TLS 1.3 external pre-shared keys, as spoken by mosquitto, OpenSSL, mbedTLS
// and Zephyr devices. Go's crypto/tls has neither, so this package wraps OpenSSL through cgo.
//
// # Builds
//
// The OpenSSL code is only compiled with the build tag psk and cgo enabled
// (//go:build psk && cgo). Every other build — the default one, CGO_ENABLED=0 included — gets a
// stub: Available reports false and Server fails with an error wrapping errors.ErrUnsupported,
// and nothing links OpenSSL.
//
//	go build ./...                                  # pure Go, no TLS-PSK
//	CGO_ENABLED=1 go build -tags psk ./...          # TLS-PSK, links libssl/libcrypto dynamically
//
// The psk build needs a C compiler and the OpenSSL 1.1.1+ headers and libraries (Debian:
// gcc and libssl-dev). For a distroless/static image (such as cgr.dev/chainguard/static) link
// everything statically; Debian's libssl-dev ships libssl.a and libcrypto.a:
//
//	CGO_ENABLED=1 go build -tags psk -ldflags '-linkmode external -extldflags "-static"' ./cmd/mqtt-endpoint
//
// Better, add the netgo and osusergo tags (-tags psk,netgo,osusergo): a cgo build otherwise
// links glibc's getaddrinfo, and static glibc's name service switch would need glibc's shared
// NSS modules at run time. The linker still warns about dlopen, getaddrinfo and gethostbyname
// inside libcrypto.a (DSO loading, BIO_lookup); this package calls none of them. Both variants
// were checked: `file` reports "statically linked", and the binary alone in an empty chroot
// serves TLS 1.2 and TLS 1.3 PSK handshakes from openssl s_client. OpenSSL reads
// /usr/lib/ssl/openssl.cnf if it exists and works without it. With ko: env CGO_ENABLED=1,
// flags -tags=psk,netgo,osusergo, ldflags -linkmode external and -extldflags "-static".
//
// # Design
//
// One SSL_CTX per side is created on first use and shared; each connection gets its own SSL
// with two memory BIOs. All socket I/O happens in Go on the net.Conn: OpenSSL only ever sees
// memory, never blocks and shares no file descriptor, so the net.Conn's deadlines bound the
// handshake and every Read and Write. When OpenSSL wants to read, Go reads the socket (without
// holding any lock OpenSSL calls need) and feeds the bytes in; whatever OpenSSL writes is
// drained to the socket in order. One mutex per connection serializes the OpenSSL calls, so a
// reading goroutine and writing goroutines can share a Conn, and Close can interrupt a blocked
// Read.
//
// The key lookup is a Go callback (KeyFunc) called from OpenSSL's PSK callbacks through a
// runtime/cgo.Handle stored as the SSL's app data for the duration of the handshake:
// SSL_CTX_set_psk_server_callback for TLS 1.2 and SSL_CTX_set_psk_find_session_callback for
// TLS 1.3, which builds an SSL_SESSION holding the key. The key is zeroed after it was copied
// into OpenSSL. Session tickets, the session cache and renegotiation are off, so every
// connection runs the lookup again (a revoked key does not survive in a ticket).
//
// A failed handshake returns an error with OpenSSL's error string (from ERR_error_string_n) and
// the identity, wrapping the KeyFunc's error if there was one. Server leaves conn open on
// error; the caller closes it.
package psk
