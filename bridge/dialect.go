package bridge

import (
	"errors"
	"strings"

	"mqtt-endpoint/bridge/registry"
)

// errTopicInvalid reports a publish topic the connection's dialect cannot parse (v5 0x90).
var errTopicInvalid = errors.New("topic name invalid")

// target is what a publish topic says: the channel and, when the topic names one, the device the
// event is for. An empty device with named=false means the connected device itself.
type target struct {
	device  string
	named   bool
	channel string
}

// parseTopic splits a publish topic according to the dialect (SPEC §6, drogue-mqtt.md §4 and §7).
func parseTopic(d registry.Dialect, topic string) (target, error) {
	if topic == "" {
		return target{}, errTopicInvalid
	}
	if d.Type == registry.DialectPlainTopic {
		if !d.DevicePrefix {
			return target{channel: topic}, nil
		}
		dev, rest, ok := strings.Cut(topic, "/")
		switch {
		case !ok:
			return target{}, errTopicInvalid
		case dev == "": // "/rest" publishes as self (drogue-mqtt.md §7)
			return target{channel: rest}, nil
		default:
			return target{device: dev, named: true, channel: rest}, nil
		}
	}
	// drogue/v1: "<channel>" or "<channel>/<device>"; more segments are invalid.
	ch, dev, ok := strings.Cut(topic, "/")
	if !ok {
		return target{channel: topic}, nil
	}
	if strings.Contains(dev, "/") {
		return target{}, errTopicInvalid
	}
	return target{device: dev, named: true, channel: ch}, nil
}

// dialectOf picks the dialect of a connection: the device's when its spec has an mqtt section,
// else the application's, else drogue/v1 (drogue-mqtt.md §3).
func dialectOf(app *registry.Application, dev *registry.Device) registry.Dialect {
	switch {
	case dev.Dialect != nil:
		return *dev.Dialect
	case app.Dialect != nil:
		return *app.Dialect
	default:
		return registry.Dialect{Type: registry.DialectDrogueV1}
	}
}
