//go:build psk && cgo

package psk

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAvailable(t *testing.T) {
	if !Available() {
		t.Fatal("Available() = false with -tags psk and cgo")
	}
}

func TestGoClientRoundTrip(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			srv, cli := mustPair(t, v)
			for _, c := range []*Conn{srv, cli} {
				st := c.ConnectionState()
				if st.Version != v || !st.HandshakeComplete || st.CipherSuite == 0 {
					t.Errorf("ConnectionState = %+v", st)
				}
				if c.PSKIdentity() != testIdentity {
					t.Errorf("PSKIdentity = %q", c.PSKIdentity())
				}
			}
			if srv.LocalAddr().String() != cli.RemoteAddr().String() || srv.NetConn() == nil {
				t.Errorf("addresses: server local %v, client remote %v", srv.LocalAddr(), cli.RemoteAddr())
			}
			if _, err := cli.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			n, err := io.ReadAtLeast(srv, buf, 4)
			if err != nil || string(buf[:n]) != "ping" {
				t.Fatalf("server read %q, %v", buf[:n], err)
			}
			if _, err := srv.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			n, err = io.ReadAtLeast(cli, buf, 4)
			if err != nil || string(buf[:n]) != "pong" {
				t.Fatalf("client read %q, %v", buf[:n], err)
			}
		})
	}
}

func TestGoClientRefused(t *testing.T) {
	k := &testKeys{}
	t.Run("wrong key", func(t *testing.T) {
		srv, cli, serr, cerr := pair(t, k.key, testIdentity, bytes.Repeat([]byte{7}, 16), 0)
		if srv != nil || cli != nil || serr == nil || cerr == nil {
			t.Fatalf("server %v, client %v", serr, cerr)
		}
		t.Logf("server: %v; client: %v", serr, cerr)
	})
	t.Run("unknown identity", func(t *testing.T) {
		_, _, serr, cerr := pair(t, k.key, "ghost@app", testKey, tls.VersionTLS12)
		if !errors.Is(serr, errUnknownIdentity) || cerr == nil {
			t.Fatalf("server %v, client %v", serr, cerr)
		}
	})
	t.Run("KeyFunc panics", func(t *testing.T) {
		panicky := func(string) ([]byte, error) { panic("boom") }
		_, _, serr, cerr := pair(t, panicky, testIdentity, testKey, 0)
		if serr == nil || !strings.Contains(serr.Error(), "panicked: boom") || cerr == nil {
			t.Fatalf("server %v, client %v", serr, cerr)
		}
	})
	t.Run("key too long", func(t *testing.T) {
		long := func(string) ([]byte, error) { return make([]byte, 4096), nil }
		_, _, serr, _ := pair(t, long, testIdentity, testKey, 0)
		if serr == nil || !strings.Contains(serr.Error(), "key too long") {
			t.Fatalf("server %v", serr)
		}
	})
	t.Run("empty key", func(t *testing.T) {
		empty := func(string) ([]byte, error) { return nil, nil }
		_, _, serr, _ := pair(t, empty, testIdentity, testKey, tls.VersionTLS12)
		if serr == nil || !strings.Contains(serr.Error(), "empty key") {
			t.Fatalf("server %v", serr)
		}
	})
}

func TestKeyIsZeroed(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		var handed []byte
		keys := func(string) ([]byte, error) {
			handed = bytes.Clone(testKey)
			return handed, nil
		}
		srv, cli, serr, cerr := pair(t, keys, testIdentity, testKey, v)
		if serr != nil || cerr != nil {
			t.Fatalf("%s: server %v, client %v", tls.VersionName(v), serr, cerr)
		}
		srv.Close()
		cli.Close()
		if !bytes.Equal(handed, make([]byte, len(testKey))) {
			t.Errorf("%s: the key slice was not zeroed: %x", tls.VersionName(v), handed)
		}
	}
	if bytes.Equal(testKey, make([]byte, len(testKey))) {
		t.Fatal("Client zeroed the caller's key")
	}
}

func TestHandshakeDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	raw, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(200 * time.Millisecond))
	start := time.Now()
	_, err = Server(raw, (&testKeys{}).key)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Server = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Server returned after %v", d)
	}
}

func TestHandshakeGarbage(t *testing.T) {
	for _, junk := range []string{"GET / HTTP/1.0\r\n\r\n", "\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04test", "\x16\x03\x01\x00"} {
		a, b := net.Pipe()
		go func() {
			_, _ = b.Write([]byte(junk))
			_ = b.Close()
		}()
		_ = a.SetDeadline(time.Now().Add(5 * time.Second))
		c, err := Server(a, (&testKeys{}).key)
		if c != nil || err == nil {
			t.Fatalf("Server accepted %q", junk)
		}
		t.Logf("%q: %v", junk, err)
		a.Close()
	}
}

func TestCloseNotify(t *testing.T) {
	srv, cli := mustPair(t, 0)
	if _, err := cli.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(srv) // ReadAll stops at io.EOF
	if err != nil || string(got) != "last words" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if _, err := srv.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read after close_notify = %v, want io.EOF", err)
	}
	// Half-closed: the server may still write; the client is gone, so this may fail, but it
	// must not panic or hang.
	_, _ = srv.Write([]byte("x"))
}

func TestEOFWithoutCloseNotify(t *testing.T) {
	srv, cli := mustPair(t, 0)
	_ = cli.NetConn().Close() // TCP FIN, no close_notify
	if _, err := srv.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read = %v, want io.EOF (clean EOF at a record boundary)", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	srv, _ := mustPair(t, 0)
	if err := srv.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	for range 3 {
		if err := srv.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Close again = %v, want net.ErrClosed", err)
		}
	}
	if _, err := srv.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if _, err := srv.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v", err)
	}
	if srv.PSKIdentity() != testIdentity || srv.ConnectionState().Version == 0 {
		t.Error("identity and state must survive Close")
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	srv, _ := mustPair(t, 0)
	done := make(chan error, 1)
	go func() {
		_, err := srv.Read(make([]byte, 64))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // let Read block on the socket
	start := time.Now()
	_ = srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Read returned %v, want net.ErrClosed", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Read returned %v after Close", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
}

func TestCloseUnblocksWrite(t *testing.T) {
	srv, _ := mustPair(t, 0) // the client never reads: the socket buffers fill up
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 256*1024)
		for {
			if _, err := srv.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	_ = srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Write returned %v, want net.ErrClosed", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Close took %v with a blocked Write", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not unblock Write")
	}
}

func TestReadDeadline(t *testing.T) {
	srv, cli := mustPair(t, 0)
	_ = srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := srv.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v, want a timeout", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%v is not a net.Error timeout", err)
	}
	// A read timeout is not fatal.
	_ = srv.SetReadDeadline(time.Time{})
	if _, err := cli.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	n, err := io.ReadAtLeast(srv, buf, 5)
	if err != nil || string(buf[:n]) != "after" {
		t.Fatalf("Read after timeout = %q, %v", buf[:n], err)
	}
}

// TestKeyUpdate has the client request a TLS 1.3 key update: the server's Read must process
// it and OpenSSL's answering KeyUpdate must reach the client, in both directions' order.
func TestKeyUpdate(t *testing.T) {
	srv, cli := mustPair(t, tls.VersionTLS13)
	buf := make([]byte, 64)
	for i := range 3 {
		if err := cli.keyUpdate(); err != nil {
			t.Fatal(err)
		}
		msg := "after key update " + strconv.Itoa(i)
		if _, err := cli.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		n, err := io.ReadAtLeast(srv, buf, len(msg))
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("server read %q, %v", buf[:n], err)
		}
		if _, err := srv.Write([]byte("ack")); err != nil {
			t.Fatal(err)
		}
		n, err = io.ReadAtLeast(cli, buf, 3)
		if err != nil || string(buf[:n]) != "ack" {
			t.Fatalf("client read %q, %v", buf[:n], err)
		}
		if err := srv.keyUpdate(); err != nil { // and the other way round
			t.Fatal(err)
		}
		if _, err := srv.Write([]byte("srv")); err != nil {
			t.Fatal(err)
		}
		n, err = io.ReadAtLeast(cli, buf, 3)
		if err != nil || string(buf[:n]) != "srv" {
			t.Fatalf("client read %q, %v", buf[:n], err)
		}
	}
}

// TestFullDuplex sends 1 MiB each way at once: on each side one goroutine reads while another
// writes, as mochi does (a read loop plus writers).
func TestFullDuplex(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			srv, cli := mustPair(t, v)
			const size = 1 << 20
			up, down := make([]byte, size), make([]byte, size)
			_, _ = rand.Read(up)
			_, _ = rand.Read(down)
			for _, c := range []*Conn{srv, cli} {
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			write := func(c *Conn, data []byte) {
				defer wg.Done()
				// Uneven pieces, so records and reads do not line up.
				for off, i := 0, 0; off < len(data); i++ {
					n := min(len(data)-off, 1+(i*7919)%70000)
					if _, err := c.Write(data[off : off+n]); err != nil {
						errs <- err
						return
					}
					off += n
				}
			}
			read := func(c *Conn, want []byte) {
				defer wg.Done()
				got := make([]byte, len(want))
				if _, err := io.ReadFull(c, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, want) {
					errs <- errors.New("received data differs")
				}
			}
			wg.Add(4)
			go write(cli, up)
			go read(srv, up)
			go write(srv, down)
			go read(cli, down)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

// TestConcurrentWritersAndClose has several writers, a reader and a Close racing, for the race
// detector and to show nothing panics or deadlocks.
func TestConcurrentWritersAndClose(t *testing.T) {
	for round := range 20 {
		srv, cli := mustPair(t, 0)
		go func() { _, _ = io.Copy(io.Discard, cli) }()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				msg := []byte(strings.Repeat(strconv.Itoa(w), 100+w*1000))
				for {
					if _, err := srv.Write(msg); err != nil {
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = srv.Read(make([]byte, 10))
		}()
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		_ = srv.Close()
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(5 * time.Second):
			t.Fatal("writers or reader still blocked 5 s after Close")
		}
		_ = cli.Close()
	}
}

// TestHandshakeLoopMemory runs 2000 handshakes and checks that the resident set stays flat: a
// leaked SSL, BIO or session would add several KiB each.
func TestHandshakeLoopMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const warmup, rounds = 200, 2000
	k := &testKeys{}
	one := func(i int) {
		v := uint16(tls.VersionTLS13)
		if i%2 == 1 {
			v = tls.VersionTLS12
		}
		identity, key := testIdentity, testKey
		if i%5 == 4 { // some failures too
			identity = "ghost@app"
		}
		srv, cli, serr, cerr := pair(t, k.key, identity, key, v)
		if identity == testIdentity && (serr != nil || cerr != nil) {
			t.Fatalf("round %d: server %v, client %v", i, serr, cerr)
		}
		if srv != nil {
			if _, err := cli.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			srv.Close()
			cli.Close()
		}
	}
	for i := range warmup {
		one(i)
	}
	before := rssKiB(t)
	for i := range rounds {
		one(i)
	}
	runtime.GC()
	after := rssKiB(t)
	t.Logf("RSS after %d warm-up handshakes: %d KiB; after %d more: %d KiB (%+d KiB)",
		warmup, before, rounds, after, after-before)
	// A leaked SSL costs about 60 KiB (120 MiB here); the race detector alone adds a few MiB.
	limit := 8 * 1024
	if raceEnabled {
		limit = 24 * 1024
	}
	if after-before > limit {
		t.Errorf("RSS grew by %d KiB over %d handshakes (limit %d KiB)", after-before, rounds, limit)
	}
}

func rssKiB(t *testing.T) int {
	t.Helper()
	runtime.GC()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("VmRSS not found")
	return 0
}
