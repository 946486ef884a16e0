package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The MQTT packet types the load clients send or read (MQTT 3.1.1 §2.2.1, MQTT 5 §2.1.2).
const (
	typeConnect    = 1
	typeConnack    = 2
	typePublish    = 3
	typePuback     = 4
	typeSubscribe  = 8
	typeSuback     = 9
	typePingreq    = 12
	typePingresp   = 13
	typeDisconnect = 14
)

// maxPacket bounds the packets a load client reads; the endpoint never sends more than 256 KiB.
const maxPacket = 1 << 20

var (
	errMalformed = errors.New("malformed packet")
	pingreq      = []byte{typePingreq << 4, 0}
	disconnect   = []byte{typeDisconnect << 4, 0} // v5: no reason code means 0x00 normal disconnection
)

// appendVarint appends the MQTT variable byte integer n (§1.5.5 / §2.2.3).
func appendVarint(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// varintLen is the number of bytes appendVarint writes for n.
func varintLen(n int) int {
	l := 1
	for n >= 128 {
		n /= 128
		l++
	}
	return l
}

// appendString appends a two-byte length and s.
func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// connectOptions is what a CONNECT packet says.
type connectOptions struct {
	Version        byte // 4 (MQTT 3.1.1) or 5
	ClientID       string
	Username       string
	Password       []byte
	Keepalive      uint16 // seconds
	ReceiveMaximum uint16 // v5: commands in flight towards the client; 0 omits it (65535)
}

// encodeConnect returns a CONNECT with clean session / clean start (the endpoint requires it).
func encodeConnect(o connectOptions) []byte {
	var props []byte
	if o.Version == 5 && o.ReceiveMaximum > 0 {
		props = append(props, 0x21)
		props = binary.BigEndian.AppendUint16(props, o.ReceiveMaximum)
	}
	flags := byte(0x02) // clean session / clean start
	if o.Username != "" {
		flags |= 0x80
	}
	if o.Password != nil {
		flags |= 0x40
	}
	n := 10 + 2 + len(o.ClientID) // protocol name, level, flags, keep-alive; client id
	if o.Version == 5 {
		n += varintLen(len(props)) + len(props)
	}
	if o.Username != "" {
		n += 2 + len(o.Username)
	}
	if o.Password != nil {
		n += 2 + len(o.Password)
	}
	b := make([]byte, 0, 1+varintLen(n)+n)
	b = append(b, typeConnect<<4)
	b = appendVarint(b, n)
	b = appendString(b, "MQTT")
	b = append(b, o.Version, flags)
	b = binary.BigEndian.AppendUint16(b, o.Keepalive)
	if o.Version == 5 {
		b = appendVarint(b, len(props))
		b = append(b, props...)
	}
	b = appendString(b, o.ClientID)
	if o.Username != "" {
		b = appendString(b, o.Username)
	}
	if o.Password != nil {
		b = appendBytes(b, o.Password)
	}
	return b
}

// appendPublish appends a PUBLISH; id is ignored at QoS 0.
func appendPublish(b []byte, version byte, topic string, qos byte, id uint16, payload []byte) []byte {
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	if version == 5 {
		n++ // empty property list
	}
	b = append(b, typePublish<<4|qos<<1)
	b = appendVarint(b, n)
	b = appendString(b, topic)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	if version == 5 {
		b = append(b, 0)
	}
	return append(b, payload...)
}

// appendPuback appends a PUBACK of id: success on both versions (v5 §3.4.2.1 allows leaving the
// reason code out when it is 0x00 and there are no properties).
func appendPuback(b []byte, id uint16) []byte {
	b = append(b, typePuback<<4, 2)
	return binary.BigEndian.AppendUint16(b, id)
}

// encodeSubscribe returns a SUBSCRIBE of one filter.
func encodeSubscribe(version byte, id uint16, filter string, qos byte) []byte {
	n := 2 + 2 + len(filter) + 1
	if version == 5 {
		n++
	}
	b := make([]byte, 0, 2+n)
	b = append(b, typeSubscribe<<4|0x02)
	b = appendVarint(b, n)
	b = binary.BigEndian.AppendUint16(b, id)
	if version == 5 {
		b = append(b, 0)
	}
	b = appendString(b, filter)
	return append(b, qos)
}

// packet is a decoded packet from the server. Topic and Payload alias the read buffer: they are
// valid until the next read.
type packet struct {
	Type           byte
	QoS            byte
	ID             uint16
	Code           byte // CONNACK return/reason code, PUBACK/DISCONNECT reason code, first SUBACK code
	SessionPresent bool
	ReceiveMaximum uint16 // CONNACK v5; 0 when absent
	Keepalive      uint16 // CONNACK v5 Server Keep Alive; 0 when absent
	Topic          []byte
	Payload        []byte
}

// readPacket reads one packet into buf (grown as needed) and returns its first byte and body.
func readPacket(r *bufio.Reader, buf []byte) (byte, []byte, []byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, nil, buf, err
	}
	n, mult := 0, 1
	for i := 0; ; i++ {
		d, err := r.ReadByte()
		if err != nil {
			return 0, nil, buf, err
		}
		n += int(d&0x7f) * mult
		if d&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, buf, fmt.Errorf("%w: remaining length over 4 bytes", errMalformed)
		}
		mult *= 128
	}
	if n > maxPacket {
		return 0, nil, buf, fmt.Errorf("%w: %d bytes", errMalformed, n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	body := buf[:n]
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, buf, err
	}
	return first, body, buf, nil
}

// parsePacket decodes the packets a load client cares about; others come back with only Type.
func parsePacket(version byte, first byte, body []byte) (packet, error) {
	p := packet{Type: first >> 4}
	bad := func(what string) (packet, error) {
		return p, fmt.Errorf("%w: type %d: %s", errMalformed, p.Type, what)
	}
	switch p.Type {
	case typeConnack:
		if len(body) < 2 {
			return bad("short")
		}
		p.SessionPresent = body[0]&1 == 1
		p.Code = body[1]
		if version == 5 && len(body) > 2 {
			props, _, err := readProperties(body[2:])
			if err != nil {
				return bad(err.Error())
			}
			if err := walkProperties(props, func(id byte, v []byte) {
				switch id {
				case 0x21:
					p.ReceiveMaximum = binary.BigEndian.Uint16(v)
				case 0x13:
					p.Keepalive = binary.BigEndian.Uint16(v)
				}
			}); err != nil {
				return bad(err.Error())
			}
		}
	case typePuback:
		if len(body) < 2 {
			return bad("short")
		}
		p.ID = binary.BigEndian.Uint16(body)
		if len(body) > 2 {
			p.Code = body[2]
		}
	case typeSuback:
		if len(body) < 3 {
			return bad("short")
		}
		p.ID = binary.BigEndian.Uint16(body)
		rest := body[2:]
		if version == 5 {
			_, after, err := readProperties(rest)
			if err != nil {
				return bad(err.Error())
			}
			rest = after
		}
		if len(rest) == 0 {
			return bad("no return code")
		}
		p.Code = rest[0]
	case typePublish:
		p.QoS = (first >> 1) & 3
		if len(body) < 2 {
			return bad("short")
		}
		tl := int(binary.BigEndian.Uint16(body))
		if len(body) < 2+tl {
			return bad("topic")
		}
		p.Topic = body[2 : 2+tl]
		rest := body[2+tl:]
		if p.QoS > 0 {
			if len(rest) < 2 {
				return bad("packet id")
			}
			p.ID = binary.BigEndian.Uint16(rest)
			rest = rest[2:]
		}
		if version == 5 {
			_, after, err := readProperties(rest)
			if err != nil {
				return bad(err.Error())
			}
			rest = after
		}
		p.Payload = rest
	case typeDisconnect:
		if len(body) > 0 {
			p.Code = body[0]
		}
	}
	return p, nil
}

// readProperties splits a v5 property list (length prefix included) from what follows it.
func readProperties(b []byte) (props, rest []byte, err error) {
	n, mult, i := 0, 1, 0
	for ; ; i++ {
		if i >= len(b) || i == 4 {
			return nil, nil, errors.New("property length")
		}
		n += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			break
		}
		mult *= 128
	}
	b = b[i+1:]
	if n > len(b) {
		return nil, nil, errors.New("property list longer than the packet")
	}
	return b[:n], b[n:], nil
}

// walkProperties calls fn with each property's identifier and raw value.
func walkProperties(b []byte, fn func(id byte, v []byte)) error {
	for len(b) > 0 {
		id := b[0]
		b = b[1:]
		var n int
		switch id {
		case 0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A: // byte
			n = 1
		case 0x13, 0x21, 0x22, 0x23: // two-byte integer
			n = 2
		case 0x02, 0x11, 0x18, 0x27: // four-byte integer
			n = 4
		case 0x0B: // variable byte integer
			n = 1
			for n <= len(b) && b[n-1]&0x80 != 0 {
				n++
			}
		case 0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F: // string or binary data
			if len(b) < 2 {
				return errors.New("property value")
			}
			n = 2 + int(binary.BigEndian.Uint16(b))
		case 0x26: // string pair
			if len(b) < 2 {
				return errors.New("property value")
			}
			k := 2 + int(binary.BigEndian.Uint16(b))
			if len(b) < k+2 {
				return errors.New("property value")
			}
			n = k + 2 + int(binary.BigEndian.Uint16(b[k:]))
		default:
			return fmt.Errorf("unknown property 0x%02x", id)
		}
		if n > len(b) {
			return errors.New("property value")
		}
		fn(id, b[:n])
		b = b[n:]
	}
	return nil
}
