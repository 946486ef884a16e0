package tests

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
)

// v5client is a paho.golang (MQTT 5) client with what the server told it.
type v5client struct {
	*paho.Client
	Connack      *paho.Connack
	conn         net.Conn              // the socket, for tests that drop it
	disconnected chan *paho.Disconnect // DISCONNECT packets from the server
	closed       chan error            // connection errors
}

// dialV5 connects an MQTT 5 client; the CONNECT can be adjusted by edit. It returns the client
// and the connect error (a refused CONNACK is an error with the Connack kept).
func dialV5(t testing.TB, addr string, edit func(*paho.Connect)) (*v5client, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return dialV5Conn(t, nc, edit)
}

// dialV5Conn runs MQTT 5 over an established connection (TLS, WebSocket).
func dialV5Conn(t testing.TB, nc net.Conn, edit func(*paho.Connect)) (*v5client, error) {
	t.Helper()
	c := &v5client{conn: nc, disconnected: make(chan *paho.Disconnect, 4), closed: make(chan error, 4)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn: nc,
		OnServerDisconnect: func(d *paho.Disconnect) {
			c.disconnected <- d
		},
		OnClientError: func(err error) {
			select {
			case c.closed <- err:
			default:
			}
		},
	})
	cp := &paho.Connect{KeepAlive: 30, CleanStart: true, ClientID: "client-" + t.Name()}
	if edit != nil {
		edit(cp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	c.Connack = ca
	if err != nil {
		_ = nc.Close()
		return c, err
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{ReasonCode: 0}) })
	return c, nil
}

// connectV5 connects with username and password and fails the test on refusal.
func connectV5(t testing.TB, addr, username, password string) *v5client {
	t.Helper()
	c, err := dialV5(t, addr, func(cp *paho.Connect) {
		cp.Username, cp.UsernameFlag = username, true
		cp.Password, cp.PasswordFlag = []byte(password), true
	})
	if err != nil {
		t.Fatalf("connect %s: %v", username, err)
	}
	return c
}

// publish sends one publish and waits for its acknowledgement (QoS 1) or its write (QoS 0).
func (c *v5client) publish(t testing.TB, topic string, qos byte, payload string, props *paho.PublishProperties) (*paho.PublishResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(payload), Properties: props})
}

// waitDisconnect waits for a DISCONNECT from the server.
func (c *v5client) waitDisconnect(t testing.TB) *paho.Disconnect {
	t.Helper()
	select {
	case d := <-c.disconnected:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no DISCONNECT from the server within 10s")
		return nil
	}
}

// v3client is a paho.mqtt.golang (MQTT 3.1.1) client.
type v3client struct {
	mqtt3.Client
	lost chan error // the connection was closed by the server
}

// dialV3 connects an MQTT 3.1.1 client; it returns the CONNACK return code and error.
func dialV3(t testing.TB, addr, clientID, username, password string, edit func(*mqtt3.ClientOptions)) (*v3client, byte, error) {
	t.Helper()
	c := &v3client{lost: make(chan error, 1)}
	o := mqtt3.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetConnectionLostHandler(func(_ mqtt3.Client, err error) {
			select {
			case c.lost <- err:
			default:
			}
		})
	if username != "" {
		o.SetUsername(username)
	}
	if password != "" {
		o.SetPassword(password)
	}
	if edit != nil {
		edit(o)
	}
	c.Client = mqtt3.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatal("v3 connect did not complete in 15s")
	}
	ct := tok.(*mqtt3.ConnectToken)
	if err := tok.Error(); err != nil {
		return c, ct.ReturnCode(), err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, ct.ReturnCode(), nil
}

// connectV3 connects with username and password and fails the test on refusal.
func connectV3(t testing.TB, addr, username, password string) *v3client {
	t.Helper()
	c, rc, err := dialV3(t, addr, "v3-"+t.Name(), username, password, nil)
	if err != nil {
		t.Fatalf("v3 connect %s: rc=%d %v", username, rc, err)
	}
	return c
}

// publish sends one publish and waits until it completed (QoS 1: PUBACK).
func (c *v3client) publish(t testing.TB, topic string, qos byte, payload string) error {
	t.Helper()
	tok := c.Publish(topic, qos, false, payload)
	if !tok.WaitTimeout(15 * time.Second) {
		return errors.New("publish not acknowledged within 15s")
	}
	return tok.Error()
}

// waitLost waits until the server closed the connection.
func (c *v3client) waitLost(t testing.TB) {
	t.Helper()
	select {
	case <-c.lost:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the v3.1.1 connection within 10s")
	}
}
