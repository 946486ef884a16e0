// Package function is a Knative Function (func's Go "cloudevents" template)
// that turns a device's temperature readings into fan commands.
//
// The mqtt-endpoint publishes every MQTT publish as an io.drogue.event.v1
// CloudEvent to the Broker; trigger.yaml hands those with subject
// "temperature" to this function. The function answers with an
// io.drogue.command.v1 event, which the Broker routes to the endpoint's
// commands Service, and the endpoint delivers it to the device on
// command/inbox//set-fan.
package function

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"os"
	"strconv"

	"github.com/cloudevents/sdk-go/v2/event"
)

// The CloudEvents this function consumes and produces, as the mqtt-endpoint
// defines them (its README, sections Commands and Connecting and publishing).
const (
	typeEvent        = "io.drogue.event.v1"
	typeCommand      = "io.drogue.command.v1"
	channel          = "temperature" // subject of the telemetry events
	command          = "set-fan"     // subject of the command events
	source           = "thermostat"  // source of the command events
	defaultThreshold = 25.0
	// hysteresis keeps the fan from flapping around the threshold: it goes on
	// above the threshold and off only below threshold-hysteresis.
	hysteresis = 2.0
)

// reading is the data of a temperature event: {"temp": <number>}.
type reading struct {
	Temp *float64 `json:"temp"` // a pointer, so that a missing temp is an error
}

// fan is the data of a set-fan command: {"fan": "on"|"off"}.
type fan struct {
	Fan string `json:"fan"`
}

// Handle reacts to one temperature event. Above THRESHOLD (default 25) it
// replies with a set-fan command {"fan":"on"}, below THRESHOLD-2 with
// {"fan":"off"}, and in between with nothing.
//
// The returned event is the HTTP reply to the Broker's delivery, and the
// Broker publishes replies like any other event. That cannot loop: the reply's
// type is io.drogue.command.v1, which the telemetry Trigger (type
// io.drogue.event.v1, subject temperature) never matches; only the endpoint's
// command Trigger picks it up, and the endpoint answers commands without an
// event.
//
// Events this function cannot use (another type or subject, data that is not
// {"temp": <number>}, no application or device) are logged and acknowledged
// with no reply: returning an error would make the Broker redeliver an event
// that can never succeed.
func Handle(ctx context.Context, e event.Event) (*event.Event, error) {
	log := slog.Default().With("id", e.ID(), "source", e.Source(), "subject", e.Subject())
	if e.Type() != typeEvent || e.Subject() != channel {
		log.WarnContext(ctx, "ignoring event: not a temperature reading", "type", e.Type())
		return nil, nil
	}
	app, device, err := target(e)
	if err != nil {
		log.WarnContext(ctx, "ignoring event", "error", err)
		return nil, nil
	}
	var r reading
	if err := json.Unmarshal(e.Data(), &r); err != nil || r.Temp == nil {
		data := e.Data()
		if len(data) > 100 {
			data = data[:100] // enough to recognise it in the log
		}
		log.WarnContext(ctx, `ignoring event: data is not {"temp": <number>}`, "data", string(data), "error", err)
		return nil, nil
	}

	limit := threshold(ctx)
	var state string
	switch {
	case *r.Temp > limit:
		state = "on"
	case *r.Temp < limit-hysteresis:
		state = "off"
	default:
		log.InfoContext(ctx, "temperature within band", "device", device, "temp", *r.Temp, "threshold", limit)
		return nil, nil
	}

	cmd := event.New()
	// Derived from the reading's id, so a redelivered reading yields the same
	// command id and a consumer can drop the duplicate.
	cmd.SetID(command + "-" + e.ID())
	cmd.SetType(typeCommand)
	cmd.SetSource(source)
	cmd.SetSubject(command)
	cmd.SetExtension("application", app)
	cmd.SetExtension("device", device)
	if err := cmd.SetData(event.ApplicationJSON, fan{Fan: state}); err != nil {
		return nil, err
	}
	log.InfoContext(ctx, "sending command", "application", app, "device", device, "temp", *r.Temp, "threshold", limit, "fan", state)
	return &cmd, nil
}

// target returns the application and device extensions of e: where the
// command has to go.
func target(e event.Event) (app, device string, err error) {
	ext := e.Extensions()
	app, _ = ext["application"].(string)
	device, _ = ext["device"].(string)
	if app == "" || device == "" {
		return "", "", errors.New("no application or device extension")
	}
	return app, device, nil
}

// threshold returns the temperature above which the fan goes on: the
// THRESHOLD environment variable, or 25 when it is unset or not a number.
func threshold(ctx context.Context) float64 {
	s := os.Getenv("THRESHOLD")
	if s == "" {
		return defaultThreshold
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		slog.WarnContext(ctx, "THRESHOLD is not a number; using the default", "THRESHOLD", s, "default", defaultThreshold)
		return defaultThreshold
	}
	return v
}
