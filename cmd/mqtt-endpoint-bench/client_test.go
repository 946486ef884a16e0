package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeBroker answers CONNECT with CONNACK (Receive Maximum 7 on v5), every QoS 1 PUBLISH with
// a PUBACK (0x89 when the payload is "no"), and sends one command PUBLISH after SUBSCRIBE.
func fakeBroker(t *testing.T, rw io.ReadWriter, version byte) {
	r := bufio.NewReader(rw)
	var buf []byte
	for {
		first, body, b, err := readPacket(r, buf)
		buf = b
		if err != nil {
			return
		}
		var out []byte
		switch first >> 4 {
		case typeConnect:
			out = []byte{typeConnack << 4, 2, 0, 0}
			if version == 5 {
				out = []byte{typeConnack << 4, 6, 0, 0, 3, 0x21, 0, 7}
			}
		case typePublish:
			p, err := parsePacket(version, first, body)
			if err != nil {
				t.Error(err)
				return
			}
			if p.QoS == 1 {
				out = appendPuback(nil, p.ID)
				if string(p.Payload) == "no" && version == 5 {
					out = []byte{typePuback << 4, 3, byte(p.ID >> 8), byte(p.ID), 0x89}
				}
			}
		case typeSubscribe:
			out = []byte{typeSuback << 4, 3, 0, 1, 1}
			if version == 5 {
				out = []byte{typeSuback << 4, 4, 0, 1, 0, 1}
			}
			out = appendPublish(out, version, "command/inbox//set", 1, 9, []byte("cmd"))
		case typePingreq:
			out = []byte{typePingresp << 4, 0}
		case typeDisconnect:
			return
		}
		if _, err := rw.Write(out); err != nil {
			return
		}
	}
}

// wsStream adapts a server-side WebSocket to io.ReadWriter.
type wsStream struct {
	ws *websocket.Conn
	r  wsReader
}

func (s *wsStream) Read(p []byte) (int, error) {
	s.r.ws = s.ws
	return s.r.Read(p)
}
func (s *wsStream) Write(p []byte) (int, error) {
	return len(p), s.ws.WriteMessage(websocket.BinaryMessage, p)
}

func TestClient(t *testing.T) {
	for _, tc := range []struct {
		transport string
		version   byte
	}{{"tcp", 4}, {"tcp", 5}, {"ws", 5}, {"ws", 4}} {
		t.Run(tc.transport+"/"+string('0'+tc.version), func(t *testing.T) {
			var addr string
			switch tc.transport {
			case "tcp":
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				go func() {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					fakeBroker(t, c, tc.version)
				}()
				addr = ln.Addr().String()
			case "ws":
				up := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ws, err := up.Upgrade(w, r, nil)
					if err != nil {
						return
					}
					defer ws.Close()
					fakeBroker(t, &wsStream{ws: ws}, tc.version)
				}))
				defer srv.Close()
				addr = strings.TrimPrefix(srv.URL, "http://")
			}
			c, err := dial(context.Background(), dialConfig{Transport: tc.transport, Address: addr, Version: tc.version,
				ClientID: "d@a", Username: "d@a", Password: "pw", Keepalive: 30, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			if tc.version == 5 && c.Connack.ReceiveMaximum != 7 {
				t.Errorf("receive maximum %d, want 7", c.Connack.ReceiveMaximum)
			}
			acks := make(chan [2]int, 4)
			cmds := make(chan string, 1)
			c.setHandlers(&handlers{
				Puback:  func(id uint16, code byte, _ int64) { acks <- [2]int{int(id), int(code)} },
				Publish: func(topic, payload []byte, qos byte, _ int64) { cmds <- string(topic) + " " + string(payload) },
			})
			c.start()
			if err := c.publish("t", 1, 3, []byte("yes")); err != nil {
				t.Fatal(err)
			}
			if err := c.publish("t", 1, 4, []byte("no")); err != nil {
				t.Fatal(err)
			}
			want := [][2]int{{3, 0}, {4, 0}}
			if tc.version == 5 {
				want[1][1] = 0x89
			}
			for _, w := range want {
				select {
				case got := <-acks:
					if got != w {
						t.Errorf("PUBACK %v, want %v", got, w)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no PUBACK")
				}
			}
			if err := c.write(encodeSubscribe(tc.version, 1, "command/inbox//#", 1)); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-cmds:
				if got != "command/inbox//set cmd" {
					t.Errorf("command %q", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no command")
			}
			c.disconnectAndClose()
			select {
			case <-c.done:
			case <-time.After(5 * time.Second):
				t.Fatal("reader did not stop")
			}
		})
	}
}
