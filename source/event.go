package source

import (
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/google/uuid"
)

// Extension attribute names (drogue-mqtt.md §5).
const (
	ExtApplication    = "application"    // the application's name
	ExtApplicationUID = "applicationuid" // the application's uid, when known
	ExtDevice         = "device"         // the name of the device the event is for
	ExtDeviceUID      = "deviceuid"      // that device's uid, when known
	ExtSender         = "sender"         // the name of the connected device
	ExtSenderUID      = "senderuid"      // that device's uid, when known
	ExtPartitionKey   = "partitionkey"   // Encode(application)/Encode(sender), the Kafka record key
	ExtInstance       = "instance"       // the endpoint's INSTANCE
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
	ec.ID = newID()
	ec.Type = typ
	// Opaque keeps the encoded device verbatim: the URL does not escape it
	// again, and the application stays raw as in Drogue.
	ec.Source.Scheme = "drogue"
	ec.Source.Opaque = sourcePath(p.Application, p.Device)
	ec.Time = &parts.time
	ec.DataContentType = &parts.contentType
	if p.Channel != "" {
		ec.Subject = &parts.subject
	}

	ext := make(map[string]any, 8)
	ext[ExtApplication] = p.Application
	ext[ExtDevice] = p.Device
	ext[ExtSender] = sender
	ext[ExtPartitionKey] = partitionKey(p.Application, sender)
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

// newID returns a random (version 4) UUID string.
func newID() string {
	var u uuid.UUID
	// crypto/rand.Read never fails; it crashes the program instead.
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant RFC 4122
	return u.String()
}

// sourcePath returns the opaque part of the source URI, //<app>/<enc(device)>,
// in one allocation.
func sourcePath(app, device string) string {
	var b strings.Builder
	b.Grow(3 + len(app) + encodedLen(device))
	b.WriteString("//")
	b.WriteString(app)
	b.WriteByte('/')
	writeEncoded(&b, device)
	return b.String()
}

// partitionKey returns <enc(app)>/<enc(sender)> in one allocation.
func partitionKey(app, sender string) string {
	var b strings.Builder
	b.Grow(encodedLen(app) + 1 + encodedLen(sender))
	writeEncoded(&b, app)
	b.WriteByte('/')
	writeEncoded(&b, sender)
	return b.String()
}
