package bridge

import (
	"errors"

	"github.com/mochi-mqtt/server/v2/packets"

	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/source"
)

// Refusals the bridge itself decides; source and auth errors are classified below too.
var (
	errNotAuthorized      = errors.New("not authorized to publish for this device")
	errCleanStartRequired = errors.New("clean session / clean start is required: this endpoint keeps no session state")
)

// pubackCode maps the outcome of a publish to its v5 PUBACK reason code (SPEC §6). It is the only
// place that knows this mapping. The returned code is never wrapped: mochi panics on wrapped codes.
func pubackCode(err error) packets.Code {
	switch {
	case err == nil:
		return packets.CodeSuccess
	case errors.Is(err, errNotAuthorized):
		return packets.Code{Code: packets.ErrNotAuthorized.Code, Reason: "not authorized"}
	case errors.Is(err, errTopicInvalid):
		return packets.Code{Code: packets.ErrTopicNameInvalid.Code, Reason: "topic name invalid for the device's dialect"}
	case errors.Is(err, source.ErrPayloadInvalid):
		return packets.Code{Code: packets.ErrPayloadFormatInvalid.Code, Reason: "payload is not valid for its content type"}
	case errors.Is(err, source.ErrQueueFull):
		return packets.Code{Code: packets.ErrQuotaExceeded.Code, Reason: "quota exceeded"}
	case errors.Is(err, errShuttingDown):
		return packets.Code{Code: packets.ErrServerBusy.Code, Reason: "server busy: shutting down"}
	case errors.Is(err, source.ErrNotReady):
		return packets.Code{Code: packets.ErrServerBusy.Code, Reason: "server busy: no event sink configured"}
	case errors.Is(err, source.ErrSinkUnavailable):
		return packets.Code{Code: packets.ErrServerBusy.Code, Reason: "server busy: event sink unavailable"}
	case errors.Is(err, source.ErrSinkRejected):
		return packets.Code{Code: packets.ErrUnspecifiedError.Code, Reason: "event refused by the sink"}
	default:
		return packets.Code{Code: packets.ErrUnspecifiedError.Code, Reason: "unspecified error"}
	}
}

// connackCode maps a refused connect to the CONNACK code of the client's protocol version
// (SPEC §5). Wrong credentials, unknown devices and unknown applications look the same.
func connackCode(version byte, err error) packets.Code {
	v5 := version == 5
	switch {
	case errors.Is(err, auth.ErrDisabled):
		if v5 {
			return packets.Code{Code: packets.ErrNotAuthorized.Code, Reason: "application or device disabled"}
		}
		return packets.Err3NotAuthorized
	case errors.Is(err, errCleanStartRequired):
		if v5 {
			return packets.Code{Code: packets.ErrImplementationSpecificError.Code, Reason: errCleanStartRequired.Error()}
		}
		return packets.Code{Code: packets.Err3ClientIdentifierNotValid.Code}
	case errors.Is(err, errShuttingDown):
		if v5 {
			return packets.ErrServerShuttingDown
		}
		return packets.Code{Code: packets.Err3ServerUnavailable.Code}
	default:
		if v5 {
			return packets.Code{Code: packets.ErrBadUsernameOrPassword.Code, Reason: "bad user name or password"}
		}
		return packets.ErrMalformedUsernameOrPassword // v3 return code 4: bad user name or password
	}
}
