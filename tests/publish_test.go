package tests

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/eclipse/paho.golang/paho"
	"github.com/google/uuid"
)

const (
	typeEvent      = "io.drogue.event.v1"
	typeConnection = "io.drogue.connection.v1"
)

// ext returns an extension of ev as a string ("" when absent).
func ext(ev cloudevents.Event, name string) string {
	v, ok := ev.Extensions()[name]
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// wantEvent checks the attributes SPEC §6 defines.
func wantEvent(t testing.TB, ev cloudevents.Event, want map[string]string) {
	t.Helper()
	got := map[string]string{
		"type":            ev.Type(),
		"source":          ev.Source(),
		"subject":         ev.Subject(),
		"datacontenttype": ev.DataContentType(),
		"data":            string(ev.Data()),
	}
	for _, e := range []string{"application", "device", "sender", "partitionkey", "instance", "applicationuid", "deviceuid", "senderuid"} {
		got[e] = ext(ev, e)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("event %s = %q, want %q (event: %s)", k, got[k], v, ev)
		}
	}
	if _, err := uuid.Parse(ev.ID()); err != nil {
		t.Errorf("event id %q is not a UUID", ev.ID())
	}
	if ev.SpecVersion() != "1.0" {
		t.Errorf("specversion %q", ev.SpecVersion())
	}
	if ev.Time().IsZero() || time.Since(ev.Time()) > time.Minute {
		t.Errorf("event time %v is not the arrival time", ev.Time())
	}
}

func TestPublishSelfEventAttributes(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})

	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	s.next(t, typeConnection)
	if _, err := c.publish(t, "temperature", 1, `{"t":21}`, nil); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, s.nextData(t), map[string]string{
		"type": typeEvent, "source": "drogue://app1/device1", "subject": "temperature",
		"datacontenttype": "application/json", "data": `{"t":21}`,
		"application": "app1", "device": "device1", "sender": "device1",
		"partitionkey": "app1/device1", "instance": "drogue",
		"applicationuid": "uid-app1", "deviceuid": "uid-device1", "senderuid": "uid-device1",
	})
}

func TestPublishV3AndQoS0(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL, Env: map[string]string{"INSTANCE": "lab"}})

	c := connectV3(t, ep.MQTT, "device1@app1", "secret1")
	if err := c.publish(t, "status", 0, "hello"); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, s.nextData(t), map[string]string{
		"subject": "status", "datacontenttype": "application/octet-stream", "data": "hello", "instance": "lab",
		"device": "device1", "sender": "device1",
	})
	if err := c.publish(t, "status", 1, "42"); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, s.nextData(t), map[string]string{"datacontenttype": "application/json", "data": "42"})
}

func TestPublishOnBehalfOfDevice(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	gw := connectV5(t, ep.MQTT, "gateway1@app1", "gwsecret")

	// gatewaySelector.matchNames names the gateway; the device name needs percent-encoding.
	if _, err := gw.publish(t, "telemetry/my-dev_1", 1, `{"a":1}`, nil); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, s.nextData(t), map[string]string{
		"source": "drogue://app1/my%2Ddev%5F1", "subject": "telemetry",
		"device": "my-dev_1", "deviceuid": "uid-mydev",
		"sender": "gateway1", "senderuid": "uid-gw1", "partitionkey": "app1/gateway1",
	})
	// matchNames names the gateway by alias; the device is addressed by its alias; the event carries names.
	if _, err := gw.publish(t, "telemetry/dba", 1, `{}`, nil); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, s.nextData(t), map[string]string{"device": "dev-by-alias", "sender": "gateway1", "source": "drogue://app1/dev%2Dby%2Dalias"})
	// Naming itself counts as self.
	if _, err := gw.publish(t, "telemetry/gateway1", 1, `{}`, nil); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, s.nextData(t), map[string]string{"device": "gateway1", "sender": "gateway1"})

	refused := []struct{ topic, why string }{
		{"telemetry/lonely", "device does not name the gateway"},
		{"telemetry/nobody", "unknown device"},
		{"telemetry/", "empty device"},
	}
	for _, r := range refused {
		res, err := gw.publish(t, r.topic, 1, `{}`, nil)
		if err == nil || res == nil || res.ReasonCode != 0x87 {
			t.Errorf("%s (%s): want PUBACK 0x87, got %+v, %v", r.topic, r.why, res, err)
		}
	}
	// A device of another application with the gateway's name is not reachable either.
	other := connectV5(t, ep.MQTT, "device1@app2", "secret2")
	if res, err := other.publish(t, "telemetry/my-dev_1", 1, `{}`, nil); err == nil || res.ReasonCode != 0x87 {
		t.Errorf("cross-application publish on behalf: want 0x87, got %+v, %v", res, err)
	}
	s.none(t, typeEvent, 300*time.Millisecond)
}

func TestPublishRefusedV3ClosesConnection(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	for _, topic := range []string{"telemetry/lonely", "a/b/c"} {
		t.Run(topic, func(t *testing.T) {
			c := connectV3(t, ep.MQTT, "gateway1@app1", "gwsecret")
			err := c.publish(t, topic, 1, "x")
			c.waitLost(t)
			if err == nil {
				t.Fatalf("publish to %q was acknowledged", topic)
			}
		})
	}
	s.none(t, typeEvent, 200*time.Millisecond)
}

func TestPublishTopicInvalid(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	for _, topic := range []string{"a/b/c", "a/b/c/d"} {
		res, err := c.publish(t, topic, 1, "x", nil)
		if err == nil || res == nil || res.ReasonCode != 0x90 {
			t.Errorf("%q: want PUBACK 0x90, got %+v, %v", topic, res, err)
		}
	}
	// QoS 0 refusals on v5 are dropped silently and the connection stays usable.
	if _, err := c.publish(t, "a/b/c", 0, "x", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.publish(t, "ok", 1, "x", nil); err != nil {
		t.Fatalf("connection unusable after refused publishes: %v", err)
	}
	if ev := s.nextData(t); ev.Subject() != "ok" {
		t.Fatalf("unexpected event %s", ev)
	}
	// The silent drops are counted.
	if got := metricValue(t, ep, `mqtt_endpoint_publishes_total{outcome="refused"}`); got < 3 {
		t.Fatalf("refused publishes counted %v, want 3", got)
	}
}

// metricValue reads one sample from the endpoint's /metrics.
func metricValue(t testing.TB, ep *endpoint, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + ep.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found in:\n%s", series, body)
	return 0
}

func TestPublishDialects(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})

	// plainTopic with devicePrefix (application setting).
	c := connectV5(t, ep.MQTT, "sensor1@plain-app", "s1")
	steps := []struct {
		topic         string
		device, chann string
	}{
		{"sensor1/a/b//c", "sensor1", "a/b//c"},
		{"/x/y", "sensor1", "x/y"},
		{"sensor2/data", "sensor2", "data"},
	}
	for _, st := range steps {
		if _, err := c.publish(t, st.topic, 1, "{}", nil); err != nil {
			t.Fatalf("%s: %v", st.topic, err)
		}
		wantEvent(t, s.nextData(t), map[string]string{"device": st.device, "subject": st.chann, "sender": "sensor1", "application": "plain-app"})
	}
	if res, err := c.publish(t, "noslash", 1, "{}", nil); err == nil || res.ReasonCode != 0x90 {
		t.Errorf("plainTopic prefix without slash: want 0x90, got %+v %v", res, err)
	}

	// The device's own dialect wins over the application's.
	v1 := connectV5(t, ep.MQTT, "v1dev@plain-app", "v1")
	if res, err := v1.publish(t, "a/b/c", 1, "{}", nil); err == nil || res.ReasonCode != 0x90 {
		t.Errorf("drogue/v1 device in plainTopic app: want 0x90 for a/b/c, got %+v %v", res, err)
	}
	if _, err := v1.publish(t, "temp", 1, "{}", nil); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, s.nextData(t), map[string]string{"device": "v1dev", "subject": "temp"})

	// plainTopic without prefix: the whole topic is the channel.
	p := connectV5(t, ep.MQTT, "p1@plain-whole", "p1")
	if _, err := p.publish(t, "/a/b/c/", 1, "{}", nil); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, s.nextData(t), map[string]string{"device": "p1", "subject": "/a/b/c/"})
}

func TestPublishContentType(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	rows := []struct {
		name, ct, payload, want string
		refused                 bool
	}{
		{"sniffed json object", "", `{"a":1}`, "application/json", false},
		{"sniffed json null", "", `null`, "application/json", false},
		{"sniffed binary", "", "\x00\x01", "application/octet-stream", false},
		{"empty payload", "", "", "application/octet-stream", false},
		{"json with charset normalised", "application/json; charset=utf-8", `[1]`, "application/json", false},
		{"text/json normalised", "text/json", `"s"`, "application/json", false},
		{"+json normalised", "application/vnd.acme+json", `{}`, "application/json", false},
		{"other passed through", "text/plain; charset=utf-8", `{"not":"sniffed"}`, "text/plain; charset=utf-8", false},
		{"invalid json refused", "application/json", `{nope`, "", true},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			var props *paho.PublishProperties
			if r.ct != "" {
				props = &paho.PublishProperties{ContentType: r.ct}
			}
			res, err := c.publish(t, "ct", 1, r.payload, props)
			if r.refused {
				if err == nil || res == nil || res.ReasonCode != 0x99 {
					t.Fatalf("want PUBACK 0x99, got %+v, %v", res, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ev := s.nextData(t)
			if ev.DataContentType() != r.want || string(ev.Data()) != r.payload {
				t.Fatalf("datacontenttype %q data %q, want %q %q", ev.DataContentType(), ev.Data(), r.want, r.payload)
			}
		})
	}
}

func TestQoS1AckWaitsForSink(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	s.next(t, typeConnection)

	release := s.hold()
	defer release()
	acked := make(chan error, 1)
	go func() {
		_, err := c.publish(t, "slow", 1, "{}", nil)
		acked <- err
	}()
	waitFor(t, "the event to reach the sink", func() bool { return s.Requests() >= 2 })
	select {
	case err := <-acked:
		t.Fatalf("PUBACK before the sink answered (err=%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	if err := <-acked; err != nil {
		t.Fatalf("PUBACK after the sink answered: %v", err)
	}
	s.nextData(t)
}

func TestQoS1Pipelined(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	s.next(t, typeConnection)
	base := s.Requests()

	release := s.hold()
	defer release()
	const n = 8
	acked := make(chan error, n)
	for i := range n {
		go func() {
			_, err := c.publish(t, "p", 1, fmt.Sprint(i), nil)
			acked <- err
		}()
	}
	// All of them reach the sink while none has been answered: one connection, several in flight.
	waitFor(t, fmt.Sprintf("%d concurrent sink requests", n), func() bool { return s.Requests() >= base+n })
	release()
	for range n {
		if err := <-acked; err != nil {
			t.Fatal(err)
		}
	}
}

// TestReceiveMaximumBoundsInFlight: a connection has at most Receive Maximum publishes at the
// sink; further ones wait (the connection is not read) and are acknowledged later, in order.
func TestReceiveMaximumBoundsInFlight(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	pc := connectV5(t, ep.MQTT, "lonely@app1", "lonely")
	window := int(*pc.Connack.Properties.ReceiveMaximum)
	s.next(t, typeConnection)

	c := dialRaw(t, ep.MQTT, 5, "device1@app1", "secret1")
	s.next(t, typeConnection)
	base := s.Requests()
	release := s.hold()
	defer release()
	n := window + 5
	for i := range n {
		c.publish("w", 1, uint16(i+1), []byte(strconv.Itoa(i)))
	}
	waitFor(t, "a full window at the sink", func() bool { return s.Requests() >= base+window })
	time.Sleep(300 * time.Millisecond) // nothing more may arrive while the window is full
	if got := s.Requests() - base; got != window {
		t.Fatalf("%d publishes at the sink at once, want the Receive Maximum %d", got, window)
	}
	release()
	for i := range n {
		if id, rc := c.read().puback(); id != uint16(i+1) || rc != 0 {
			t.Fatalf("ack %d: packet %d rc 0x%02x", i, id, rc)
		}
	}
}

func TestSinkUnavailableV5(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	s.next(t, typeConnection)

	s.answer(http.StatusServiceUnavailable, 0)
	res, err := c.publish(t, "t", 1, `{"n":1}`, nil)
	if err == nil || res == nil || res.ReasonCode != 0x89 {
		t.Fatalf("sink answering 503: want PUBACK 0x89, got %+v, %v", res, err)
	}
	s.answer(0, 0)
	// The client's retry delivers the event.
	if _, err := c.publish(t, "t", 1, `{"n":1}`, nil); err != nil {
		t.Fatal(err)
	}
	if ev := s.nextData(t); string(ev.Data()) != `{"n":1}` {
		t.Fatalf("retried event: %s", ev)
	}
}

func TestSinkUnavailableV3(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV3(t, ep.MQTT, "device1@app1", "secret1")
	s.next(t, typeConnection)

	s.answer(http.StatusServiceUnavailable, 0)
	err := c.publish(t, "t", 1, "m1")
	c.waitLost(t)
	if err == nil {
		t.Fatal("a publish the sink refused was acknowledged")
	}
	s.answer(0, 0)
	// Reconnect and send again, as a v3.1.1 client does: the event arrives.
	c2 := connectV3(t, ep.MQTT, "device1@app1", "secret1")
	if err := c2.publish(t, "t", 1, "m1"); err != nil {
		t.Fatal(err)
	}
	for {
		ev := s.nextData(t)
		if string(ev.Data()) == "m1" {
			break
		}
	}
}

func TestNoAcknowledgedEventLost(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")

	const n = 200
	type result struct {
		payload string
		err     error
	}
	results := make(chan result, n)
	flip := make(chan struct{})
	go func() {
		// The sink fails for a while in the middle of the run.
		<-flip
		s.answer(http.StatusBadGateway, 0)
		time.Sleep(50 * time.Millisecond)
		s.answer(0, 0)
	}()
	sem := make(chan struct{}, 10)
	for i := range n {
		if i == n/3 {
			close(flip)
		}
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			p := fmt.Sprintf("msg-%03d", i)
			_, err := c.publish(t, "seq", 1, p, nil)
			results <- result{p, err}
		}()
	}
	acked := map[string]bool{}
	for range n {
		r := <-results
		if r.err == nil {
			acked[r.payload] = true
		}
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	waitFor(t, "every acknowledged event at the sink", func() bool {
		got := map[string]bool{}
		for _, ev := range s.Accepted() {
			got[string(ev.Data())] = true
		}
		for p := range acked {
			if !got[p] {
				return false
			}
		}
		return true
	})
	t.Logf("%d of %d publishes acknowledged, all present at the sink", len(acked), n)
}

func TestNotReadyWithoutSink(t *testing.T) {
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t)})
	resp, err := http.Get("http://" + ep.HTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without K_SINK: %d, want 503", resp.StatusCode)
	}
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	res, err := c.publish(t, "t", 1, "{}", nil)
	if err == nil || res == nil || res.ReasonCode != 0x89 {
		t.Fatalf("publish without sink: want 0x89 server busy, got %+v, %v", res, err)
	}
	v3 := connectV3(t, ep.MQTT, "device1@app2", "secret2")
	if err := v3.publish(t, "t", 1, "x"); err == nil {
		t.Fatal("v3 publish without sink was acknowledged")
	}
	v3.waitLost(t)
}

func TestCEOverridesApplied(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL,
		Env: map[string]string{"K_CE_OVERRIDES": `{"extensions":{"cluster":"east","instance":"overridden"}}`}})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	if _, err := c.publish(t, "t", 1, "{}", nil); err != nil {
		t.Fatal(err)
	}
	ev := s.nextData(t)
	if ext(ev, "cluster") != "east" || ext(ev, "instance") != "overridden" {
		t.Fatalf("K_CE_OVERRIDES not applied last: %s", ev)
	}
}

func TestNotABroker(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})

	spy := connectV5(t, ep.MQTT, "lonely@app1", "lonely")
	received := make(chan string, 10)
	spy.AddOnPublishReceived(func(pr paho.PublishReceived) (bool, error) {
		received <- pr.Packet.Topic
		return true, nil
	})
	ctx := t.Context()
	sa, err := spy.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: "#", QoS: 1}, {Topic: "temperature", QoS: 1}, {Topic: "$SYS/#", QoS: 0},
	}})
	if err != nil && sa == nil {
		t.Fatal(err)
	}
	for i, rc := range sa.Reasons {
		if rc < 0x80 {
			t.Errorf("subscription %d granted (0x%02x); only command topics may be subscribed", i, rc)
		}
	}
	// A will with a retained flag and publishes with retain: nothing reaches the spy, ever.
	dev, err := dialV5(t, ep.MQTT, func(cp *paho.Connect) {
		cp.Username, cp.UsernameFlag = "device1@app1", true
		cp.Password, cp.PasswordFlag = []byte("secret1"), true
		cp.WillMessage = &paho.WillMessage{Topic: "temperature", Payload: []byte("gone"), QoS: 1}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Publish(ctx, &paho.Publish{Topic: "temperature", QoS: 1, Payload: []byte(`{"t":1}`)}); err != nil {
		t.Fatal(err)
	}
	// paho v5 will not send retain to a server that says it has none; MQTT 3.1.1 clients do.
	v3 := connectV3(t, ep.MQTT, "gateway1@app1", "gwsecret")
	if tok := v3.Publish("temperature", 1, true, `{"t":2}`); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("retained v3 publish: %v", tok.Error())
	}
	for range 2 {
		if ev := s.nextData(t); ev.Subject() != "temperature" {
			t.Fatalf("unexpected event %s", ev)
		}
	}
	_ = dev.Client.Disconnect(&paho.Disconnect{ReasonCode: 0x04}) // disconnect with will

	// A new subscriber would get a retained message at once, if one had been stored.
	late := connectV5(t, ep.MQTT, "bdev@app1", "bcrypt-secret")
	late.AddOnPublishReceived(func(pr paho.PublishReceived) (bool, error) {
		received <- pr.Packet.Topic
		return true, nil
	})
	_, _ = late.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "temperature", QoS: 1}}})
	if will := s.nextData(t); will.Subject() != "temperature" || string(will.Data()) != "gone" {
		t.Fatalf("will event: %s", will)
	}
	select {
	case topic := <-received:
		t.Fatalf("a device received a message on %q", topic)
	case <-time.After(500 * time.Millisecond):
	}
}

func TestConnackAdvertisesLimits(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV5(t, ep.MQTT, "device1@app1", "secret1")
	p := c.Connack.Properties
	if p == nil {
		t.Fatal("CONNACK without properties")
	}
	if p.ReceiveMaximum == nil || *p.ReceiveMaximum == 0 || *p.ReceiveMaximum > 1024 {
		t.Errorf("Receive Maximum %v", p.ReceiveMaximum)
	}
	if p.MaximumQoS == nil || *p.MaximumQoS != 1 {
		t.Errorf("Maximum QoS %v, want 1", p.MaximumQoS)
	}
	if p.RetainAvailable {
		t.Errorf("Retain Available true, want false")
	}
	if p.MaximumPacketSize == nil || *p.MaximumPacketSize == 0 {
		t.Errorf("Maximum Packet Size %v", p.MaximumPacketSize)
	}
	if p.TopicAliasMaximum == nil {
		t.Errorf("Topic Alias Maximum not advertised")
	}
	if c.Connack.SessionPresent {
		t.Errorf("session present")
	}
}

func TestQoS2Refused(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := dialRaw(t, ep.MQTT, 5, "device1@app1", "secret1")
	c.publish("t", 2, 1, []byte("{}"))
	p := c.read()
	if p.typ != 14 || p.reason() != 0x9B {
		t.Fatalf("QoS 2 publish: got packet type %d reason 0x%02x, want DISCONNECT 0x9B", p.typ, p.reason())
	}
	v3 := dialRaw(t, ep.MQTT, 4, "device1@app2", "secret2")
	v3.publish("t", 2, 1, []byte("{}"))
	if p, err := v3.tryRead(10 * time.Second); err == nil {
		t.Fatalf("v3.1.1 QoS 2 publish: got packet type %d, want the connection closed", p.typ)
	}
	s.none(t, typeEvent, 200*time.Millisecond)
}

func TestPacketTooLarge(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	pc := connectV5(t, ep.MQTT, "lonely@app1", "lonely")
	limit := *pc.Connack.Properties.MaximumPacketSize

	c := dialRaw(t, ep.MQTT, 5, "device1@app1", "secret1")
	c.publish("t", 1, 1, make([]byte, limit)) // the packet is a few bytes over the advertised limit
	// The connection is closed (a DISCONNECT 0x95 first is fine too); nothing is acknowledged.
	if p, err := c.tryRead(10 * time.Second); err == nil && (p.typ != 14 || p.reason() != 0x95) {
		t.Fatalf("oversized publish answered with packet type %d", p.typ)
	} else if err == nil {
		if _, err := c.tryRead(10 * time.Second); err == nil {
			t.Fatal("connection still open after DISCONNECT")
		}
	}
	// The packet at the limit is accepted.
	ok := dialRaw(t, ep.MQTT, 5, "device1@app2", "secret2")
	ok.publish("t", 1, 7, make([]byte, int(limit)-64))
	if id, rc := ok.read().puback(); id != 7 || rc != 0 {
		t.Fatalf("publish below the limit: PUBACK id %d rc 0x%02x", id, rc)
	}
	s.nextData(t)
}

func TestQoS1AcksInPublishOrder(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	// The sink answers the first publishes last: acknowledgements must still follow PUBLISH order.
	s.delayFor = func(data string) time.Duration {
		switch data {
		case "0":
			return 300 * time.Millisecond
		case "1":
			return 150 * time.Millisecond
		}
		return 0
	}
	for _, v := range []byte{5, 4} {
		c := dialRaw(t, ep.MQTT, v, "device1@app1", "secret1")
		for i := range 6 {
			c.publish("seq", 1, uint16(100+i), []byte(fmt.Sprint(i)))
		}
		for i := range 6 {
			id, rc := c.read().puback()
			if id != uint16(100+i) || rc != 0 {
				t.Fatalf("v%d: ack %d is for packet %d (rc 0x%02x), want %d", v, i, id, rc, 100+i)
			}
		}
	}
}

func TestSysTopicRefused(t *testing.T) {
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := dialRaw(t, ep.MQTT, 5, "device1@app1", "secret1")
	c.publish("$SYS/broker", 1, 3, []byte("x"))
	if id, rc := c.read().puback(); id != 3 || rc != 0x87 {
		t.Fatalf("$SYS publish: PUBACK id %d rc 0x%02x, want 0x87", id, rc)
	}
	s.none(t, typeEvent, 200*time.Millisecond)
}

// TestEventOrder: a consumer sees connected, the device's events, then disconnected, even when
// the sink is slow with a best-effort (QoS 0) event sent right before the disconnect.
func TestEventOrder(t *testing.T) {
	s := newSink(t)
	s.delayFor = func(data string) time.Duration {
		if data == "last-words" {
			return 300 * time.Millisecond
		}
		return 0
	}
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	c := connectV3(t, ep.MQTT, "device1@app1", "secret1")
	if err := c.publish(t, "t", 0, "last-words"); err != nil {
		t.Fatal(err)
	}
	c.Disconnect(100)
	want := []string{`{"connected":true}`, "last-words", `{"connected":false}`}
	for i, w := range want {
		if ev := s.next(t, ""); string(ev.Data()) != w {
			t.Fatalf("event %d: %s, want data %s", i, ev, w)
		}
	}
}
