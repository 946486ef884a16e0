package tests

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMosquittoPub publishes with Debian's mosquitto_pub, MQTT 3.1.1 and 5, QoS 0 and 1.
func TestMosquittoPub(t *testing.T) {
	pub := requireTool(t, "mosquitto_pub")
	s := newSink(t)
	ep := startEndpoint(t, endpointConfig{Registry: testRegistry(t), Sink: s.URL})
	host, port, _ := strings.Cut(ep.MQTT, ":")
	for _, v := range []string{"mqttv311", "mqttv5"} {
		for _, q := range []string{"0", "1"} {
			t.Run(v+"/qos"+q, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, pub, "-h", host, "-p", port, "-V", v, "-q", q,
					"-i", "mosq-"+v, "-u", "device1@app1", "-P", "secret1",
					"-t", "temperature", "-m", `{"t":21,"v":"`+v+`"}`).CombinedOutput()
				if err != nil {
					t.Fatalf("mosquitto_pub: %v\n%s", err, out)
				}
				var ev = s.nextData(t)
				var data map[string]any
				if err := json.Unmarshal(ev.Data(), &data); err != nil || data["v"] != v {
					t.Fatalf("event data %s", ev.Data())
				}
				wantEvent(t, ev, map[string]string{"subject": "temperature", "device": "device1", "datacontenttype": "application/json"})
			})
		}
	}
	t.Run("refused password", func(t *testing.T) {
		out, err := exec.Command(pub, "-h", host, "-p", port, "-V", "mqttv5", "-u", "device1@app1", "-P", "wrong",
			"-t", "t", "-m", "x").CombinedOutput()
		if err == nil {
			t.Fatalf("mosquitto_pub with a wrong password succeeded: %s", out)
		}
		if !strings.Contains(strings.ToLower(string(out)), "bad user name or password") {
			t.Fatalf("mosquitto_pub output does not name the refusal: %s", out)
		}
	})
}

// TestDevModeConsole is the README's first-run path: --dev prints events on stdout.
func TestDevModeConsole(t *testing.T) {
	pub := requireTool(t, "mosquitto_pub")
	ep := startEndpoint(t, endpointConfig{Dev: true})
	host, port, _ := strings.Cut(ep.MQTT, ":")
	out, err := exec.Command(pub, "-h", host, "-p", port, "-q", "1", "-u", "device1@example-app", "-P", "hey-rodney",
		"-t", "temperature", "-m", `{"t":21}`).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub: %v\n%s", err, out)
	}
	waitFor(t, "the event on stdout", func() bool { return strings.Contains(ep.Stdout.String(), `"subject":"temperature"`) })
	for _, line := range strings.Split(strings.TrimSpace(ep.Stdout.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("stdout line is not one JSON CloudEvent: %q", line)
		}
		if ev["subject"] == "temperature" {
			if ev["source"] != "drogue://example-app/device1" || ev["specversion"] != "1.0" {
				t.Fatalf("dev event: %s", line)
			}
			if d, ok := ev["data"].(map[string]any); !ok || d["t"] != float64(21) {
				t.Fatalf("dev event data: %s", line)
			}
		}
	}
}
