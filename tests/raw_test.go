package tests

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// rawClient speaks MQTT byte by byte, for what real clients refuse to send (QoS 2 to a server
// without it, oversized packets) and for observing packet order on the wire.
type rawClient struct {
	t       testing.TB
	conn    net.Conn
	r       *bufio.Reader
	version byte
}

// rawPacket is one packet read from the server.
type rawPacket struct {
	typ   byte // upper nibble of the first byte
	flags byte
	body  []byte
}

func mqttString(s string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(s)))
	return append(b, s...)
}

func remainingLength(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

// dialRaw connects and sends CONNECT (clean start, keepalive 30) with username and password; it
// returns after reading the CONNACK and fails the test unless it accepts.
func dialRaw(t testing.TB, addr string, version byte, username, password string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	c := &rawClient{t: t, conn: nc, r: bufio.NewReader(nc), version: version}
	vh := append(mqttString("MQTT"), version, 0x02|0x80|0x40, 0, 30)
	if version == 5 {
		vh = append(vh, 0) // no properties
	}
	payload := append(mqttString("raw-"+username), mqttString(username)...)
	payload = append(payload, mqttString(password)...)
	c.write(0x10, append(vh, payload...))
	p := c.read()
	if p.typ != 2 || len(p.body) < 2 || p.body[1] != 0 {
		t.Fatalf("CONNACK %+v", p)
	}
	return c
}

func (c *rawClient) write(first byte, body []byte) {
	c.t.Helper()
	pkt := append([]byte{first}, remainingLength(len(body))...)
	if _, err := c.conn.Write(append(pkt, body...)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// publish sends a PUBLISH; id is ignored for QoS 0.
func (c *rawClient) publish(topic string, qos byte, id uint16, payload []byte) {
	c.t.Helper()
	body := mqttString(topic)
	if qos > 0 {
		body = binary.BigEndian.AppendUint16(body, id)
	}
	if c.version == 5 {
		body = append(body, 0)
	}
	c.write(0x30|qos<<1, append(body, payload...))
}

// read returns the next packet, failing the test after 10s.
func (c *rawClient) read() rawPacket {
	c.t.Helper()
	p, err := c.tryRead(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return p
}

// tryRead returns the next packet or the read error (io.EOF when the server closed).
func (c *rawClient) tryRead(d time.Duration) (rawPacket, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	b, err := c.r.ReadByte()
	if err != nil {
		return rawPacket{}, err
	}
	n, mult := 0, 1
	for {
		lb, err := c.r.ReadByte()
		if err != nil {
			return rawPacket{}, err
		}
		n += int(lb&0x7f) * mult
		mult *= 128
		if lb&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return rawPacket{}, err
	}
	return rawPacket{typ: b >> 4, flags: b & 0x0f, body: body}, nil
}

// puback decodes a PUBACK: packet id and reason code (0 when absent).
func (p rawPacket) puback() (uint16, byte) {
	if p.typ != 4 || len(p.body) < 2 {
		panic(fmt.Sprintf("not a PUBACK: %+v", p))
	}
	var rc byte
	if len(p.body) > 2 {
		rc = p.body[2]
	}
	return binary.BigEndian.Uint16(p.body), rc
}

// reason returns the reason code of a v5 DISCONNECT.
func (p rawPacket) reason() byte {
	if len(p.body) == 0 {
		return 0
	}
	return p.body[0]
}
