package tests

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
)

func TestConnectCredentials(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	rows := []struct {
		name, clientID, username, password string
		device                             string // the device the connection belongs to
	}{
		{"plain password", "c1", "device1@app1", "secret1", "device1"},
		{"bcrypt password", "c2", "bdev@app1", "bcrypt-secret", "bdev"},
		{"bcrypt password again (cached)", "c2", "bdev@app1", "bcrypt-secret", "bdev"},
		{"sha512-crypt password", "c3", "sdev@app1", "sha-secret", "sdev"},
		{"percent-decoded device", "c4", "dev%2Fx@app1", "px", "dev/x"},
		{"unique user credential as alias", "c5", "uname@app1", "upass", "udev"},
		{"user credential with client id", "udev@app1", "uname", "upass", "udev"},
		{"device alias with client id", "udev-alias@app1", "uname", "upass", "udev"},
	}
	for _, r := range rows {
		for _, v := range []string{"v5", "v3"} {
			t.Run(r.name+"/"+v, func(t *testing.T) {
				if v == "v5" {
					c, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
						cp.ClientID = r.clientID
						cp.Username, cp.UsernameFlag = r.username, true
						cp.Password, cp.PasswordFlag = []byte(r.password), true
					})
					if err != nil {
						t.Fatalf("connect: %v", err)
					}
					_ = c.Disconnect(&paho.Disconnect{})
				} else {
					c, rc, err := dialV3(t, ep.MQTT, r.clientID, r.username, r.password, nil)
					if err != nil || rc != 0 {
						t.Fatalf("connect: rc=%d %v", rc, err)
					}
					c.Disconnect(50)
				}
				ev := s.next(t, typeConnection)
				if ext(ev, "device") != r.device || string(ev.Data()) != `{"connected":true}` {
					t.Fatalf("connected event for %s: %s", r.device, ev)
				}
				if ev := s.next(t, typeConnection); string(ev.Data()) != `{"connected":false}` || ext(ev, "device") != r.device {
					t.Fatalf("disconnected event: %s", ev)
				}
			})
		}
	}
}

func TestConnectRefusals(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	rows := []struct {
		name, clientID, username, password string
		noPassword                         bool
		v3, v5                             byte
	}{
		{"wrong password", "x", "device1@app1", "wrong", false, 4, 0x86},
		{"unknown device", "x", "nobody@app1", "secret1", false, 4, 0x86},
		{"unknown application", "x", "device1@nope", "secret1", false, 4, 0x86},
		{"password of another application", "x", "device1@app2", "secret1", false, 4, 0x86},
		{"username without password", "x", "device1@app1", "", true, 4, 0x86},
		{"no credentials", "x", "", "", true, 4, 0x86},
		{"user credential needs client id", "plain-client", "uname", "upass", false, 4, 0x86},
		{"non-unique lookup by username", "x", "uname@app2", "upass", false, 4, 0x86},
		{"disabled device", "x", "off-dev@app1", "off", false, 5, 0x87},
		{"disabled application", "x", "device1@offapp", "secret1", false, 5, 0x87},
	}
	for _, r := range rows {
		t.Run(r.name+"/v5", func(t *testing.T) {
			c, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
				cp.ClientID = r.clientID
				if r.username != "" {
					cp.Username, cp.UsernameFlag = r.username, true
				}
				if !r.noPassword {
					cp.Password, cp.PasswordFlag = []byte(r.password), true
				}
			})
			if err == nil {
				t.Fatal("connection accepted")
			}
			if c.Connack == nil || c.Connack.ReasonCode != r.v5 {
				t.Fatalf("CONNACK %+v, want reason 0x%02x (err %v)", c.Connack, r.v5, err)
			}
		})
		t.Run(r.name+"/v3", func(t *testing.T) {
			_, rc, err := dialV3(t, ep.MQTT, r.clientID, r.username, r.password, nil)
			if err == nil || rc != r.v3 {
				t.Fatalf("return code %d (err %v), want %d", rc, err, r.v3)
			}
		})
	}
	s.none(t, typeConnection, 200*time.Millisecond)
}

func TestConnectCleanSessionRequired(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
		cp.CleanStart = false
		cp.Username, cp.UsernameFlag = "device1@app1", true
		cp.Password, cp.PasswordFlag = []byte("secret1"), true
	})
	if err == nil {
		t.Fatal("clean start false accepted")
	}
	if c.Connack == nil || c.Connack.ReasonCode < 0x80 || c.Connack.Properties == nil ||
		!strings.Contains(c.Connack.Properties.ReasonString, "clean") {
		t.Fatalf("CONNACK %+v: want a refusal whose reason string explains clean start", c.Connack)
	}
	_, rc, err := dialV3(t, ep.MQTT, "x", "device1@app1", "secret1", func(o *mqtt3.ClientOptions) { o.SetCleanSession(false) })
	if err == nil || rc == 0 {
		t.Fatalf("v3 clean session false: rc=%d err=%v, want a refusal", rc, err)
	}
}

func TestTakeover(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	first := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	if ev := s.next(t, typeConnection); string(ev.Data()) != `{"connected":true}` {
		t.Fatal(ev)
	}
	// Same device, different client id: the older connection is closed at once with 0x8E.
	second, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
		cp.ClientID = "another-id"
		cp.Username, cp.UsernameFlag = "device1@app1", true
		cp.Password, cp.PasswordFlag = []byte("secret1"), true
	})
	if err != nil {
		t.Fatal(err)
	}
	if d := first.waitDisconnect(t); d.ReasonCode != 0x8E {
		t.Fatalf("old connection: DISCONNECT 0x%02x, want 0x8E", d.ReasonCode)
	}
	if ev := s.next(t, typeConnection); string(ev.Data()) != `{"connected":false}` {
		t.Fatalf("want the old connection's disconnected event first, got %s", ev)
	}
	if ev := s.next(t, typeConnection); string(ev.Data()) != `{"connected":true}` {
		t.Fatalf("want the new connection's connected event, got %s", ev)
	}
	if _, err := second.publish(t, "t", 1, "{}", nil); err != nil {
		t.Fatalf("new connection after takeover: %v", err)
	}

	// A v3.1.1 connection is taken over by closing its socket.
	old3 := connectV3(t, ep.MQTT, "gateway1@app1", "gwsecret")
	_ = connectV3(t, ep.MQTT, "gateway1@app1", "gwsecret")
	old3.waitLost(t)
}

func TestSameClientIDAcrossApplications(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	conn := func(user, pass string) *v5client {
		c, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
			cp.ClientID = "same-id"
			cp.Username, cp.UsernameFlag = user, true
			cp.Password, cp.PasswordFlag = []byte(pass), true
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := conn("device1@app1", "secret1")
	b := conn("device1@app2", "secret2")
	c := conn("lonely@app1", "lonely")
	for _, x := range []*v5client{a, b, c} {
		if _, err := x.publish(t, "t", 1, "{}", nil); err != nil {
			t.Fatalf("publish after same client id connects elsewhere: %v", err)
		}
	}
	select {
	case d := <-a.disconnected:
		t.Fatalf("device of app1 was disconnected (0x%02x) by another device with the same client id", d.ReasonCode)
	default:
	}
}

func TestLastWill(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	withWill := func(t *testing.T) *v5client {
		c, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
			cp.Username, cp.UsernameFlag = "device1@app1", true
			cp.Password, cp.PasswordFlag = []byte("secret1"), true
			cp.WillMessage = &paho.WillMessage{Topic: "status/other", Payload: []byte(`{"alive":false}`), QoS: 1}
			cp.WillProperties = &paho.WillProperties{ContentType: "application/json"}
		})
		if err != nil {
			t.Fatal(err)
		}
		s.next(t, typeConnection)
		return c
	}
	t.Run("socket drop sends the will", func(t *testing.T) {
		c := withWill(t)
		_ = c.conn.Close()
		will := s.next(t, "")
		if will.Type() != typeEvent || will.Subject() != "status/other" || ext(will, "device") != "device1" ||
			will.DataContentType() != "application/json" {
			t.Fatalf("will event: %s", will)
		}
		if ev := s.next(t, typeConnection); string(ev.Data()) != `{"connected":false}` {
			t.Fatalf("after the will: %s", ev)
		}
	})
	t.Run("disconnect with will message sends it", func(t *testing.T) {
		c := withWill(t)
		_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0x04})
		if will := s.next(t, ""); will.Subject() != "status/other" {
			t.Fatalf("want the will first, got %s", will)
		}
		s.next(t, typeConnection)
	})
	t.Run("normal disconnect discards it", func(t *testing.T) {
		c := withWill(t)
		_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		if ev := s.next(t, ""); ev.Type() != typeConnection || string(ev.Data()) != `{"connected":false}` {
			t.Fatalf("want only the disconnected event, got %s", ev)
		}
	})
}

func TestRegistryReloadKeepsConnections(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")

	added := testRegistry(t) + "\n---\nkind: Device\nmetadata: {name: newcomer, application: app1}\nspec: {authentication: {credentials: [{pass: fresh}]}}\n"
	if err := os.WriteFile(ep.Registry, []byte(added), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new device to be accepted", func() bool {
		_, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
			cp.Username, cp.UsernameFlag = "newcomer@app1", true
			cp.Password, cp.PasswordFlag = []byte("fresh"), true
		})
		return err == nil
	})
	// A broken file keeps the last good registry and names the problem in the log.
	if err := os.WriteFile(ep.Registry, []byte(added+"\n---\nkind: Device\nmetadata: {name: broken, application: nowhere}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the broken registry to be reported", func() bool { return strings.Contains(ep.Logs(), "nowhere") })
	if _, err := c.publish(t, "t", 1, "{}", nil); err != nil {
		t.Fatalf("connection after reloads: %v", err)
	}
	if _, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
		cp.Username, cp.UsernameFlag = "newcomer@app1", true
		cp.Password, cp.PasswordFlag = []byte("fresh"), true
	}); err != nil {
		t.Fatalf("last good registry not kept: %v", err)
	}
}
