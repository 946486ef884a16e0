package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestVarint(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "00"}, {127, "7f"}, {128, "8001"}, {16383, "ff7f"}, {16384, "808001"},
		{2097151, "ffff7f"}, {2097152, "80808001"}, {268435455, "ffffff7f"},
	} {
		got := hex.EncodeToString(appendVarint(nil, tc.n))
		if got != tc.want {
			t.Errorf("appendVarint(%d) = %s, want %s", tc.n, got, tc.want)
		}
		if l := varintLen(tc.n); l != len(tc.want)/2 {
			t.Errorf("varintLen(%d) = %d, want %d", tc.n, l, len(tc.want)/2)
		}
	}
}

func TestEncode(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"connect v3.1.1", encodeConnect(connectOptions{Version: 4, ClientID: "c", Username: "d@a", Password: []byte("pw"), Keepalive: 60}),
			"10" + "16" + "00044d515454" + "04" + "c2" + "003c" + "000163" + "0003644061" + "00027077"},
		{"connect v5 receive maximum", encodeConnect(connectOptions{Version: 5, ClientID: "c", Keepalive: 30, ReceiveMaximum: 16}),
			"10" + "11" + "00044d515454" + "05" + "02" + "001e" + "03" + "210010" + "000163"},
		{"connect v5 no properties", encodeConnect(connectOptions{Version: 5, ClientID: ""}),
			"10" + "0d" + "00044d515454" + "05" + "02" + "0000" + "00" + "0000"},
		{"publish v3 qos0", appendPublish(nil, 4, "t", 0, 7, []byte("hi")),
			"30" + "05" + "000174" + "6869"},
		{"publish v3 qos1", appendPublish(nil, 4, "t", 1, 0x0102, []byte("hi")),
			"32" + "07" + "000174" + "0102" + "6869"},
		{"publish v5 qos1", appendPublish(nil, 5, "ab", 1, 1, nil),
			"32" + "07" + "00026162" + "0001" + "00"},
		{"puback", appendPuback(nil, 0xbeef), "4002beef"},
		{"subscribe v3", encodeSubscribe(4, 1, "c/#", 1),
			"82" + "08" + "0001" + "0003632f23" + "01"},
		{"subscribe v5", encodeSubscribe(5, 2, "c/#", 0),
			"82" + "09" + "0002" + "00" + "0003632f23" + "00"},
	} {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestLongPublishLength(t *testing.T) {
	payload := bytes.Repeat([]byte{'x'}, 300)
	b := appendPublish(nil, 5, "telemetry", 1, 1, payload)
	first, body, _, err := readPacket(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePacket(5, first, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Topic) != "telemetry" || p.QoS != 1 || p.ID != 1 || !bytes.Equal(p.Payload, payload) {
		t.Errorf("round trip: %+v", p)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version byte
		in      string
		want    packet
		err     bool
	}{
		{"connack v3 accepted", 4, "20020000", packet{Type: typeConnack}, false},
		{"connack v3 refused", 4, "20020104", packet{Type: typeConnack, SessionPresent: true, Code: 4}, false},
		{"connack v5 properties", 5, "200b0000" + "08" + "210020" + "130078" + "2501",
			packet{Type: typeConnack, ReceiveMaximum: 32, Keepalive: 120}, false},
		{"connack v5 reason string", 5, "200a0086" + "07" + "1f0004" + "6e6f7065", packet{Type: typeConnack, Code: 0x86}, false},
		{"connack v5 user property", 5, "200a0000" + "07" + "26" + "000161" + "000162", packet{Type: typeConnack}, false},
		{"connack v5 property list too long", 5, "20040000" + "0521", packet{}, true},
		{"connack v5 unknown property", 5, "20050000" + "02" + "7f00", packet{}, true},
		{"puback v3", 4, "40020005", packet{Type: typePuback, ID: 5}, false},
		{"puback v5 success short", 5, "40020005", packet{Type: typePuback, ID: 5}, false},
		{"puback v5 refused", 5, "400300068" + "9", packet{Type: typePuback, ID: 6, Code: 0x89}, false},
		{"puback v5 refused with reason", 5, "40080007" + "97" + "04" + "1f000178", packet{Type: typePuback, ID: 7, Code: 0x97}, false},
		{"suback v3", 4, "9003000101", packet{Type: typeSuback, ID: 1, Code: 1}, false},
		{"suback v5", 5, "900400010087", packet{Type: typeSuback, ID: 1, Code: 0x87}, false},
		{"suback v5 no code", 5, "9003000100", packet{}, true},
		{"publish v5 qos1 content type", 5, "3211" + "0003612f62" + "0009" + "07" + "03000474657874" + "6869",
			packet{Type: typePublish, QoS: 1, ID: 9, Topic: []byte("a/b"), Payload: []byte("hi")}, false},
		{"publish v5 qos0", 5, "3008" + "0003612f62" + "00" + "6869", packet{Type: typePublish, Topic: []byte("a/b"), Payload: []byte("hi")}, false},
		{"publish v3 qos1", 4, "3209" + "0003612f62" + "0002" + "6869", packet{Type: typePublish, QoS: 1, ID: 2, Topic: []byte("a/b"), Payload: []byte("hi")}, false},
		{"disconnect v5", 5, "e0018e", packet{Type: typeDisconnect, Code: 0x8e}, false},
		{"pingresp", 4, "d000", packet{Type: typePingresp}, false},
		{"short puback", 5, "400100", packet{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := hex.DecodeString(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			first, body, _, err := readPacket(bufio.NewReader(bytes.NewReader(raw)), nil)
			if err != nil {
				if !tc.err {
					t.Fatal(err)
				}
				return
			}
			p, err := parsePacket(tc.version, first, body)
			if tc.err {
				if err == nil {
					t.Errorf("no error for %s: %+v", tc.in, p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Type != tc.want.Type || p.QoS != tc.want.QoS || p.ID != tc.want.ID || p.Code != tc.want.Code ||
				p.SessionPresent != tc.want.SessionPresent || p.ReceiveMaximum != tc.want.ReceiveMaximum ||
				p.Keepalive != tc.want.Keepalive || !bytes.Equal(p.Topic, tc.want.Topic) || !bytes.Equal(p.Payload, tc.want.Payload) {
				t.Errorf("got %+v\nwant %+v", p, tc.want)
			}
		})
	}
}

func TestReadPacketMalformed(t *testing.T) {
	for _, in := range []string{
		"30ffffffff01", // remaining length of five bytes
		"30ffffff7f",   // 268 MB: over maxPacket
	} {
		raw, _ := hex.DecodeString(in)
		_, _, _, err := readPacket(bufio.NewReader(bytes.NewReader(raw)), nil)
		if !errors.Is(err, errMalformed) {
			t.Errorf("%s: err = %v, want errMalformed", in, err)
		}
	}
	raw, _ := hex.DecodeString("3005000174") // body shorter than announced
	if _, _, _, err := readPacket(bufio.NewReader(bytes.NewReader(raw)), nil); err == nil {
		t.Error("truncated packet: no error")
	}
}
