package source

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

func TestClassify(t *testing.T) {
	// transport wraps err as the SDK's HTTP protocol does for a failed Do.
	transport := func(err error) protocol.Result { return protocol.NewReceipt(false, "%w", err) }
	retries := func(last protocol.Result) protocol.Result {
		return cehttp.NewRetriesResult(last, 2, time.Now(), []protocol.Result{httpResult(503), httpResult(503)})
	}
	tests := []struct {
		name string
		res  protocol.Result
		want error // nil, ErrSinkUnavailable or ErrSinkRejected
	}{
		{"200", httpResult(200), nil},
		{"201", httpResult(201), nil},
		{"202", httpResult(202), nil},
		{"204", httpResult(204), nil},
		{"2xx without ACK receipt", cehttp.NewResult(202, "accepted"), nil},
		{"400", httpResult(400), ErrSinkRejected},
		{"401", httpResult(401), ErrSinkRejected},
		{"403", httpResult(403), ErrSinkRejected},
		{"404 retried by Knative", httpResult(404), ErrSinkUnavailable},
		{"408", httpResult(408), ErrSinkUnavailable},
		{"409", httpResult(409), ErrSinkUnavailable},
		{"410", httpResult(410), ErrSinkRejected},
		{"413", httpResult(413), ErrSinkRejected},
		{"422", httpResult(422), ErrSinkRejected},
		{"429", httpResult(429), ErrSinkUnavailable},
		{"500", httpResult(500), ErrSinkUnavailable},
		{"502", httpResult(502), ErrSinkUnavailable},
		{"503", httpResult(503), ErrSinkUnavailable},
		{"504", httpResult(504), ErrSinkUnavailable},
		{"599", httpResult(599), ErrSinkUnavailable},
		{"3xx", httpResult(307), ErrSinkRejected},
		{"1xx", httpResult(100), ErrSinkRejected},
		{"non-2xx carrying an ACK receipt", cehttp.NewResult(503, "%w", protocol.ResultACK), ErrSinkUnavailable},
		{"retries result, last 202", retries(httpResult(202)), nil},
		{"retries result, last 503", retries(httpResult(503)), ErrSinkUnavailable},
		{"retries result, last 400", retries(httpResult(400)), ErrSinkRejected},
		{"wrapped 422", fmt.Errorf("send: %w", httpResult(422)), ErrSinkRejected},
		{"connection refused", transport(&url.Error{Op: "Post", URL: "http://sink", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}), ErrSinkUnavailable},
		{"timeout", transport(&url.Error{Op: "Post", URL: "http://sink", Err: context.DeadlineExceeded}), ErrSinkUnavailable},
		{"cancelled", transport(context.Canceled), ErrSinkUnavailable},
		{"plain error", errors.New("boom"), ErrSinkUnavailable},
		{"NACK receipt", protocol.ResultNACK, ErrSinkUnavailable},
		{"ACK receipt (console sender)", protocol.ResultACK, nil},
		{"nil is ACK", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.res); got != tt.want {
				t.Errorf("classify(%v) = %v, want %v", tt.res, got, tt.want)
			}
		})
	}
}

func TestStatusCode(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		want   int
		wantOK bool
	}{
		{"http result", httpResult(503), 503, true},
		{"wrapped", fmt.Errorf("forward: %w: %w", ErrSinkRejected, httpResult(413)), 413, true},
		{"in retries result", fmt.Errorf("x: %w", cehttp.NewRetriesResult(httpResult(429), 1, time.Now(), nil)), 429, true},
		{"transport error", protocol.NewReceipt(false, "%w", context.DeadlineExceeded), 0, false},
		{"nil", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := StatusCode(tt.err)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("StatusCode(%v) = %d, %v; want %d, %v", tt.err, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSentinelsDistinct(t *testing.T) {
	all := []error{ErrNotReady, ErrPayloadInvalid, ErrSinkUnavailable, ErrSinkRejected, ErrQueueFull, ErrInvalidPublish, ErrClosed}
	for i, a := range all {
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = true", a, b)
			}
		}
	}
}
