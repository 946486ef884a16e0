//go:build psk && cgo

package psk

// This file holds the Go functions that OpenSSL's PSK callbacks (C, in openssl.go) call during a
// handshake. A file with //export may only declare in its preamble, so the C lives elsewhere.

/*
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/cgo"
	"unsafe"
)

// handshakeState is what the callbacks of one handshake see, through a cgo.Handle that
// openssl.go stores as the SSL's app data. It is only touched by the goroutine running the
// handshake (the callbacks run inside its SSL_do_handshake call).
type handshakeState struct {
	keys KeyFunc // server side

	clientIdentity string // client side
	clientKey      []byte // client side, our own copy, zeroed after the handshake

	identity string // identity whose key was handed to OpenSSL (server: the last successful lookup)
	tried    string // last identity asked about, for error messages
	lookups  int    // KeyFunc calls
	keyErr   error  // why the last lookup failed
}

// stateOf returns the handshake state behind a handle, or nil for a zero or stale handle.
func stateOf(h C.uintptr_t) (hs *handshakeState) {
	if h == 0 {
		return nil
	}
	defer func() {
		if recover() != nil { // a deleted handle: cannot happen, but never panic through C
			hs = nil
		}
	}()
	hs, _ = cgo.Handle(h).Value().(*handshakeState)
	return hs
}

// pskGoServerKey looks up the key of a client's identity with the KeyFunc and copies it into
// out (OpenSSL memory, outMax bytes). It returns the key length, or 0 to refuse the identity.
//
//export pskGoServerKey
func pskGoServerKey(h C.uintptr_t, identity *C.char, identityLen C.size_t, out *C.uchar, outMax C.size_t) C.int {
	hs := stateOf(h)
	if hs == nil || hs.keys == nil || out == nil {
		return 0
	}
	if identityLen > C.PSK_MAX_IDENTITY_LEN {
		hs.tried = ""
		hs.keyErr = fmt.Errorf("identity too long (%d bytes)", int(identityLen))
		return 0
	}
	id := C.GoStringN(identity, C.int(identityLen))
	hs.tried = id
	if id == "" || bytes.IndexByte([]byte(id), 0) >= 0 {
		hs.keyErr = errors.New("empty identity or identity with a NUL byte")
		return 0
	}
	hs.lookups++
	key, err := lookup(hs.keys, id)
	defer clear(key)
	switch {
	case err != nil:
		hs.keyErr = err
		return 0
	case len(key) == 0:
		hs.keyErr = errors.New("empty key")
		return 0
	case len(key) > int(outMax):
		hs.keyErr = fmt.Errorf("key too long (%d bytes, at most %d)", len(key), int(outMax))
		return 0
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(out)), int(outMax)), key)
	hs.identity = id
	hs.keyErr = nil
	return C.int(len(key))
}

// lookup calls keys and turns a panic into an error: a panic must not unwind through C.
func lookup(keys KeyFunc, identity string) (key []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			key, err = nil, fmt.Errorf("key lookup panicked: %v", p)
		}
	}()
	return keys(identity)
}

// pskGoClientKey writes the client's identity (NUL-terminated, into identityMax bytes) and key
// (into outMax bytes) for OpenSSL. It returns the key length, or 0 to abort the handshake.
//
//export pskGoClientKey
func pskGoClientKey(h C.uintptr_t, identity *C.char, identityMax C.size_t, out *C.uchar, outMax C.size_t) C.int {
	hs := stateOf(h)
	if hs == nil || identity == nil || out == nil {
		return 0
	}
	if len(hs.clientIdentity)+1 > int(identityMax) || len(hs.clientKey) > int(outMax) || len(hs.clientKey) == 0 {
		hs.keyErr = errors.New("identity or key too long for OpenSSL, or empty key")
		return 0
	}
	dst := unsafe.Slice((*byte)(unsafe.Pointer(identity)), int(identityMax))
	n := copy(dst, hs.clientIdentity)
	dst[n] = 0
	copy(unsafe.Slice((*byte)(unsafe.Pointer(out)), int(outMax)), hs.clientKey)
	hs.identity = hs.clientIdentity
	return C.int(len(hs.clientKey))
}
