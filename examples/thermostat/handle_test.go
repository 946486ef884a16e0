package function

import (
	"context"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// temperature returns a telemetry event as the mqtt-endpoint emits it for a
// publish of data on topic "temperature"; edit, if not nil, modifies it.
func temperature(data string, edit func(*event.Event)) event.Event {
	e := event.New()
	e.SetID("8d7d5ea4-3c2e-4a9b-9d7c-2f1a0a3b4c5d")
	e.SetType("io.drogue.event.v1")
	e.SetSource("drogue://app1/thermo01")
	e.SetSubject("temperature")
	e.SetExtension("application", "app1")
	e.SetExtension("device", "thermo01")
	e.SetExtension("sender", "thermo01")
	if err := e.SetData(event.ApplicationJSON, []byte(data)); err != nil {
		panic(err)
	}
	if edit != nil {
		edit(&e)
	}
	return e
}

func TestHandle(t *testing.T) {
	tests := []struct {
		name      string
		threshold string // THRESHOLD; "" = unset
		in        event.Event
		want      string // the command's data; "" = no reply
	}{
		{name: "above threshold", in: temperature(`{"temp":25.5}`, nil), want: `{"fan":"on"}`},
		{name: "at threshold", in: temperature(`{"temp":25}`, nil)},
		{name: "within band", in: temperature(`{"temp":23.5}`, nil)},
		{name: "at threshold-2", in: temperature(`{"temp":23}`, nil)},
		{name: "below threshold-2", in: temperature(`{"temp":22.9}`, nil), want: `{"fan":"off"}`},
		{name: "negative", in: temperature(`{"temp":-4}`, nil), want: `{"fan":"off"}`},
		{name: "extra fields", in: temperature(`{"temp":30,"hum":40}`, nil), want: `{"fan":"on"}`},
		{name: "THRESHOLD set, above", threshold: "30", in: temperature(`{"temp":30.1}`, nil), want: `{"fan":"on"}`},
		{name: "THRESHOLD set, within band", threshold: "30", in: temperature(`{"temp":29}`, nil)},
		{name: "THRESHOLD set, below", threshold: "30", in: temperature(`{"temp":27.9}`, nil), want: `{"fan":"off"}`},
		{name: "THRESHOLD invalid: default", threshold: "warm", in: temperature(`{"temp":26}`, nil), want: `{"fan":"on"}`},
		{name: "THRESHOLD NaN: default", threshold: "NaN", in: temperature(`{"temp":26}`, nil), want: `{"fan":"on"}`},

		{name: "not JSON", in: temperature(`hot`, nil)},
		{name: "JSON number", in: temperature(`30`, nil)},
		{name: "no temp", in: temperature(`{"t":30}`, nil)},
		{name: "temp null", in: temperature(`{"temp":null}`, nil)},
		{name: "temp a string", in: temperature(`{"temp":"30"}`, nil)},
		{name: "no data", in: temperature(``, func(e *event.Event) { e.DataEncoded = nil })},
		{name: "other subject", in: temperature(`{"temp":30}`, func(e *event.Event) { e.SetSubject("humidity") })},
		{name: "other type", in: temperature(`{"temp":30}`, func(e *event.Event) { e.SetType("io.drogue.connection.v1") })},
		{name: "own command type", in: temperature(`{"temp":30}`, func(e *event.Event) { e.SetType("io.drogue.command.v1") })},
		{name: "no device", in: temperature(`{"temp":30}`, func(e *event.Event) { e.SetExtension("device", nil) })},
		{name: "no application", in: temperature(`{"temp":30}`, func(e *event.Event) { e.SetExtension("application", nil) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("THRESHOLD", tt.threshold)
			got, err := Handle(context.Background(), tt.in)
			if err != nil {
				t.Fatalf("Handle: %v (an error makes the Broker redeliver)", err)
			}
			if tt.want == "" {
				if got != nil {
					t.Fatalf("Handle replied %v, want no reply", got)
				}
				return
			}
			if got == nil {
				t.Fatalf("Handle replied nothing, want a command with %s", tt.want)
			}
			checkCommand(t, got, tt.in, tt.want)
		})
	}
}

// checkCommand checks that cmd is a valid set-fan command for the device of
// in, with data want.
func checkCommand(t *testing.T, cmd *event.Event, in event.Event, want string) {
	t.Helper()
	if err := cmd.Validate(); err != nil {
		t.Errorf("invalid CloudEvent: %v", err)
	}
	if cmd.Type() != "io.drogue.command.v1" || cmd.Subject() != "set-fan" {
		t.Errorf("type %q subject %q, want io.drogue.command.v1 set-fan", cmd.Type(), cmd.Subject())
	}
	if cmd.ID() != "set-fan-"+in.ID() {
		t.Errorf("id %q, want set-fan-%s", cmd.ID(), in.ID())
	}
	for _, name := range []string{"application", "device"} {
		if g, w := cmd.Extensions()[name], in.Extensions()[name]; g != w {
			t.Errorf("extension %s = %v, want %v", name, g, w)
		}
	}
	if cmd.DataContentType() != event.ApplicationJSON {
		t.Errorf("datacontenttype %q, want %s", cmd.DataContentType(), event.ApplicationJSON)
	}
	if string(cmd.Data()) != want {
		t.Errorf("data %s, want %s", cmd.Data(), want)
	}
}
