//go:build psk && cgo

package psk

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testIdentity = "dev@app"

var (
	testKey    = []byte{0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x09}
	testKeyHex = hex.EncodeToString(testKey)

	errUnknownIdentity = errors.New("unknown identity")
)

// testKeys serves testKey for testIdentity, counting lookups. It returns a fresh copy each
// time, as KeyFunc's contract asks.
type testKeys struct{ lookups atomic.Int32 }

func (k *testKeys) key(identity string) ([]byte, error) {
	k.lookups.Add(1)
	if identity != testIdentity {
		return nil, errUnknownIdentity
	}
	return bytes.Clone(testKey), nil
}

// requireTool returns the path of an external test client, or skips the test when it is
// missing — unless E2E_REQUIRE_TOOLS=1, which turns a missing tool into a failure.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("E2E_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s is not installed (E2E_REQUIRE_TOOLS=1): %v", name, err)
	}
	t.Skipf("skipping: %s is not installed (Debian package: openssl); set E2E_REQUIRE_TOOLS=1 to fail instead", name)
	return ""
}

// serverResult is what the echo server saw on one connection.
type serverResult struct {
	err      error // handshake or echo error
	state    tls.ConnectionState
	identity string
	line     string
}

// startEchoServer accepts connections on 127.0.0.1, runs Server on each with a 10 s deadline,
// then reads one line and writes it back. Each connection's outcome goes to the channel.
func startEchoServer(t *testing.T, keys KeyFunc) (string, <-chan serverResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan serverResult, 16)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- echoOnce(raw, keys)
			}()
		}
	}()
	return ln.Addr().String(), results
}

func echoOnce(raw net.Conn, keys KeyFunc) serverResult {
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := Server(raw, keys)
	if err != nil {
		_ = raw.Close()
		return serverResult{err: err}
	}
	defer c.Close()
	res := serverResult{state: c.ConnectionState(), identity: c.PSKIdentity()}
	line, err := bufio.NewReader(c).ReadString('\n')
	res.line = line
	if err != nil {
		res.err = err
		return res
	}
	if _, err := c.Write([]byte(line)); err != nil {
		res.err = err
	}
	return res
}

func waitResult(t *testing.T, results <-chan serverResult) serverResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("the server saw no connection within 20 s")
		return serverResult{}
	}
}

// pair connects a Client to a Server over TCP loopback and returns both ends.
func pair(t testing.TB, keys KeyFunc, identity string, key []byte, maxVersion uint16) (srv, cli *Conn, srvErr, cliErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   *Conn
		err error
	}
	done := make(chan res, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- res{err: err}
			return
		}
		_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
		c, err := Server(raw, keys)
		if err != nil {
			_ = raw.Close()
		} else {
			_ = raw.SetDeadline(time.Time{})
		}
		done <- res{c, err}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	cli, cliErr = client(raw, identity, key, maxVersion)
	if cliErr != nil {
		_ = raw.Close()
	} else {
		_ = raw.SetDeadline(time.Time{})
	}
	r := <-done
	return r.c, cli, r.err, cliErr
}

// mustPair is pair for tests that need a working connection; both ends are closed at cleanup.
func mustPair(t testing.TB, maxVersion uint16) (srv, cli *Conn) {
	t.Helper()
	k := &testKeys{}
	srv, cli, serr, cerr := pair(t, k.key, testIdentity, testKey, maxVersion)
	if serr != nil || cerr != nil {
		t.Fatalf("handshake: server %v, client %v", serr, cerr)
	}
	t.Cleanup(func() {
		_ = srv.Close()
		_ = cli.Close()
	})
	return srv, cli
}
