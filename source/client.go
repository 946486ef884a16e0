package source

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"knative.dev/eventing/pkg/adapter/v2"
	"knative.dev/eventing/pkg/eventingtls"
	"knative.dev/pkg/observability/tracing"
)

// DefaultMaxConnsPerHost is the default size of the sink connection pool.
const DefaultMaxConnsPerHost = 256

// ClientOptions configures the Sender built by NewClient: the Knative source
// contract (knative.md §1.1, §5.6) and the connection pool.
type ClientOptions struct {
	// Sink is the URL events are POSTed to (K_SINK).
	Sink string
	// CACerts is PEM for an https sink (K_CA_CERTS); nil means none.
	CACerts *string
	// CEOverrides is the JSON of duckv1.CloudEventOverrides (K_CE_OVERRIDES);
	// its extensions are set on every event last, overwriting.
	CEOverrides string
	// Namespace is sent as the Kn-Namespace header (NAMESPACE).
	Namespace string
	// MaxConnsPerHost bounds the connections to the sink, all of which may
	// stay idle for reuse; 0 means DefaultMaxConnsPerHost.
	MaxConnsPerHost int
	// TokenFile is a file holding an OIDC token for the sink, sent as a Bearer token when the file
	// exists and re-read when it changes; "" sends none. Knative mounts it at DefaultTokenFile.
	TokenFile string
	// Tracing wraps the transport in OpenTelemetry HTTP instrumentation
	// (client spans, traceparent propagation) as adapter.NewClient does. It is
	// off by default: without a configured OTel provider it only costs about
	// 30 allocations per event.
	Tracing bool
}

// httpSender is the Knative adapter client over a pooled transport.
type httpSender struct {
	client    adapter.Client
	transport *http.Transport
}

var _ Sender = adapter.Client(nil)

// NewClient returns a Sender that POSTs events to o.Sink through Knative's
// adapter client, which applies K_CE_OVERRIDES and the Kn-Namespace header.
//
// The adapter's own transport keeps only 2 idle connections per host, which
// makes many concurrent publishes open and close a connection each; so the
// client runs on a transport keeping up to MaxConnsPerHost connections. For an
// https sink it verifies the server against the system roots,
// /knative-custom-certs and o.CACerts, re-read on every new connection as the
// adapter does; such connections speak HTTP/1.1.
func NewClient(o ClientOptions) (Sender, error) {
	if o.Sink == "" {
		return nil, fmt.Errorf("new sink client: %w", ErrNotReady)
	}
	u, err := url.Parse(o.Sink)
	if err != nil {
		return nil, fmt.Errorf("new sink client: parse sink: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("new sink client: sink %q is not an http(s) URL", o.Sink)
	}
	n := o.MaxConnsPerHost
	if n <= 0 {
		n = DefaultMaxConnsPerHost
	}
	t := newTransport(n, u.Scheme == "https", o.CACerts)
	var rt http.RoundTripper = drainingTransport{t}
	if o.TokenFile != "" {
		rt = bearerTransport{rt: rt, token: &tokenFile{path: o.TokenFile}}
	}
	if o.Tracing {
		rt = otelhttp.NewTransport(rt,
			otelhttp.WithPropagators(tracing.DefaultTextMapPropagator()),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				return "cloudevents.http." + r.URL.Path
			}),
		)
	}

	env := adapter.EnvConfig{
		Sink:        o.Sink,
		CACerts:     o.CACerts,
		CEOverrides: o.CEOverrides,
		Namespace:   o.Namespace,
		// "0" is no timeout; an empty value makes the adapter log a warning.
		EnvSinkTimeout: "0",
	}
	c, err := adapter.NewClient(adapter.ClientConfig{
		Env: &env,
		// Applied after the adapter's own options, so this client replaces
		// the adapter's; target and headers live on the protocol and stay.
		Options: []cehttp.Option{cehttp.WithClient(http.Client{Transport: rt})},
	})
	if err != nil {
		return nil, fmt.Errorf("new sink client: %w", err)
	}
	return &httpSender{client: c, transport: t}, nil
}

// Send delivers e and returns the sink's answer.
func (s *httpSender) Send(ctx context.Context, e cloudevents.Event) protocol.Result {
	return s.client.Send(ctx, e)
}

// CloseIdleConnections closes the pooled connections not in use.
func (s *httpSender) CloseIdleConnections() {
	s.transport.CloseIdleConnections()
}

// newTransport returns an http.DefaultTransport lookalike that keeps up to n
// connections per host and, for https, dials with Knative's trust roots.
func newTransport(n int, https bool, caCerts *string) *http.Transport {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          n,
		MaxIdleConnsPerHost:   n,
		MaxConnsPerHost:       n,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if https {
		cfg := eventingtls.ClientConfig{CACerts: caCerts}
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			// Re-read per connection, so renewed trust bundles apply.
			tlsCfg, err := eventingtls.GetTLSClientConfig(cfg)
			if err != nil {
				return nil, fmt.Errorf("sink trust roots: %w", err)
			}
			d := tls.Dialer{NetDialer: dialer, Config: tlsCfg}
			return d.DialContext(ctx, network, addr)
		}
	}
	return t
}

// maxDrain bounds how much of an unread response body is read on Close so the
// connection can be reused.
const maxDrain = 4 << 10

// drainingTransport makes closing a response body read what is left of it (up
// to maxDrain), because the SDK closes 2xx bodies unread and net/http does not
// reuse a connection whose body was not read to the end.
type drainingTransport struct {
	rt http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (d drainingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := d.rt.RoundTrip(r)
	if err != nil || resp.Body == nil || resp.Body == http.NoBody {
		return resp, err
	}
	resp.Body = &drainOnClose{ReadCloser: resp.Body}
	return resp, nil
}

type drainOnClose struct {
	io.ReadCloser
}

// Close reads up to maxDrain bytes of what is left and closes the body.
func (b *drainOnClose) Close() error {
	_, _ = io.CopyN(io.Discard, b.ReadCloser, maxDrain)
	return b.ReadCloser.Close()
}
