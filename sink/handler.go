package sink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/go-chi/chi/v5"
)

// TypeCommand is the CloudEvents type of a command.
const TypeCommand = "io.drogue.command.v1"

// Options configures the sink's routes. Zero values mean the defaults.
type Options struct {
	AckTimeout   time.Duration // how long a QoS 1 delivery may wait for the device's PUBACK; default 5s
	MaxBodyBytes int64         // request body limit; default 256 KiB
	Logger       *slog.Logger
	Now          func() time.Time // for tests; nil = time.Now
}

// Routes returns the command sink: POST / (CloudEvents) and the REST form
// POST /api/command/v1alpha1/apps/{app}/devices/{device}?command=<name>.
func Routes(d Deliverer, opts Options) http.Handler {
	if opts.AckTimeout == 0 {
		opts.AckTimeout = 5 * time.Second
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 256 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &handler{d: d, opts: opts}
	r := chi.NewRouter()
	r.Post("/", h.event)
	r.Post("/api/command/v1alpha1/apps/{app}/devices/{device}", h.rest)
	return r
}

type handler struct {
	d    Deliverer
	opts Options
}

// event accepts a command CloudEvent in binary or structured mode.
func (h *handler) event(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	msg := cehttp.NewMessageFromHttpRequest(r)
	defer func() { _ = msg.Finish(nil) }()
	ev, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		h.answer(w, r, Command{}, fmt.Errorf("%w: not a CloudEvent: %w", errBadRequest, err)) // keeps *http.MaxBytesError (413)
		return
	}
	cmd, err := commandFromEvent(ev)
	if err != nil {
		h.answer(w, r, cmd, err)
		return
	}
	h.deliver(w, r, cmd)
}

// rest accepts the Drogue REST form: the body is the payload, Content-Type its content type.
func (h *handler) rest(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	cmd := Command{
		Application: pathParam(r, "app"),
		Device:      pathParam(r, "device"),
		Name:        r.URL.Query().Get("command"),
		ContentType: r.Header.Get("Content-Type"),
	}
	if cmd.Name == "" {
		h.answer(w, r, cmd, badRequest("query parameter command is required"))
		return
	}
	if err := validName(cmd.Name); err != nil {
		h.answer(w, r, cmd, err)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		h.answer(w, r, cmd, fmt.Errorf("read body: %w", err))
		return
	}
	cmd.Payload = body
	h.deliver(w, r, cmd)
}

func (h *handler) deliver(w http.ResponseWriter, r *http.Request, cmd Command) {
	if !cmd.Expires.IsZero() && !h.opts.Now().Before(cmd.Expires) {
		h.answer(w, r, cmd, ErrExpired)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.AckTimeout)
	defer cancel()
	h.answer(w, r, cmd, h.d.Deliver(ctx, cmd))
}

// answer writes the status of the outcome with a one-line plain-text reason; a 2xx has an empty
// body, so that a Broker never takes it for a reply event (reference/knative.md §4.3).
func (h *handler) answer(w http.ResponseWriter, r *http.Request, cmd Command, err error) {
	code := status(err)
	if h.opts.Logger.Enabled(r.Context(), slog.LevelDebug) { // spares the arguments' allocations
		h.opts.Logger.Debug("command", "app", cmd.Application, "device", cmd.Device, "command", cmd.Name,
			"status", code, "err", err, "remote", r.RemoteAddr)
	}
	if err == nil {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, strings.ReplaceAll(err.Error(), "\n", "; "))
}

// commandFromEvent validates a command event (SPEC §7).
func commandFromEvent(ev *cloudevents.Event) (Command, error) {
	if err := ev.Validate(); err != nil {
		return Command{}, badRequest("invalid CloudEvent: %v", err)
	}
	if ev.Type() != TypeCommand {
		return Command{}, badRequest("type %q is not %s", ev.Type(), TypeCommand)
	}
	cmd := Command{Name: ev.Subject(), ContentType: ev.DataContentType(), Payload: ev.Data()}
	ext := ev.Extensions() // a copy: taken once
	var err error
	if cmd.Application, err = stringExtension(ext, "application"); err != nil {
		return cmd, err
	}
	if cmd.Device, err = stringExtension(ext, "device"); err != nil {
		return cmd, err
	}
	if cmd.Name == "" {
		return cmd, badRequest("subject (the command name) is required")
	}
	if err := validName(cmd.Name); err != nil {
		return cmd, err
	}
	if v, ok := ext["expirytime"]; ok {
		t, err := types.ToTime(v)
		if err != nil {
			return cmd, badRequest("extension expirytime: %v", err)
		}
		cmd.Expires = t
	}
	return cmd, nil
}

func stringExtension(ext map[string]any, name string) (string, error) {
	v, ok := ext[name]
	if !ok {
		return "", badRequest("extension %s is required", name)
	}
	s, err := types.ToString(v)
	if err != nil || s == "" {
		return "", badRequest("extension %s must be a non-empty string", name)
	}
	return s, nil
}

// pathParam is a URL path parameter, decoded: chi matches the escaped path when it has escapes
// (a device named "dev/x" is addressed as dev%2Fx), and then leaves them in the parameter.
func pathParam(r *http.Request, name string) string {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		return v
	}
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

// validName refuses command names that cannot be part of an MQTT topic name: wildcards
// ([MQTT-3.3.2-2]), NUL, invalid UTF-8.
func validName(name string) error {
	if strings.ContainsAny(name, "+#\x00") || !utf8.ValidString(name) {
		return badRequest("command name %q cannot be part of an MQTT topic (no +, #, NUL; UTF-8)", name)
	}
	return nil
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}
