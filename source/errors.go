package source

import (
	"errors"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// Refusals; every error of this package wraps one of them, so callers map
// them with errors.Is.
var (
	// ErrNotReady means no sink is configured (K_SINK unset, SPEC §3); a
	// retry helps only after reconfiguration.
	ErrNotReady = errors.New("no sink configured")
	// ErrPayloadInvalid means the content type is JSON-like but the payload
	// is not JSON, or the content type is not a media type; a retry of the
	// same publish cannot succeed.
	ErrPayloadInvalid = errors.New("payload format invalid")
	// ErrSinkUnavailable means the sink could not be reached, timed out or
	// answered 404, 408, 409, 429 or 5xx on every attempt; a later retry may
	// succeed.
	ErrSinkUnavailable = errors.New("sink unavailable")
	// ErrSinkRejected means the sink answered a status that a retry cannot
	// fix (400, 413, 422, any other non-2xx); StatusCode tells which.
	ErrSinkRejected = errors.New("sink rejected event")
	// ErrQueueFull means the event was refused at once because too many events are already
	// waiting for the sink (the QoS 0 queue, or MaxInFlight for Forward); maps to MQTT 0x97.
	ErrQueueFull = errors.New("event queue full")
	// ErrInvalidPublish means the publish names no application or device, so
	// no event can be built.
	ErrInvalidPublish = errors.New("publish lacks application or device")
	// ErrClosed means the forwarder was closed.
	ErrClosed = errors.New("forwarder closed")
)

// StatusCode returns the HTTP status the sink answered, as carried by err or a
// protocol.Result, and whether there was one.
func StatusCode(err error) (int, bool) {
	if err == nil {
		return 0, false
	}
	// RetriesResult has no Unwrap; look inside it explicitly.
	var rr *cehttp.RetriesResult
	if cloudevents.ResultAs(err, &rr) && rr != nil {
		err = rr.Result
	}
	var res *cehttp.Result
	if cloudevents.ResultAs(err, &res) && res != nil {
		return res.StatusCode, true
	}
	return 0, false
}

// classify maps the sink's answer to nil (accepted), ErrSinkUnavailable
// (retry may help) or ErrSinkRejected (retry cannot help). The HTTP status
// decides when there is one; otherwise the receipt does, and anything else
// (transport errors, timeouts) is unavailable.
func classify(res protocol.Result) error {
	if code, ok := StatusCode(res); ok {
		switch {
		case code >= 200 && code < 300:
			return nil
		case retryableStatus(code):
			return ErrSinkUnavailable
		default:
			return ErrSinkRejected
		}
	}
	if cloudevents.IsACK(res) {
		return nil
	}
	if errors.Is(res, errUnencodable) {
		return ErrSinkRejected
	}
	return ErrSinkUnavailable
}

// retryableStatus is Knative's retry rule for event delivery: 404, 408, 409,
// 429 and every 5xx (knative.md §4.2).
func retryableStatus(code int) bool {
	switch code {
	case http.StatusNotFound, http.StatusRequestTimeout, http.StatusConflict, http.StatusTooManyRequests:
		return true
	}
	return code >= 500 && code < 600
}
