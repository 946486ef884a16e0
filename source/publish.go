package source

// Event types (drogue-mqtt.md §5 and §9.4).
const (
	// TypeEvent is the CloudEvent type of a device publish or a last will.
	TypeEvent = "io.drogue.event.v1"
	// TypeConnection is the CloudEvent type of a connection change.
	TypeConnection = "io.drogue.connection.v1"
)

// ConnectionChannel is the subject of connection events.
const ConnectionChannel = "connection"

// Publish is one device message (or connection event, or last will) to turn
// into a CloudEvent.
//
// The forwarder does not copy Payload: the caller must not modify it after
// handing the Publish over, until Forward returns or, for ForwardAsync, ever.
type Publish struct {
	// Application is the application's metadata.name.
	Application string
	// ApplicationUID is the application's metadata.uid; "" when unknown.
	ApplicationUID string
	// Device is the name of the device the event is for.
	Device string
	// DeviceUID is the uid of Device; "" when unknown.
	DeviceUID string
	// Sender is the name of the connected device, which differs from Device
	// when a gateway publishes on behalf of Device; "" means Device itself.
	Sender string
	// SenderUID is the uid of Sender; "" when unknown.
	SenderUID string
	// Channel is the CloudEvent subject; "" omits the subject.
	Channel string
	// ContentType is the MQTT v5 Content Type property; "" when absent.
	ContentType string
	// Payload is the event data, sent as is.
	Payload []byte
	// Type is the CloudEvent type; "" means TypeEvent.
	Type string
}

// ConnectionEvent returns the connection event of the device connected as p
// (drogue-mqtt.md §9.4): type TypeConnection, subject "connection", content
// type application/json and data {"connected":true} or {"connected":false}.
// Device and Sender both name the connected device: p.Sender when set, else
// p.Device.
func ConnectionEvent(p Publish, connected bool) Publish {
	if p.Sender != "" {
		p.Device, p.DeviceUID = p.Sender, p.SenderUID
	} else {
		p.Sender, p.SenderUID = p.Device, p.DeviceUID
	}
	p.Type = TypeConnection
	p.Channel = ConnectionChannel
	p.ContentType = contentTypeJSON
	if connected {
		p.Payload = []byte(`{"connected":true}`)
	} else {
		p.Payload = []byte(`{"connected":false}`)
	}
	return p
}
