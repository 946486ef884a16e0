package sink

import (
	"context"
	"errors"
	"time"
)

// Command is one command for a device.
type Command struct {
	Application string    // application name or alias
	Device      string    // device name or alias
	Name        string    // command name (the event's subject); may contain '/'
	ContentType string    // content type of Payload; "" when unknown
	Payload     []byte    // the command's data, delivered as is
	Expires     time.Time // zero when the command does not expire
}

// Deliverer delivers a command to the connections that should see it.
type Deliverer interface {
	// Deliver returns once every connection took the command (QoS 0: written; QoS 1: acknowledged
	// by the device), or with one of the errors below.
	Deliver(ctx context.Context, c Command) error
}

// Errors a Deliverer returns; status.go maps each to an HTTP status.
var (
	ErrUnknownTarget   = errors.New("unknown application or device")                  // 422: retrying will not help
	ErrUnreachable     = errors.New("no connection can take the command")             // 503: device and gateways offline or not subscribed
	ErrNotAcknowledged = errors.New("command not acknowledged by the device in time") // 504
	ErrExpired         = errors.New("command expired")                                // 410
	ErrTooLarge        = errors.New("command larger than the device accepts")         // 413
	ErrRefused         = errors.New("the device refused the command")                 // 422: its PUBACK carried a failure reason
)
