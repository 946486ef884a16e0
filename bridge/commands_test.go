package bridge

import (
	"testing"

	"mqtt-endpoint/bridge/registry"
)

// TestParseFilter covers every row of the subscribe table (drogue-mqtt.md §6, SPEC §7).
func TestParseFilter(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		want   subscription
		ok     bool
	}{
		// accepted
		{"wildcard", "command/inbox/#", subscription{kind: filterAll}, true},
		{"plus wildcard", "command/inbox/+/#", subscription{kind: filterAll}, true},
		{"self", "command/inbox//#", subscription{kind: filterSelf}, true},
		{"named device", "command/inbox/device1/#", subscription{kind: filterNamed, device: "device1"}, true},
		{"named alias", "command/inbox/dev1-alias/#", subscription{kind: filterNamed, device: "dev1-alias"}, true},
		{"named with odd characters", "command/inbox/a b@c/#", subscription{kind: filterNamed, device: "a b@c"}, true},

		// refused: the examples of the table, and their neighbours
		{"exact command", "command/inbox/d/SET", subscription{}, false},
		{"two single-level wildcards", "command/inbox/+/+", subscription{}, false},
		{"inbox only", "command/inbox", subscription{}, false},
		{"inbox with slash", "command/inbox/", subscription{}, false},
		{"command wildcard", "command/#", subscription{}, false},
		{"telemetry", "telemetry/#", subscription{}, false},
		{"everything", "#", subscription{}, false},
		{"single level", "+", subscription{}, false},
		{"shared subscription", "$share/g/command/inbox/#", subscription{}, false},
		{"sys", "$SYS/#", subscription{}, false},
		{"leading slash", "/command/inbox/#", subscription{}, false},
		{"case matters", "Command/Inbox/#", subscription{}, false},
		{"plus without hash", "command/inbox/+", subscription{}, false},
		{"device without hash", "command/inbox/d", subscription{}, false},
		{"two device segments", "command/inbox/a/b/#", subscription{}, false},
		{"empty then slash", "command/inbox///#", subscription{}, false},
		{"hash in device segment", "command/inbox/#/#", subscription{}, false},
		{"partial plus", "command/inbox/a+/#", subscription{}, false},
		{"self then plus", "command/inbox//+", subscription{}, false},
		{"hash not last", "command/inbox/d/#/x", subscription{}, false},
		{"empty", "", subscription{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseFilter(tt.filter)
			if ok != tt.ok || got != tt.want {
				t.Errorf("parseFilter(%q) = %+v, %v; want %+v, %v", tt.filter, got, ok, tt.want, tt.ok)
			}
		})
	}
}

const routeRegistry = `
kind: Application
metadata: {name: app1}
---
kind: Device
metadata: {name: device1, application: app1}
spec:
  alias: [dev1-alias, dev1-other]
  gatewaySelector: {matchNames: [gateway1]}
---
kind: Device
metadata: {name: device2, application: app1}
spec:
  gatewaySelector: {matchNames: [gw-alias]}
---
kind: Device
metadata: {name: gateway1, application: app1}
spec:
  alias: [gw-alias]
`

func routeFixture(tb testing.TB) (*registry.Registry, map[string]*registry.Device) {
	tb.Helper()
	reg, err := registry.Parse("route.yaml", []byte(routeRegistry))
	if err != nil {
		tb.Fatal(err)
	}
	devs := map[string]*registry.Device{}
	for _, d := range reg.Devices("app1") {
		devs[d.Name] = d
	}
	return reg, devs
}

// TestCommandRoute checks which topic and QoS a command takes on one connection, for the
// device itself and for a gateway of it, with every kind of filter and their overlaps.
func TestCommandRoute(t *testing.T) {
	reg, devs := routeFixture(t)
	tests := []struct {
		name    string
		subs    map[string]byte // filter → granted QoS
		target  string
		isSelf  bool
		command string
		topic   string // "" = not routed to this connection
		qos     byte
	}{
		// the device itself
		{"self filter", map[string]byte{"command/inbox//#": 1}, "device1", true, "set", "command/inbox//set", 1},
		{"wildcard for self", map[string]byte{"command/inbox/#": 0}, "device1", true, "set", "command/inbox//set", 0},
		{"plus wildcard for self", map[string]byte{"command/inbox/+/#": 1}, "device1", true, "set", "command/inbox//set", 1},
		{"own name", map[string]byte{"command/inbox/device1/#": 1}, "device1", true, "set", "command/inbox/device1/set", 1},
		{"own alias keeps the alias", map[string]byte{"command/inbox/dev1-alias/#": 0}, "device1", true, "set", "command/inbox/dev1-alias/set", 0},
		{"name with slash verbatim", map[string]byte{"command/inbox//#": 0}, "device1", true, "a/b", "command/inbox//a/b", 0},
		{"empty name", map[string]byte{"command/inbox//#": 0}, "device1", true, "", "command/inbox//", 0},
		{"other device's filter", map[string]byte{"command/inbox/device2/#": 1}, "device1", true, "set", "", 0},
		{"unknown device's filter", map[string]byte{"command/inbox/nobody/#": 1}, "device1", true, "set", "", 0},
		{"no subscription", map[string]byte{}, "device1", true, "set", "", 0},

		// a gateway of the target
		{"gateway wildcard", map[string]byte{"command/inbox/#": 1}, "device1", false, "set", "command/inbox/device1/set", 1},
		{"gateway plus wildcard", map[string]byte{"command/inbox/+/#": 0}, "device1", false, "set", "command/inbox/device1/set", 0},
		{"gateway named", map[string]byte{"command/inbox/device1/#": 1}, "device1", false, "set", "command/inbox/device1/set", 1},
		{"gateway named by alias", map[string]byte{"command/inbox/dev1-alias/#": 1}, "device1", false, "set", "command/inbox/dev1-alias/set", 1},
		{"gateway self filter is only its own", map[string]byte{"command/inbox//#": 1}, "device1", false, "set", "", 0},
		{"gateway named other device", map[string]byte{"command/inbox/device2/#": 1}, "device1", false, "set", "", 0},
		{"gateway own name", map[string]byte{"command/inbox/gateway1/#": 1}, "device1", false, "set", "", 0},
		{"gateway name with slash", map[string]byte{"command/inbox/#": 0}, "device1", false, "a/b", "command/inbox/device1/a/b", 0},

		// overlapping filters: one topic, the highest QoS of the filters matching it
		{"self overlaps", map[string]byte{"command/inbox/#": 0, "command/inbox//#": 1, "command/inbox/device1/#": 0, "command/inbox/+/#": 0}, "device1", true, "set", "command/inbox//set", 1},
		{"self and own name", map[string]byte{"command/inbox//#": 0, "command/inbox/device1/#": 0}, "device1", true, "set", "command/inbox//set", 0},
		{"gateway overlaps ignore its self filter", map[string]byte{"command/inbox/#": 0, "command/inbox/+/#": 0, "command/inbox/device1/#": 0, "command/inbox//#": 1}, "device1", false, "set", "command/inbox/device1/set", 0},
		{"gateway overlaps take the highest QoS", map[string]byte{"command/inbox/#": 0, "command/inbox/device1/#": 1}, "device1", false, "set", "command/inbox/device1/set", 1},
		{"gateway name and alias prefer the name", map[string]byte{"command/inbox/dev1-alias/#": 1, "command/inbox/device1/#": 1, "command/inbox/dev1-other/#": 1}, "device1", false, "set", "command/inbox/device1/set", 1},
		{"gateway wildcard and alias prefer the name", map[string]byte{"command/inbox/dev1-alias/#": 1, "command/inbox/#": 1}, "device1", false, "set", "command/inbox/device1/set", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Map order varies between runs; repeat so that an order-dependent result shows.
			for range 20 {
				cs := newCommandState(0)
				for f, q := range tt.subs {
					sub, ok := parseFilter(f)
					if !ok {
						t.Fatalf("filter %q does not parse", f)
					}
					sub.qos = q
					cs.subscribe(f, sub)
				}
				topic, qos, ok := cs.route(reg, "app1", devs[tt.target], tt.isSelf, tt.command)
				if ok != (tt.topic != "") || topic != tt.topic || (ok && qos != tt.qos) {
					t.Fatalf("route = %q QoS %d ok=%v; want %q QoS %d", topic, qos, ok, tt.topic, tt.qos)
				}
			}
		})
	}
}

// TestCommandRouteUnsubscribe checks that an unsubscribed filter no longer routes and that
// re-subscribing replaces the granted QoS.
func TestCommandRouteUnsubscribe(t *testing.T) {
	reg, devs := routeFixture(t)
	cs := newCommandState(0)
	sub := func(f string, q byte) {
		s, ok := parseFilter(f)
		if !ok {
			t.Fatalf("filter %q does not parse", f)
		}
		s.qos = q
		cs.subscribe(f, s)
	}
	steps := []struct {
		name  string
		do    func()
		topic string
		qos   byte
	}{
		{"subscribed", func() { sub("command/inbox/#", 1) }, "command/inbox//set", 1},
		{"resubscribed at QoS 0", func() { sub("command/inbox/#", 0) }, "command/inbox//set", 0},
		{"second filter", func() { sub("command/inbox/device1/#", 1) }, "command/inbox//set", 0},
		{"first removed", func() { cs.unsubscribe("command/inbox/#") }, "command/inbox/device1/set", 1},
		{"unknown removed", func() { cs.unsubscribe("command/inbox//#") }, "command/inbox/device1/set", 1},
		{"all removed", func() { cs.unsubscribe("command/inbox/device1/#") }, "", 0},
	}
	for _, st := range steps {
		st.do()
		topic, qos, ok := cs.route(reg, "app1", devs["device1"], true, "set")
		if ok != (st.topic != "") || topic != st.topic || qos != st.qos {
			t.Errorf("%s: route = %q QoS %d ok=%v; want %q QoS %d", st.name, topic, qos, ok, st.topic, st.qos)
		}
	}
}

// TestCommandPacketIDs checks the endpoint's own packet ids: never 0, never one still waiting
// for its PUBACK, and a PUBACK reaches exactly the delivery it belongs to.
func TestCommandPacketIDs(t *testing.T) {
	cs := newCommandState(0)
	cs.nextID = 65534
	a, cha := cs.register() // 65535
	b, chb := cs.register() // wraps past 0 to 1
	if a != 65535 || b != 1 {
		t.Fatalf("ids %d, %d; want 65535, 1", a, b)
	}
	cs.nextID = 0
	c, _ := cs.register() // 1 is busy
	if c != 2 {
		t.Fatalf("id %d, want 2 (1 is waiting)", c)
	}
	if !cs.acked(b, 0x10) {
		t.Fatal("PUBACK of a waiting id not taken")
	}
	if got := <-chb; got != 0x10 {
		t.Errorf("reason %#x, want 0x10", got)
	}
	if cs.acked(b, 0) {
		t.Error("second PUBACK of the same id taken")
	}
	cs.forget(a)
	if cs.acked(a, 0) {
		t.Error("PUBACK of a forgotten id taken")
	}
	select {
	case r := <-cha:
		t.Errorf("forgotten delivery got reason %#x", r)
	default:
	}
}

// BenchmarkRoute measures routing one command on a gateway connection with overlapping filters.
func BenchmarkRoute(b *testing.B) {
	reg, devs := routeFixture(b)
	cs := newCommandState(0)
	for _, f := range []string{"command/inbox/#", "command/inbox//#", "command/inbox/dev1-alias/#", "command/inbox/device2/#"} {
		s, _ := parseFilter(f)
		s.qos = 1
		cs.subscribe(f, s)
	}
	target := devs["device1"]
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := cs.route(reg, "app1", target, false, "set"); !ok {
			b.Fatal("not routed")
		}
	}
}
