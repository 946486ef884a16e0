package sink

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

// TestStatus pins every row of the outcome → HTTP status mapping (SPEC §7, reference/knative.md §4.5),
// with the errors wrapped as a Deliverer wraps them.
func TestStatus(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("device app1/device1: %w", err) }
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"delivered", nil, http.StatusAccepted},
		{"bad request", badRequest("subject is required"), http.StatusBadRequest},
		{"expired", ErrExpired, http.StatusGone},
		{"expired wrapped", wrap(ErrExpired), http.StatusGone},
		{"body over the limit", fmt.Errorf("read body: %w", &http.MaxBytesError{Limit: 10}), http.StatusRequestEntityTooLarge},
		{"larger than the device accepts", wrap(ErrTooLarge), http.StatusRequestEntityTooLarge},
		{"unknown target", wrap(ErrUnknownTarget), http.StatusUnprocessableEntity},
		{"unreachable", wrap(ErrUnreachable), http.StatusServiceUnavailable},
		{"unreachable joined", fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errors.New("a"), errors.New("b"))), http.StatusServiceUnavailable},
		{"not acknowledged", wrap(ErrNotAcknowledged), http.StatusGatewayTimeout},
		{"anything else", errors.New("boom"), http.StatusInternalServerError},
		{"context canceled", context.Canceled, http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := status(tt.err); got != tt.want {
				t.Errorf("status(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// TestStatusRetrySemantics checks that each sink error lands on the side of Knative's retry
// policy SPEC §7 wants: retried (5xx) when the device may come back, dead-lettered otherwise.
func TestStatusRetrySemantics(t *testing.T) {
	retried := func(code int) bool { // eventing's SelectiveRetry (reference/knative.md §4.2)
		return code >= 500 || code == 404 || code == 408 || code == 409 || code == 429
	}
	tests := []struct {
		name  string
		err   error
		retry bool
	}{
		{"unknown target is final", ErrUnknownTarget, false},
		{"bad request is final", badRequest("x"), false},
		{"expired is final", ErrExpired, false},
		{"too large is final", ErrTooLarge, false},
		{"offline is retried", ErrUnreachable, true},
		{"not acknowledged is retried", ErrNotAcknowledged, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retried(status(tt.err)); got != tt.retry {
				t.Errorf("status %d retried = %v, want %v", status(tt.err), got, tt.retry)
			}
		})
	}
}
