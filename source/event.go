package source

import (
	"fmt"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"
)

// Extension attribute names (drogue-mqtt.md §5).
const (
	ExtApplication    = "application"
	ExtApplicationUID = "applicationuid"
	ExtDevice         = "device"
	ExtDeviceUID      = "deviceuid"
	ExtSender         = "sender"
	ExtSenderUID      = "senderuid"
	ExtPartitionKey   = "partitionkey"
	ExtInstance       = "instance"
)

// EventBuilder builds the CloudEvent of a Publish; the zero value is usable
// and omits the instance extension.
type EventBuilder struct {
	// Instance is the value of the instance extension (INSTANCE, SPEC §3).
	Instance string
}

// eventParts holds an event's context and the values it points to, so that
// building an event costs one allocation for all of them.
type eventParts struct {
	ctx         event.EventContextV1
	time        types.Timestamp
	contentType string
	subject     string
}

// Event builds the CloudEvent of p as Drogue does (SPEC §6, drogue-mqtt.md §5):
// specversion 1.0, a random UUID id, type p.Type (TypeEvent when empty),
// source drogue://<application>/<Encode(device)>, subject p.Channel, time now
// in UTC, datacontenttype by ContentType, data p.Payload as is (not copied),
// and the extensions application, device, sender, partitionkey
// (Encode(application)/Encode(sender)), instance when set, and
// applicationuid, deviceuid and senderuid when known.
//
// CloudEvents forbids an empty subject, so an empty channel omits it. The
// error wraps ErrInvalidPublish or ErrPayloadInvalid.
func (b EventBuilder) Event(p Publish, now time.Time) (cloudevents.Event, error) {
	if p.Application == "" || p.Device == "" {
		return cloudevents.Event{}, fmt.Errorf("build event for %q/%q: %w", p.Application, p.Device, ErrInvalidPublish)
	}
	ct, err := ContentType(p.ContentType, p.Payload)
	if err != nil {
		return cloudevents.Event{}, fmt.Errorf("build event for %s/%s: %w", p.Application, p.Device, err)
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return cloudevents.Event{}, fmt.Errorf("build event for %s/%s: generate id: %w", p.Application, p.Device, err)
	}
	sender, senderUID := p.Sender, p.SenderUID
	if sender == "" {
		sender, senderUID = p.Device, p.DeviceUID
	}
	typ := p.Type
	if typ == "" {
		typ = TypeEvent
	}

	parts := &eventParts{
		time:        types.Timestamp{Time: now.UTC()},
		contentType: ct,
		subject:     p.Channel,
	}
	ec := &parts.ctx
	ec.ID = id.String()
	ec.Type = typ
	// Opaque keeps the encoded device verbatim: the URL does not escape it
	// again, and the application stays raw as in Drogue.
	ec.Source.Scheme = "drogue"
	ec.Source.Opaque = "//" + p.Application + "/" + Encode(p.Device)
	ec.Time = &parts.time
	ec.DataContentType = &parts.contentType
	if p.Channel != "" {
		ec.Subject = &parts.subject
	}

	ext := make(map[string]any, 8)
	ext[ExtApplication] = p.Application
	ext[ExtDevice] = p.Device
	ext[ExtSender] = sender
	ext[ExtPartitionKey] = Encode(p.Application) + "/" + Encode(sender)
	if b.Instance != "" {
		ext[ExtInstance] = b.Instance
	}
	if p.ApplicationUID != "" {
		ext[ExtApplicationUID] = p.ApplicationUID
	}
	if p.DeviceUID != "" {
		ext[ExtDeviceUID] = p.DeviceUID
	}
	if senderUID != "" {
		ext[ExtSenderUID] = senderUID
	}
	ec.Extensions = ext

	return cloudevents.Event{
		Context:     ec,
		DataEncoded: p.Payload,
		// Structured mode writes JSON data inline and anything else as
		// data_base64, which keeps binary payloads intact.
		DataBase64: ct != contentTypeJSON,
	}, nil
}
