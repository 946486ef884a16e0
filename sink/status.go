package sink

import (
	"errors"
	"net/http"
)

// errBadRequest marks requests that are not a valid command (400).
var errBadRequest = errors.New("not a valid command")

// status maps the outcome of a command to its HTTP status (SPEC §7); the only such mapping.
// Knative retries 404/409/429/5xx and dead-letters 400/410/422 (reference/knative.md §4.2).
func status(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		return http.StatusAccepted
	case errors.As(err, &mbe), errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrExpired):
		return http.StatusGone
	case errors.Is(err, ErrUnknownTarget), errors.Is(err, ErrRefused):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrUnreachable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNotAcknowledged):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}
