package source

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// consoleSender writes events as JSON lines.
type consoleSender struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

// NewConsoleSender returns a Sender for --dev without K_SINK (SPEC §3): it
// writes every event to w as one structured-mode CloudEvent JSON line and
// acknowledges it. Like a sink, it answers 400 to an invalid event; a failed
// write is a transport error. K_CE_OVERRIDES are not applied.
func NewConsoleSender(w io.Writer) Sender {
	return &consoleSender{w: w}
}

// Send writes e as one JSON line.
func (c *consoleSender) Send(_ context.Context, e cloudevents.Event) protocol.Result {
	if err := e.Validate(); err != nil {
		return cehttp.NewResult(http.StatusBadRequest, "invalid event: %w", err)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return cehttp.NewResult(http.StatusBadRequest, "encode event %s: %w", e.ID(), err)
	}
	b = append(b, '\n')
	c.mu.Lock()
	_, err = c.w.Write(b)
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write event %s: %w", e.ID(), err)
	}
	return protocol.ResultACK
}
