package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"
)

// Commands (SPEC §7, §9): every test here runs the real binary and real clients.

// cmdRegistry is the registry of the command tests. device1 and device2 have gateway1 as
// gateway (device2 names it by its alias); stranger, sleeper and dev/x have none; app2 repeats
// the names of app1 with the same passwords.
const cmdRegistry = `
kind: Application
metadata: {name: app1}
---
kind: Device
metadata: {name: device1, application: app1}
spec:
  alias: [dev1-alias]
  authentication: {credentials: [{pass: secret1}]}
  gatewaySelector: {matchNames: [gateway1]}
---
kind: Device
metadata: {name: device2, application: app1}
spec:
  authentication: {credentials: [{pass: secret2}]}
  gatewaySelector: {matchNames: [gw-alias]}
---
kind: Device
metadata: {name: gateway1, application: app1}
spec:
  alias: [gw-alias]
  authentication: {credentials: [{pass: gwsecret}]}
---
kind: Device
metadata: {name: stranger, application: app1}
spec:
  authentication: {credentials: [{pass: strange}]}
---
kind: Device
metadata: {name: sleeper, application: app1}
spec:
  authentication: {credentials: [{pass: zzz}]}
---
kind: Device
metadata: {name: off-dev, application: app1}
spec:
  core: {disabled: true}
  gatewaySelector: {matchNames: [gateway1]}
---
kind: Device
metadata: {name: dev/x, application: app1}
spec:
  authentication: {credentials: [{pass: px}]}
---
kind: Application
metadata: {name: app2}
---
kind: Device
metadata: {name: device1, application: app2}
spec:
  authentication: {credentials: [{pass: secret1}]}
---
kind: Device
metadata: {name: gateway1, application: app2}
spec:
  authentication: {credentials: [{pass: gwsecret}]}
---
kind: Application
metadata: {name: offapp}
spec: {core: {disabled: true}}
---
kind: Device
metadata: {name: device1, application: offapp}
spec:
  authentication: {credentials: [{pass: secret1}]}
`

// passwords of the devices of cmdRegistry that connect.
var cmdPasswords = map[string]string{
	"device1": "secret1", "device2": "secret2", "gateway1": "gwsecret", "stranger": "strange", "sleeper": "zzz", "dev/x": "px",
}

// ---- HTTP side -------------------------------------------------------------------------------

// cmdRequest is one POST to the command sink.
type cmdRequest struct {
	path   string // "" = "/"
	header map[string]string
	body   []byte
}

// cmdBinary is a binary-mode command event; edits change ce- attributes ("" removes one).
func cmdBinary(app, device, name, contentType string, data []byte, edits map[string]string) cmdRequest {
	attrs := map[string]string{
		"specversion": "1.0", "id": uuid.NewString(), "source": "command-test", "type": "io.drogue.command.v1",
		"subject": name, "application": app, "device": device,
	}
	for k, v := range edits {
		if v == "" {
			delete(attrs, k)
		} else {
			attrs[k] = v
		}
	}
	h := map[string]string{}
	for k, v := range attrs {
		h["ce-"+k] = v
	}
	if contentType != "" {
		h["Content-Type"] = contentType
	}
	return cmdRequest{header: h, body: data}
}

// cmdStructured is a structured-mode command event with further JSON members.
func cmdStructured(t testing.TB, app, device, name string, members map[string]any) cmdRequest {
	t.Helper()
	doc := map[string]any{
		"specversion": "1.0", "id": uuid.NewString(), "source": "command-test", "type": "io.drogue.command.v1",
		"subject": name, "application": app, "device": device,
	}
	maps.Copy(doc, members)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return cmdRequest{header: map[string]string{"Content-Type": "application/cloudevents+json"}, body: b}
}

// cmdREST is the REST form; query is the raw query string.
func cmdREST(app, device, query, contentType string, body []byte) cmdRequest {
	r := cmdRequest{path: "/api/command/v1alpha1/apps/" + app + "/devices/" + device + "?" + query, body: body}
	if contentType != "" {
		r.header = map[string]string{"Content-Type": contentType}
	}
	return r
}

// cmdResult is the sink's answer to one POST.
type cmdResult struct {
	code    int
	body    string
	ctype   string
	err     error
	elapsed time.Duration
}

var cmdHTTP = &http.Client{Timeout: 30 * time.Second}

// cmdSend posts r to the endpoint at addr; it never fails the test, so goroutines may call it.
func cmdSend(addr string, r cmdRequest) cmdResult {
	path := r.path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(r.body))
	if err != nil {
		return cmdResult{err: err}
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := cmdHTTP.Do(req)
	if err != nil {
		return cmdResult{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return cmdResult{code: resp.StatusCode, body: string(b), ctype: resp.Header.Get("Content-Type"), err: err, elapsed: time.Since(start)}
}

// cmdPostAsync posts in the background; the answer arrives on the channel.
func cmdPostAsync(addr string, r cmdRequest) <-chan cmdResult {
	ch := make(chan cmdResult, 1)
	go func() { ch <- cmdSend(addr, r) }()
	return ch
}

// cmdWantAnswer checks the status and the body form of SPEC §7: empty on 2xx, else one short
// line of plain text.
func cmdWantAnswer(t testing.TB, res cmdResult, want int) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("POST failed: %v", res.err)
	}
	if res.code != want {
		t.Fatalf("status %d (%q), want %d", res.code, res.body, want)
	}
	if res.code/100 == 2 {
		if res.body != "" {
			t.Errorf("2xx body %q, want empty", res.body)
		}
		return
	}
	if !strings.HasPrefix(res.ctype, "text/plain") {
		t.Errorf("Content-Type %q of a %d, want text/plain", res.ctype, res.code)
	}
	line := strings.TrimSuffix(res.body, "\n")
	if line == "" || strings.Contains(line, "\n") || len(line) > 300 {
		t.Errorf("body of a %d is %q, want one short line", res.code, res.body)
	}
}

// cmdPost posts and checks the answer.
func cmdPost(t testing.TB, addr string, r cmdRequest, want int) cmdResult {
	t.Helper()
	res := cmdSend(addr, r)
	cmdWantAnswer(t, res, want)
	return res
}

// cmdAwait waits for a background POST.
func cmdAwait(t testing.TB, ch <-chan cmdResult) cmdResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(30 * time.Second):
		t.Fatal("the POST did not return within 30s")
		return cmdResult{}
	}
}

// cmdWaitConnections waits until the endpoint counts n open device connections, so that a
// connection closed by an earlier step cannot take a command meant to find nobody.
// cmdWaitConnections waits until the endpoint counts n open connections (over every listener
// and application).
func cmdWaitConnections(t testing.TB, ep *endpoint, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d open connections", n), func() bool {
		resp, err := http.Get("http://" + ep.HTTP + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		sum := 0.0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "mqtt_endpoint_connections{") {
				continue
			}
			_, v, _ := strings.Cut(line, "} ")
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return false
			}
			sum += f
		}
		return sum == float64(n)
	})
}

// ---- MQTT side -------------------------------------------------------------------------------

// cmdMsg is one command a client received.
type cmdMsg struct {
	topic       string
	qos         byte
	payload     string
	contentType string
	expiry      *uint32
}

// cmdInbox collects the PUBLISH packets a client receives, in order.
type cmdInbox chan cmdMsg

func (in cmdInbox) next(t testing.TB) cmdMsg {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no command arrived within 10s")
		return cmdMsg{}
	}
}

// none asserts that nothing (more) arrives within d.
func (in cmdInbox) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-in:
		t.Fatalf("unexpected command on %q: %q", m.topic, m.payload)
	case <-time.After(d):
	}
}

// want asserts the next command's topic, QoS and payload.
func (in cmdInbox) want(t testing.TB, topic string, qos byte, payload string) cmdMsg {
	t.Helper()
	m := in.next(t)
	if m.topic != topic || m.qos != qos || m.payload != payload {
		t.Fatalf("received %q QoS %d %q; want %q QoS %d %q", m.topic, m.qos, m.payload, topic, qos, payload)
	}
	return m
}

// cmdFilter is one filter of a SUBSCRIBE.
type cmdFilter struct {
	filter string
	qos    byte
}

// cmdClient is a connected device for the command tests, v5 or v3.1.1.
type cmdClient struct {
	v5    *v5client
	v3    *v3client
	inbox cmdInbox
}

// cmdDial connects device of app (v5 unless v3) and records what it receives; edit adjusts a
// v5 CONNECT. Every client gets the same client id: the endpoint must not care.
func cmdDial(t testing.TB, ep *endpoint, v3 bool, app, device string, edit func(*paho.Connect)) *cmdClient {
	t.Helper()
	user, pass := device+"@"+app, cmdPasswords[device]
	c := &cmdClient{inbox: make(cmdInbox, 100)}
	if v3 {
		cl, rc, err := dialV3(t, ep.MQTT, "same-client-id", user, pass, func(o *mqtt3.ClientOptions) {
			o.SetDefaultPublishHandler(func(_ mqtt3.Client, m mqtt3.Message) {
				c.inbox <- cmdMsg{topic: m.Topic(), qos: m.Qos(), payload: string(m.Payload())}
			})
		})
		if err != nil {
			t.Fatalf("v3 connect %s: rc=%d %v", user, rc, err)
		}
		c.v3 = cl
		return c
	}
	cl, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
		cp.ClientID = "same-client-id"
		cp.Username, cp.UsernameFlag = user, true
		cp.Password, cp.PasswordFlag = []byte(pass), true
		if edit != nil {
			edit(cp)
		}
	})
	if err != nil {
		t.Fatalf("connect %s: %v", user, err)
	}
	cl.AddOnPublishReceived(func(pr paho.PublishReceived) (bool, error) {
		m := cmdMsg{topic: pr.Packet.Topic, qos: pr.Packet.QoS, payload: string(pr.Packet.Payload)}
		if p := pr.Packet.Properties; p != nil {
			m.contentType, m.expiry = p.ContentType, p.MessageExpiry
		}
		c.inbox <- m
		return true, nil
	})
	c.v5 = cl
	return c
}

// subscribe sends one SUBSCRIBE with the filters and returns the SUBACK codes in order.
func (c *cmdClient) subscribe(t testing.TB, filters ...cmdFilter) []byte {
	t.Helper()
	if c.v3 != nil {
		m := map[string]byte{}
		for _, f := range filters {
			m[f.filter] = f.qos
		}
		tok := c.v3.SubscribeMultiple(m, nil)
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatal("no SUBACK within 10s")
		}
		res := tok.(*mqtt3.SubscribeToken).Result()
		codes := make([]byte, len(filters))
		for i, f := range filters {
			code, ok := res[f.filter]
			if !ok {
				t.Fatalf("SUBACK has no code for %q: %v", f.filter, res)
			}
			codes[i] = code
		}
		return codes
	}
	s := &paho.Subscribe{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: f.filter, QoS: f.qos})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := c.v5.Subscribe(ctx, s)
	if sa == nil || len(sa.Reasons) != len(filters) {
		t.Fatalf("subscribe %v: SUBACK %+v, %v", filters, sa, err)
	}
	return sa.Reasons
}

// mustSubscribe subscribes and fails unless every filter is granted min(requested, 1).
func (c *cmdClient) mustSubscribe(t testing.TB, filters ...cmdFilter) {
	t.Helper()
	codes := c.subscribe(t, filters...)
	for i, f := range filters {
		if codes[i] != min(f.qos, 1) {
			t.Fatalf("SUBACK for %q = %#x, want %d", f.filter, codes[i], min(f.qos, 1))
		}
	}
}

// unsubscribe sends one UNSUBSCRIBE; v5 returns the UNSUBACK codes, v3 nil.
func (c *cmdClient) unsubscribe(t testing.TB, filters ...string) []byte {
	t.Helper()
	if c.v3 != nil {
		if tok := c.v3.Unsubscribe(filters...); !tok.WaitTimeout(10 * time.Second) {
			t.Fatal("no UNSUBACK within 10s")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ua, err := c.v5.Unsubscribe(ctx, &paho.Unsubscribe{Topics: filters})
	if ua == nil {
		t.Fatalf("unsubscribe %v: %v", filters, err)
	}
	return ua.Reasons
}

// ---- raw MQTT: what paho does not let a test do (withhold a PUBACK, $share filters) -----------

// cmdSubscribe sends SUBSCRIBE (packet id 1) and returns the SUBACK codes.
func (c *rawClient) cmdSubscribe(filters ...cmdFilter) []byte {
	c.t.Helper()
	body := binary.BigEndian.AppendUint16(nil, 1)
	if c.version == 5 {
		body = append(body, 0) // no properties
	}
	for _, f := range filters {
		body = append(append(body, mqttString(f.filter)...), f.qos)
	}
	c.write(0x82, body)
	p := c.read()
	if p.typ != 9 || len(p.body) < 2 || binary.BigEndian.Uint16(p.body) != 1 {
		c.t.Fatalf("want SUBACK for packet 1, got %+v", p)
	}
	rest := p.body[2:]
	if c.version == 5 {
		n, size := cmdVarint(rest)
		rest = rest[size+n:]
	}
	if len(rest) != len(filters) {
		c.t.Fatalf("SUBACK has %d codes for %d filters", len(rest), len(filters))
	}
	return rest
}

// cmdVarint decodes an MQTT variable byte integer: its value and its length.
func cmdVarint(b []byte) (value, size int) {
	mult := 1
	for i, c := range b {
		value += int(c&0x7f) * mult
		mult *= 128
		if c&0x80 == 0 {
			return value, i + 1
		}
	}
	return value, len(b)
}

// cmdRawPublish is a PUBLISH the endpoint sent.
type cmdRawPublish struct {
	qos         byte
	id          uint16
	topic       string
	contentType string
	payload     string
}

// cmdReadPublish reads the next packet and fails unless it is a PUBLISH.
func (c *rawClient) cmdReadPublish() cmdRawPublish {
	c.t.Helper()
	p := c.read()
	if p.typ != 3 {
		c.t.Fatalf("want PUBLISH, got packet type %d", p.typ)
	}
	b := p.body
	n := int(binary.BigEndian.Uint16(b))
	pub := cmdRawPublish{qos: (p.flags >> 1) & 3, topic: string(b[2 : 2+n])}
	b = b[2+n:]
	if pub.qos > 0 {
		pub.id = binary.BigEndian.Uint16(b)
		b = b[2:]
	}
	if c.version == 5 {
		n, size := cmdVarint(b)
		props := b[size : size+n]
		for len(props) > 0 { // only what the endpoint may send: 0x02 expiry, 0x03 content type
			switch props[0] {
			case 0x02:
				props = props[5:]
			case 0x03:
				l := int(binary.BigEndian.Uint16(props[1:]))
				pub.contentType = string(props[3 : 3+l])
				props = props[3+l:]
			default:
				c.t.Fatalf("unexpected PUBLISH property %#x", props[0])
			}
		}
		b = b[size+n:]
	}
	pub.payload = string(b)
	return pub
}

// cmdPuback acknowledges a command.
func (c *rawClient) cmdPuback(id uint16) {
	c.t.Helper()
	c.write(0x40, binary.BigEndian.AppendUint16(nil, id))
}

// ---- tests -----------------------------------------------------------------------------------

// TestCommandTopics proves every filter of SPEC §7 and the topic each delivers on, for the
// device itself and for a gateway, and that a filter delivers nothing it must not (SPEC §9:
// command/inbox//# carries only the device's own commands).
func TestCommandTopics(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	tests := []struct {
		name    string
		v3      bool
		client  string // device that connects and subscribes (app1)
		filter  string
		target  string // device the command is for
		command string
		topic   string // "" = not delivered: the POST gets 503
	}{
		{"self inbox", false, "device1", "command/inbox//#", "device1", "set", "command/inbox//set"},
		{"self wildcard", false, "device1", "command/inbox/#", "device1", "set", "command/inbox//set"},
		{"self plus wildcard", false, "device1", "command/inbox/+/#", "device1", "set", "command/inbox//set"},
		{"self by name", false, "device1", "command/inbox/device1/#", "device1", "set", "command/inbox/device1/set"},
		{"self by alias", false, "device1", "command/inbox/dev1-alias/#", "device1", "set", "command/inbox/dev1-alias/set"},
		{"self command with slash", false, "device1", "command/inbox//#", "device1", "a/b", "command/inbox//a/b"},
		{"v3 self inbox", true, "device1", "command/inbox//#", "device1", "set", "command/inbox//set"},
		{"v3 self wildcard", true, "device1", "command/inbox/#", "device1", "set", "command/inbox//set"},
		{"v3 self by name", true, "device1", "command/inbox/device1/#", "device1", "set", "command/inbox/device1/set"},

		{"gateway own on wildcard", false, "gateway1", "command/inbox/#", "gateway1", "set", "command/inbox//set"},
		{"gateway own on plus wildcard", false, "gateway1", "command/inbox/+/#", "gateway1", "set", "command/inbox//set"},
		{"gateway proxied on wildcard", false, "gateway1", "command/inbox/#", "device1", "set", "command/inbox/device1/set"},
		{"gateway proxied on plus wildcard", false, "gateway1", "command/inbox/+/#", "device1", "set", "command/inbox/device1/set"},
		{"gateway proxied by name", false, "gateway1", "command/inbox/device1/#", "device1", "set", "command/inbox/device1/set"},
		{"gateway named by its alias", false, "gateway1", "command/inbox/#", "device2", "set", "command/inbox/device2/set"},
		{"gateway proxied command with slashes", false, "gateway1", "command/inbox/#", "device1", "a/b/c", "command/inbox/device1/a/b/c"},
		{"v3 gateway proxied on wildcard", true, "gateway1", "command/inbox/#", "device1", "set", "command/inbox/device1/set"},
		{"v3 gateway proxied by name", true, "gateway1", "command/inbox/device1/#", "device1", "set", "command/inbox/device1/set"},

		{"gateway inbox gets no proxied", false, "gateway1", "command/inbox//#", "device1", "set", ""},
		{"gateway own name gets no proxied", false, "gateway1", "command/inbox/gateway1/#", "device1", "set", ""},
		{"gateway named other device", false, "gateway1", "command/inbox/device2/#", "device1", "set", ""},
		{"gateway named device not listing it", false, "gateway1", "command/inbox/stranger/#", "stranger", "set", ""},
		{"gateway wildcard device not listing it", false, "gateway1", "command/inbox/#", "stranger", "set", ""},
		{"device is no gateway", false, "device1", "command/inbox/device2/#", "device2", "set", ""},
		{"v3 gateway inbox gets no proxied", true, "gateway1", "command/inbox//#", "device1", "set", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdWaitConnections(t, ep, 0)
			c := cmdDial(t, ep, tt.v3, "app1", tt.client, nil)
			c.mustSubscribe(t, cmdFilter{tt.filter, 1})
			payload := "payload of " + tt.name
			if tt.topic == "" {
				cmdPost(t, ep.HTTP, cmdBinary("app1", tt.target, tt.command, "text/plain", []byte(payload), nil), http.StatusServiceUnavailable)
				return
			}
			cmdPost(t, ep.HTTP, cmdBinary("app1", tt.target, tt.command, "text/plain", []byte(payload), nil), http.StatusAccepted)
			c.inbox.want(t, tt.topic, 1, payload)
		})
	}
}

// TestCommandSuback proves the SUBACK of SPEC §7: allowed filters are granted min(requested, 1),
// every other filter is refused on its own (v5 0x87, v3.1.1 0x80), codes in filter order.
func TestCommandSuback(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	const no5, no3 = 0x87, 0x80
	mixed := []cmdFilter{
		{"command/inbox//#", 2}, {"#", 0}, {"command/#", 1}, {"command/inbox/device1/#", 0},
		{"command/inbox/d/SET", 1}, {"command/inbox/+/+", 1}, {"command/inbox", 0}, {"telemetry/#", 1},
		{"command/inbox/+/#", 1}, {"$share/g/command/inbox/#", 1}, {"command/inbox/#", 2},
	}
	mixedV5 := []byte{1, no5, no5, 0, no5, no5, no5, no5, 1, no5, 1}
	mixedV3 := []byte{1, no3, no3, 0, no3, no3, no3, no3, 1, no3, 1}
	tests := []struct {
		name    string
		client  string // "v5", "v3" (paho) or "raw5", "raw3"
		filters []cmdFilter
		want    []byte
	}{
		{"v5 granted QoS", "v5", []cmdFilter{{"command/inbox//#", 0}, {"command/inbox/#", 1}, {"command/inbox/+/#", 2}, {"command/inbox/device1/#", 2}}, []byte{0, 1, 1, 1}},
		{"v3 granted QoS", "v3", []cmdFilter{{"command/inbox//#", 0}, {"command/inbox/#", 1}, {"command/inbox/+/#", 2}, {"command/inbox/device1/#", 2}}, []byte{0, 1, 1, 1}},
		{"v5 mixed", "v5", slices.DeleteFunc(slices.Clone(mixed), func(f cmdFilter) bool { return strings.HasPrefix(f.filter, "$share") }),
			slices.Delete(slices.Clone(mixedV5), 9, 10)},
		{"v5 raw mixed with shared", "raw5", mixed, mixedV5},
		{"v3 raw mixed with shared", "raw3", mixed, mixedV3},
		{"v3 mixed with shared", "v3", mixed, mixedV3},
		{"v5 only refused", "v5", []cmdFilter{{"#", 1}}, []byte{no5}},
		{"v3 only refused", "v3", []cmdFilter{{"telemetry/#", 1}}, []byte{no3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdWaitConnections(t, ep, 0)
			var got []byte
			switch tt.client {
			case "raw5", "raw3":
				v := byte(5)
				if tt.client == "raw3" {
					v = 4
				}
				got = dialRaw(t, ep.MQTT, v, "device1@app1", "secret1").cmdSubscribe(tt.filters...)
			default:
				got = cmdDial(t, ep, tt.client == "v3", "app1", "device1", nil).subscribe(t, tt.filters...)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("SUBACK codes % x, want % x", got, tt.want)
			}
		})
	}
}

// TestCommandRefusedFilterGetsNothing proves that a refused filter does not subscribe: with
// only refused filters, a command for the device finds nobody (503).
func TestCommandRefusedFilterGetsNothing(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	c := cmdDial(t, ep, false, "app1", "device1", nil)
	c.subscribe(t, cmdFilter{"#", 1}, cmdFilter{"command/#", 1}, cmdFilter{"command/inbox/+/+", 1}, cmdFilter{"command/inbox/device1/set", 1})
	cmdPost(t, ep.HTTP, cmdBinary("app1", "device1", "set", "", []byte("x"), nil), http.StatusServiceUnavailable)
	c.inbox.none(t, 300*time.Millisecond)
}

// TestCommandUnsubscribe proves UNSUBSCRIBE: a removed filter no longer delivers (503 when no
// other filter is left), v5 answers 0x00 for a held filter and 0x11 for any other.
func TestCommandUnsubscribe(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	for _, v3 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v5", true: "v3"}[v3], func(t *testing.T) {
			cmdWaitConnections(t, ep, 0)
			c := cmdDial(t, ep, v3, "app1", "device1", nil)
			c.mustSubscribe(t, cmdFilter{"command/inbox//#", 1}, cmdFilter{"command/inbox/device1/#", 1})
			c.subscribe(t, cmdFilter{"#", 1})
			cmd := func(payload string) cmdRequest {
				return cmdBinary("app1", "device1", "set", "", []byte(payload), nil)
			}

			cmdPost(t, ep.HTTP, cmd("both"), http.StatusAccepted)
			c.inbox.want(t, "command/inbox//set", 1, "both")

			codes := c.unsubscribe(t, "command/inbox//#")
			if !v3 && !bytes.Equal(codes, []byte{0}) {
				t.Errorf("UNSUBACK % x, want 00", codes)
			}
			cmdPost(t, ep.HTTP, cmd("one left"), http.StatusAccepted)
			c.inbox.want(t, "command/inbox/device1/set", 1, "one left")

			codes = c.unsubscribe(t, "command/inbox/device1/#", "command/inbox//#", "#", "command/inbox/#")
			if !v3 && !bytes.Equal(codes, []byte{0, 0x11, 0x11, 0x11}) {
				t.Errorf("UNSUBACK % x, want 00 11 11 11", codes)
			}
			cmdPost(t, ep.HTTP, cmd("none left"), http.StatusServiceUnavailable)
			c.inbox.none(t, 300*time.Millisecond)
		})
	}
}

// TestCommandDeviceAndGateway proves that a command goes to every connection that should see
// it: the device and its gateway both receive it, each once.
func TestCommandDeviceAndGateway(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	dev := cmdDial(t, ep, false, "app1", "device1", nil)
	dev.mustSubscribe(t, cmdFilter{"command/inbox//#", 1})
	gw := cmdDial(t, ep, true, "app1", "gateway1", nil)
	gw.mustSubscribe(t, cmdFilter{"command/inbox/#", 1})

	cmdPost(t, ep.HTTP, cmdBinary("app1", "device1", "set", "text/plain", []byte("to both"), nil), http.StatusAccepted)
	dev.inbox.want(t, "command/inbox//set", 1, "to both")
	gw.inbox.want(t, "command/inbox/device1/set", 1, "to both")

	// The gateway's own command reaches only the gateway.
	cmdPost(t, ep.HTTP, cmdBinary("app1", "gateway1", "own", "", []byte("gw only"), nil), http.StatusAccepted)
	gw.inbox.want(t, "command/inbox//own", 1, "gw only")

	dev.inbox.none(t, 300*time.Millisecond)
	gw.inbox.none(t, 0)
}

// TestCommandGatewayScope proves that a gateway receives only what it subscribed for and is
// allowed to: command/inbox/<other>/# carries only that device's commands, and a device that
// does not list the gateway is never delivered to it.
func TestCommandGatewayScope(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	gw := cmdDial(t, ep, false, "app1", "gateway1", nil)
	gw.mustSubscribe(t, cmdFilter{"command/inbox/device1/#", 1}, cmdFilter{"command/inbox/stranger/#", 1})
	tests := []struct {
		name   string
		target string
		want   int
		topic  string
	}{
		{"subscribed device", "device1", http.StatusAccepted, "command/inbox/device1/set"},
		{"other device of the gateway", "device2", http.StatusServiceUnavailable, ""},
		{"gateway's own command", "gateway1", http.StatusServiceUnavailable, ""},
		{"device not listing the gateway", "stranger", http.StatusServiceUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdPost(t, ep.HTTP, cmdBinary("app1", tt.target, "set", "", []byte(tt.name), nil), tt.want)
			if tt.topic != "" {
				gw.inbox.want(t, tt.topic, 1, tt.name)
			}
		})
	}
	// The device not listing the gateway, now connected itself: only it receives.
	s := cmdDial(t, ep, false, "app1", "stranger", nil)
	s.mustSubscribe(t, cmdFilter{"command/inbox/#", 1})
	cmdPost(t, ep.HTTP, cmdBinary("app1", "stranger", "set", "", []byte("mine"), nil), http.StatusAccepted)
	s.inbox.want(t, "command/inbox//set", 1, "mine")
	gw.inbox.none(t, 300*time.Millisecond)
}

// TestCommandOverlapOnce proves SPEC §9: overlapping filters on one connection deliver a
// command once per connection, not once per filter.
func TestCommandOverlapOnce(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	all := []cmdFilter{{"command/inbox/#", 1}, {"command/inbox//#", 1}, {"command/inbox/+/#", 0}}
	tests := []struct {
		name    string
		v3      bool
		client  string
		filters []cmdFilter
		target  string
		topic   string
	}{
		{"v5 device", false, "device1", append(slices.Clone(all), cmdFilter{"command/inbox/device1/#", 1}, cmdFilter{"command/inbox/dev1-alias/#", 1}), "device1", "command/inbox//set"},
		{"v3 device", true, "device1", append(slices.Clone(all), cmdFilter{"command/inbox/device1/#", 1}), "device1", "command/inbox//set"},
		{"v5 gateway", false, "gateway1", append(slices.Clone(all), cmdFilter{"command/inbox/device1/#", 1}, cmdFilter{"command/inbox/gateway1/#", 1}), "device1", "command/inbox/device1/set"},
		{"v3 gateway", true, "gateway1", append(slices.Clone(all), cmdFilter{"command/inbox/device1/#", 1}), "device1", "command/inbox/device1/set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdWaitConnections(t, ep, 0)
			c := cmdDial(t, ep, tt.v3, "app1", tt.client, nil)
			c.mustSubscribe(t, tt.filters...)
			cmdPost(t, ep.HTTP, cmdBinary("app1", tt.target, "set", "", []byte(tt.name), nil), http.StatusAccepted)
			c.inbox.want(t, tt.topic, 1, tt.name)
			c.inbox.none(t, 300*time.Millisecond)
		})
	}
}

// TestCommandTenantIsolation proves that applications with the same device names, passwords
// and client ids never see each other's commands, neither directly nor through a gateway.
func TestCommandTenantIsolation(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	clients := map[string]*cmdClient{}
	for _, app := range []string{"app1", "app2"} {
		for i, dev := range []string{"device1", "gateway1"} {
			c := cmdDial(t, ep, i == 1, app, dev, nil) // devices on v5, gateways on v3.1.1
			c.mustSubscribe(t, cmdFilter{"command/inbox/#", 1}, cmdFilter{"command/inbox/device1/#", 1})
			clients[app+"/"+dev] = c
		}
	}
	cmdWaitConnections(t, ep, 4) // no connection took over another
	// Several rounds, so that a lookup depending on map order cannot pass by luck.
	for round := range 10 {
		for _, app := range []string{"app1", "app2"} {
			payload := fmt.Sprintf("%s round %d", app, round)
			cmdPost(t, ep.HTTP, cmdBinary(app, "device1", "set", "", []byte(payload), nil), http.StatusAccepted)
			clients[app+"/device1"].inbox.want(t, "command/inbox//set", 1, payload)
			if app == "app1" { // app1's device1 lists gateway1; app2's does not
				clients["app1/gateway1"].inbox.want(t, "command/inbox/device1/set", 1, payload)
			}
		}
	}
	for _, c := range clients {
		c.inbox.none(t, 300*time.Millisecond)
	}
}

// TestCommandQoS proves delivery at the granted QoS (min(requested, 1)) with the command's
// content type as the v5 Content Type property (and its expiry as Message Expiry Interval),
// and the raw payload on v3.1.1.
func TestCommandQoS(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	expires := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name        string
		v3          bool
		subQoS      byte
		contentType string
		expiry      string
		payload     string
		wantQoS     byte
	}{
		{"v5 QoS 1 JSON", false, 1, "application/json", "", `{"on":true}`, 1},
		{"v5 QoS 0 text", false, 0, "text/plain; charset=utf-8", "", "on", 0},
		{"v5 QoS 2 asked", false, 2, "application/octet-stream", "", "\x00\x01\xff", 1},
		{"v5 no content type", false, 1, "", "", "raw", 1},
		{"v5 expiry", false, 1, "text/plain", expires, "soon", 1},
		{"v3 QoS 1", true, 1, "application/json", "", `{"on":true}`, 1},
		{"v3 QoS 0", true, 0, "text/plain", "", "on", 0},
		{"v3 QoS 2 asked", true, 2, "", "", "\x00\xff", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdWaitConnections(t, ep, 0)
			c := cmdDial(t, ep, tt.v3, "app1", "device1", nil)
			c.mustSubscribe(t, cmdFilter{"command/inbox//#", tt.subQoS})
			cmdPost(t, ep.HTTP, cmdBinary("app1", "device1", "set", tt.contentType, []byte(tt.payload), map[string]string{"expirytime": tt.expiry}), http.StatusAccepted)
			m := c.inbox.want(t, "command/inbox//set", tt.wantQoS, tt.payload)
			if tt.v3 {
				return
			}
			if m.contentType != tt.contentType {
				t.Errorf("Content Type %q, want %q", m.contentType, tt.contentType)
			}
			switch {
			case tt.expiry == "" && m.expiry != nil:
				t.Errorf("Message Expiry Interval %d on a command without expiry", *m.expiry)
			case tt.expiry != "" && (m.expiry == nil || *m.expiry < 3500 || *m.expiry > 3600):
				t.Errorf("Message Expiry Interval %v, want about 3600", m.expiry)
			}
		})
	}
}

// TestCommandAcknowledgement proves that a QoS 1 command is answered 202 only after the
// device's PUBACK, 504 when the PUBACK is withheld past COMMAND_ACK_TIMEOUT, and that the
// connection goes on working after a late PUBACK.
func TestCommandAcknowledgement(t *testing.T) {
	const ackTimeout = time.Second
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry, Env: map[string]string{"COMMAND_ACK_TIMEOUT": ackTimeout.String()}})
	for _, v := range []byte{5, 4} {
		t.Run(fmt.Sprintf("protocol %d", v), func(t *testing.T) {
			cmdWaitConnections(t, ep, 0)
			rc := dialRaw(t, ep.MQTT, v, "device1@app1", "secret1")
			if got := rc.cmdSubscribe(cmdFilter{"command/inbox//#", 1}); !bytes.Equal(got, []byte{1}) {
				t.Fatalf("SUBACK % x", got)
			}

			// Acknowledged: the answer waits for the PUBACK.
			res := cmdPostAsync(ep.HTTP, cmdBinary("app1", "device1", "set", "application/json", []byte(`{"n":1}`), nil))
			p := rc.cmdReadPublish()
			if p.qos != 1 || p.topic != "command/inbox//set" || p.payload != `{"n":1}` || p.id == 0 {
				t.Fatalf("PUBLISH %+v", p)
			}
			if wantCT := map[byte]string{5: "application/json", 4: ""}[v]; p.contentType != wantCT {
				t.Errorf("content type %q, want %q", p.contentType, wantCT)
			}
			select {
			case r := <-res:
				t.Fatalf("the POST answered %d before the PUBACK", r.code)
			case <-time.After(300 * time.Millisecond):
			}
			rc.cmdPuback(p.id)
			cmdWantAnswer(t, cmdAwait(t, res), http.StatusAccepted)

			// Withheld: 504 after the timeout, not before.
			r := cmdPostAsync(ep.HTTP, cmdBinary("app1", "device1", "set", "", []byte("ignored"), nil))
			late := rc.cmdReadPublish()
			got := cmdAwait(t, r)
			cmdWantAnswer(t, got, http.StatusGatewayTimeout)
			if got.elapsed < ackTimeout-100*time.Millisecond || got.elapsed > ackTimeout+3*time.Second {
				t.Errorf("504 after %v, want about %v", got.elapsed, ackTimeout)
			}

			// A late PUBACK is harmless; the next command gets a fresh packet id and goes through.
			rc.cmdPuback(late.id)
			res = cmdPostAsync(ep.HTTP, cmdBinary("app1", "device1", "set", "", []byte("again"), nil))
			p = rc.cmdReadPublish()
			if p.payload != "again" || p.id == late.id {
				t.Fatalf("PUBLISH %+v after the late PUBACK of %d", p, late.id)
			}
			rc.cmdPuback(p.id)
			cmdWantAnswer(t, cmdAwait(t, res), http.StatusAccepted)
		})
	}
}

// TestCommandDisconnectWhileWaiting proves that a device going away while its PUBACK is
// awaited ends the POST at once with 503, not at the acknowledgement timeout.
func TestCommandDisconnectWhileWaiting(t *testing.T) {
	const ackTimeout = 20 * time.Second
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry, Env: map[string]string{"COMMAND_ACK_TIMEOUT": ackTimeout.String()}})
	for _, v := range []byte{5, 4} {
		t.Run(fmt.Sprintf("protocol %d", v), func(t *testing.T) {
			cmdWaitConnections(t, ep, 0)
			rc := dialRaw(t, ep.MQTT, v, "device1@app1", "secret1")
			rc.cmdSubscribe(cmdFilter{"command/inbox//#", 1})
			res := cmdPostAsync(ep.HTTP, cmdBinary("app1", "device1", "set", "", []byte("bye"), nil))
			rc.cmdReadPublish()
			start := time.Now()
			_ = rc.conn.Close()
			got := cmdAwait(t, res)
			cmdWantAnswer(t, got, http.StatusServiceUnavailable)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the POST ended %v after the disconnect; want well before the %v timeout", d, ackTimeout)
			}
		})
	}
}

// TestCommandStatus proves every status of SPEC §7 through HTTP, in binary, structured and
// REST form, and that 2xx bodies are empty and others short plain text.
func TestCommandStatus(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	dev := cmdDial(t, ep, false, "app1", "device1", nil)
	dev.mustSubscribe(t, cmdFilter{"command/inbox//#", 1})
	cmdDial(t, ep, false, "app1", "stranger", nil) // connected, subscribed to nothing
	big := make([]byte, 256<<10+1)
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	tests := []struct {
		name      string
		req       func(payload string) cmdRequest
		want      int
		delivered string // command name it arrives as at device1; "" = not delivered
	}{
		{"binary", func(p string) cmdRequest { return cmdBinary("app1", "device1", "bin", "text/plain", []byte(p), nil) }, 202, "bin"},
		{"structured", func(p string) cmdRequest {
			return cmdStructured(t, "app1", "device1", "struct", map[string]any{"datacontenttype": "text/plain", "data": p})
		}, 202, "struct"},
		{"rest", func(p string) cmdRequest { return cmdREST("app1", "device1", "command=rest", "text/plain", []byte(p)) }, 202, "rest"},
		{"rest command with slash", func(p string) cmdRequest { return cmdREST("app1", "device1", "command=a%2Fb", "", []byte(p)) }, 202, "a/b"},
		{"alias", func(p string) cmdRequest { return cmdBinary("app1", "dev1-alias", "alias", "", []byte(p), nil) }, 202, "alias"},
		{"rest alias", func(p string) cmdRequest { return cmdREST("app1", "dev1-alias", "command=ralias", "", []byte(p)) }, 202, "ralias"},

		{"not a CloudEvent", func(p string) cmdRequest {
			return cmdRequest{header: map[string]string{"Content-Type": "text/plain"}, body: []byte(p)}
		}, 400, ""},
		{"wrong type", func(p string) cmdRequest {
			return cmdBinary("app1", "device1", "set", "", []byte(p), map[string]string{"type": "io.drogue.event.v1"})
		}, 400, ""},
		{"missing application", func(p string) cmdRequest {
			return cmdBinary("app1", "device1", "set", "", []byte(p), map[string]string{"application": ""})
		}, 400, ""},
		{"missing device", func(p string) cmdRequest {
			return cmdBinary("app1", "device1", "set", "", []byte(p), map[string]string{"device": ""})
		}, 400, ""},
		{"missing subject", func(p string) cmdRequest {
			return cmdBinary("app1", "device1", "set", "", []byte(p), map[string]string{"subject": ""})
		}, 400, ""},
		{"rest without command", func(p string) cmdRequest { return cmdREST("app1", "device1", "", "", []byte(p)) }, 400, ""},

		{"expired", func(p string) cmdRequest {
			return cmdBinary("app1", "device1", "set", "", []byte(p), map[string]string{"expirytime": past})
		}, 410, ""},
		{"structured expired", func(p string) cmdRequest {
			return cmdStructured(t, "app1", "device1", "set", map[string]any{"expirytime": past, "data": p})
		}, 410, ""},

		{"binary too large", func(string) cmdRequest { return cmdBinary("app1", "device1", "set", "", big, nil) }, 413, ""},
		{"structured too large", func(string) cmdRequest {
			return cmdStructured(t, "app1", "device1", "set", map[string]any{"datacontenttype": "text/plain", "data": string(big)})
		}, 413, ""},
		{"rest too large", func(string) cmdRequest { return cmdREST("app1", "device1", "command=set", "", big) }, 413, ""},

		{"unknown application", func(p string) cmdRequest { return cmdBinary("nope", "device1", "set", "", []byte(p), nil) }, 422, ""},
		{"disabled application", func(p string) cmdRequest { return cmdBinary("offapp", "device1", "set", "", []byte(p), nil) }, 422, ""},
		{"unknown device", func(p string) cmdRequest { return cmdBinary("app1", "nobody", "set", "", []byte(p), nil) }, 422, ""},
		{"disabled device", func(p string) cmdRequest { return cmdBinary("app1", "off-dev", "set", "", []byte(p), nil) }, 422, ""},
		{"rest unknown device", func(p string) cmdRequest { return cmdREST("app1", "nobody", "command=set", "", []byte(p)) }, 422, ""},

		{"offline device", func(p string) cmdRequest { return cmdBinary("app1", "sleeper", "set", "", []byte(p), nil) }, 503, ""},
		{"connected, not subscribed", func(p string) cmdRequest { return cmdBinary("app1", "stranger", "set", "", []byte(p), nil) }, 503, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload := "payload of " + tt.name
			cmdPost(t, ep.HTTP, tt.req(payload), tt.want)
			if tt.delivered != "" {
				dev.inbox.want(t, "command/inbox//"+tt.delivered, 1, payload)
			}
		})
	}
	dev.inbox.none(t, 300*time.Millisecond) // nothing refused was delivered after all
}

// TestCommandTooLargeForDevice proves 413 for a command the device's v5 Maximum Packet Size
// does not allow, while a small one still goes through.
func TestCommandTooLargeForDevice(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	maxSize := uint32(512)
	c := cmdDial(t, ep, false, "app1", "device1", func(cp *paho.Connect) {
		cp.Properties = &paho.ConnectProperties{MaximumPacketSize: &maxSize}
	})
	for _, q := range []byte{0, 1} {
		t.Run("QoS "+strconv.Itoa(int(q)), func(t *testing.T) {
			c.unsubscribe(t, "command/inbox//#")
			c.mustSubscribe(t, cmdFilter{"command/inbox//#", q})
			cmdPost(t, ep.HTTP, cmdBinary("app1", "device1", "set", "", make([]byte, 1000), nil), http.StatusRequestEntityTooLarge)
			cmdPost(t, ep.HTTP, cmdBinary("app1", "device1", "set", "", []byte("small"), nil), http.StatusAccepted)
			c.inbox.want(t, "command/inbox//set", q, "small")
		})
	}
}

// TestCommandEscapedDeviceName proves that a device whose name needs escaping in a URL path
// (dev/x) is reached in every form, the REST form with the name percent-encoded.
func TestCommandEscapedDeviceName(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: cmdRegistry})
	c := cmdDial(t, ep, false, "app1", "dev/x", nil)
	c.mustSubscribe(t, cmdFilter{"command/inbox//#", 1})
	tests := []struct {
		name string
		req  cmdRequest
	}{
		{"binary", cmdBinary("app1", "dev/x", "set", "", []byte("binary"), nil)},
		{"structured", cmdStructured(t, "app1", "dev/x", "set", map[string]any{"datacontenttype": "text/plain", "data": "structured"})},
		{"rest", cmdREST("app1", "dev%2Fx", "command=set", "", []byte("rest"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmdPost(t, ep.HTTP, tt.req, http.StatusAccepted)
			c.inbox.want(t, "command/inbox//set", 1, tt.name)
		})
	}
}
