package source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"knative.dev/eventing/pkg/eventingtls"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// DefaultMaxConnsPerHost is the default size of the sink connection pool.
const DefaultMaxConnsPerHost = 256

// Tunables of the sink connections.
const (
	// idleTimeout is how long a connection may sit unused before it is closed instead of
	// reused: shorter than the keep-alive of common servers, so a reused connection is
	// rarely one the server is closing.
	idleTimeout = 30 * time.Second
	// maxDrain bounds how much of a response body is read so that the connection can be
	// reused; a longer body closes the connection instead.
	maxDrain = 4 << 10
	// maxMessage bounds how much of a refusal's body is kept as its message.
	maxMessage = 512
	// maxPooledRequest bounds the request buffers kept for reuse, so that one large event
	// does not hold its buffer for good.
	maxPooledRequest = 64 << 10
)

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
}

// httpSender POSTs events in binary content mode on persistent HTTP/1.1 connections, each
// used by one Send at a time from request to response: no goroutine per connection or per
// event, one write system call per event and one or two reads (Go tries a read before it
// waits for the answer).
type httpSender struct {
	head      []byte            // request line, Host, User-Agent and Kn-Namespace, CRLF-terminated
	overrides map[string]string // K_CE_OVERRIDES extensions, set last
	token     *tokenFile        // nil: no Authorization header
	dial      func(ctx context.Context) (net.Conn, error)

	slots chan struct{}  // one token per open connection
	idle  chan *sinkConn // connections ready for reuse, oldest first
	bufs  sync.Pool      // *[]byte request buffers
	now   func() time.Time
}

// sinkConn is one connection to the sink.
type sinkConn struct {
	nc        net.Conn
	br        *bufio.Reader
	idleSince time.Time
	reused    bool // it carried a request before
}

var _ Sender = (*httpSender)(nil)

// NewClient returns a Sender that POSTs events to o.Sink the way Knative's adapter client
// does: binary content mode, K_CE_OVERRIDES extensions set last, the Kn-Namespace header,
// K_CA_CERTS, /knative-custom-certs and the system roots for an https sink (re-read for
// every new connection), and the OIDC token of o.TokenFile as a Bearer token.
//
// It keeps up to MaxConnsPerHost connections open for reuse and writes each request itself
// instead of going through net/http's client, whose two goroutines per connection and
// hand-offs per request cost more CPU than the rest of an event's path (BENCHMARKS.md).
// The sink is dialled directly: HTTP_PROXY and HTTPS_PROXY are not used.
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
	if u.User != nil {
		return nil, fmt.Errorf("new sink client: sink %q has user information, which is not sent", o.Sink)
	}
	var overrides map[string]string
	if o.CEOverrides != "" {
		var ov duckv1.CloudEventOverrides
		if err := json.Unmarshal([]byte(o.CEOverrides), &ov); err != nil {
			return nil, fmt.Errorf("new sink client: parse K_CE_OVERRIDES: %w", err)
		}
		overrides = make(map[string]string, len(ov.Extensions))
		for name, v := range ov.Extensions {
			// As sdk-go's SetExtension, which the adapter uses: names are lower-cased.
			name = strings.ToLower(name)
			if !validExtensionName(name) {
				return nil, fmt.Errorf("new sink client: K_CE_OVERRIDES: %q is not a CloudEvents extension name", name)
			}
			if coreAttribute(name) {
				// sdk-go, and so Knative's adapter, refuses such an extension on every event.
				return nil, fmt.Errorf("new sink client: K_CE_OVERRIDES: %q is a core attribute, not an extension", name)
			}
			overrides[name] = v
		}
	}
	n := o.MaxConnsPerHost
	if n <= 0 {
		n = DefaultMaxConnsPerHost
	}
	head := requestHead(u, o.Namespace)
	if !validHeaderValues(head) {
		return nil, fmt.Errorf("new sink client: NAMESPACE %q: a control character", o.Namespace)
	}
	s := &httpSender{
		head:      head,
		overrides: overrides,
		dial:      dialer(u, o.CACerts),
		slots:     make(chan struct{}, n),
		idle:      make(chan *sinkConn, n),
		now:       time.Now,
	}
	if o.TokenFile != "" {
		s.token = &tokenFile{path: o.TokenFile}
	}
	s.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return s, nil
}

// requestHead returns the fixed start of every request to u.
func requestHead(u *url.URL, namespace string) []byte {
	target := u.RequestURI()
	var b []byte
	b = append(b, "POST "...)
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, u.Host...)
	b = append(b, "\r\nUser-Agent: mqtt-endpoint\r\n"...)
	if namespace != "" {
		b = appendHeader(b, "Kn-Namespace", namespace)
	}
	return b
}

// dialer returns how connections to u are opened: TCP, and TLS for https with Knative's
// trust roots re-read per connection, so that renewed trust bundles apply.
func dialer(u *url.URL, caCerts *string) func(context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Scheme == "http" {
		return func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", host) }
	}
	cfg := eventingtls.ClientConfig{CACerts: caCerts}
	return func(ctx context.Context) (net.Conn, error) {
		tlsCfg, err := eventingtls.GetTLSClientConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("sink trust roots: %w", err)
		}
		tlsCfg.NextProtos = []string{"http/1.1"}
		td := tls.Dialer{NetDialer: d, Config: tlsCfg}
		return td.DialContext(ctx, "tcp", host)
	}
}

// Send POSTs e and returns nil when the sink answered 2xx, a *cehttp.Result with the status
// otherwise, or the transport error.
func (s *httpSender) Send(ctx context.Context, e cloudevents.Event) protocol.Result {
	return s.SendBefore(ctx, time.Time{}, e)
}

// SendBefore is Send bounded by deadline too (the zero time: ctx's deadline only). It spares
// the Forwarder a context with a timer per event.
func (s *httpSender) SendBefore(ctx context.Context, deadline time.Time, e cloudevents.Event) protocol.Result {
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	bp := s.bufs.Get().(*[]byte)
	req, err := s.appendRequest((*bp)[:0], &e)
	if cap(req) <= maxPooledRequest {
		*bp = req[:0]
		defer s.bufs.Put(bp) // after the request was written
	}
	if err != nil {
		return fmt.Errorf("post event %s: %w", e.ID(), err)
	}
	for fresh := false; ; fresh = true {
		c, err := s.conn(ctx, deadline, fresh)
		if err != nil {
			return fmt.Errorf("post event %s: connect to sink: %w", e.ID(), err)
		}
		code, msg, err := s.roundTrip(ctx, deadline, c, req)
		if err != nil {
			retry := c.reused && !fresh && staleConn(err)
			s.discard(c)
			if retry {
				continue // the server closed an idle connection before reading the request
			}
			return fmt.Errorf("post event %s: %w", e.ID(), err)
		}
		if code >= 200 && code < 300 {
			return nil
		}
		if msg == "" {
			return cehttp.NewResult(code, "%w", protocol.ResultNACK)
		}
		return cehttp.NewResult(code, "%w: %s", protocol.ResultNACK, msg)
	}
}

// staleConn tells whether err is how a reused connection fails when the server closed it
// while it was idle: nothing of a response arrived.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// conn returns an idle connection or a new one, waiting until deadline (if not zero) for one
// to be freed when MaxConnsPerHost are open; fresh asks for a new one.
func (s *httpSender) conn(ctx context.Context, deadline time.Time, fresh bool) (*sinkConn, error) {
	for !fresh {
		select {
		case c := <-s.idle:
			if s.now().Sub(c.idleSince) < idleTimeout {
				return c, nil
			}
			s.discard(c)
			continue
		default:
		}
		break
	}
	var reuse <-chan *sinkConn
	if !fresh {
		reuse = s.idle
	}
	select {
	case c := <-reuse:
		return c, nil
	case s.slots <- struct{}{}:
	default:
		var expired <-chan time.Time
		if !deadline.IsZero() {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			expired = t.C
		}
		select {
		case c := <-reuse:
			return c, nil
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-expired:
			return nil, fmt.Errorf("wait for a free connection: %w", context.DeadlineExceeded)
		}
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	nc, err := s.dial(ctx)
	if err != nil {
		<-s.slots
		return nil, err
	}
	return &sinkConn{nc: nc, br: bufio.NewReaderSize(nc, 2048)}, nil
}

// release returns c to the idle pool.
func (s *httpSender) release(c *sinkConn) {
	c.idleSince = s.now()
	c.reused = true
	s.idle <- c // never blocks: the pool holds every open connection
}

// discard closes c and frees its slot.
func (s *httpSender) discard(c *sinkConn) {
	_ = c.nc.Close()
	<-s.slots
}

// CloseIdleConnections closes the pooled connections not in use.
func (s *httpSender) CloseIdleConnections() {
	for {
		select {
		case c := <-s.idle:
			s.discard(c)
		default:
			return
		}
	}
}

// roundTrip sends req on c within ctx and returns the sink's status and, for a refusal, the
// start of its body. c is then released for reuse or discarded; on an error it is left to
// the caller.
func (s *httpSender) roundTrip(ctx context.Context, deadline time.Time, c *sinkConn, req []byte) (int, string, error) {
	if err := c.nc.SetDeadline(deadline); err != nil {
		return 0, "", err
	}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		// Cancellation interrupts the write or read; the connection is not reused then.
		stop = context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	}
	code, msg, keep, err := exchange(c, req)
	if !stop() {
		keep = false // the deadline was or is being moved to the past
	}
	switch {
	case err != nil:
		return 0, "", ctxErr(ctx, deadline, err)
	case keep:
		s.release(c)
	default:
		s.discard(c)
	}
	return code, msg, nil
}

// exchange writes req on c and reads the response: its status, for a refusal the start of
// its body, and whether c may carry another request.
func exchange(c *sinkConn, req []byte) (int, string, bool, error) {
	if _, err := c.nc.Write(req); err != nil {
		return 0, "", false, fmt.Errorf("write request: %w", err)
	}
	code, msg, keep, err := readResponse(c.br)
	if err != nil {
		return 0, "", false, fmt.Errorf("read response: %w", err)
	}
	return code, msg, keep, nil
}

// errMalformed marks a response that is not HTTP/1.x.
var errMalformed = errors.New("malformed HTTP response")

// readResponse reads one HTTP/1.x response, skipping interim 1xx ones: its status, for a
// status other than 2xx the start of its body, and whether the connection may carry another
// request. It reads only what an answer to a POST needs (status, Content-Length,
// Transfer-Encoding, Connection) and allocates nothing for a 2xx.
func readResponse(br *bufio.Reader) (code int, msg string, keep bool, err error) {
	var (
		line    []byte
		length  int64
		chunked bool
	)
	for started := false; ; started = true {
		if line, err = readLine(br); err != nil {
			if started {
				err = partial(err)
			}
			return 0, "", false, err
		}
		// "HTTP/1.1 202 Accepted"
		if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
			return 0, "", false, fmt.Errorf("%w: status line %q", errMalformed, truncate(line))
		}
		code = 0
		for _, c := range line[9:12] {
			if c < '0' || c > '9' {
				return 0, "", false, fmt.Errorf("%w: status line %q", errMalformed, truncate(line))
			}
			code = code*10 + int(c-'0')
		}
		http10 := line[7] == '0'
		keep = !http10
		length, chunked = -1, false
		for {
			if line, err = readLine(br); err != nil {
				return 0, "", false, partial(err)
			}
			if len(line) == 0 {
				break
			}
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return 0, "", false, fmt.Errorf("%w: header line %q", errMalformed, truncate(line))
			}
			value = bytes.TrimSpace(value)
			switch {
			case asciiEqualFold(name, "Content-Length"):
				n, perr := strconv.ParseInt(string(value), 10, 64)
				if perr != nil || n < 0 || length >= 0 && n != length {
					return 0, "", false, fmt.Errorf("%w: Content-Length %q", errMalformed, truncate(value))
				}
				length = n
			case asciiEqualFold(name, "Transfer-Encoding"):
				if !asciiEqualFold(value, "chunked") {
					return 0, "", false, fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, truncate(value))
				}
				chunked = true
			case asciiEqualFold(name, "Connection"):
				for tok := range bytes.SplitSeq(value, []byte(",")) {
					switch tok = bytes.TrimSpace(tok); {
					case asciiEqualFold(tok, "close"):
						keep = false
					case asciiEqualFold(tok, "keep-alive") && http10:
						keep = true
					}
				}
			}
		}
		if code >= 200 {
			break
		}
		if code == http.StatusSwitchingProtocols {
			return 0, "", false, fmt.Errorf("%w: 101 Switching Protocols to a POST", errMalformed)
		}
		// Other 1xx: interim, no body; the answer follows.
	}
	var (
		body io.Reader
		lr   *io.LimitedReader
	)
	switch {
	case code == http.StatusNoContent || code == http.StatusNotModified:
		return code, "", keep, nil
	case chunked:
		body = httputil.NewChunkedReader(br)
	case length == 0:
		return code, "", keep, nil
	case length > 0:
		lr = &io.LimitedReader{R: br, N: length}
		body = lr
	default:
		body, keep = br, false // delimited by the end of the connection
	}
	if code/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(body, maxMessage))
		msg = string(b)
	}
	if keep {
		n, err := io.CopyN(io.Discard, body, maxDrain+1)
		keep = n <= maxDrain && errors.Is(err, io.EOF) && (lr == nil || lr.N == 0) // not cut short
	}
	if keep && chunked {
		// The chunked reader stops at the last chunk; the trailer section ends at an empty line.
		for {
			line, err := readLine(br)
			if err != nil {
				return code, msg, false, nil
			}
			if len(line) == 0 {
				break
			}
		}
	}
	return code, msg, keep, nil
}

// partial returns err, which ended a response after some of it arrived, so that staleConn
// does not take it for a stale connection: the server read the request, and sending it again
// would duplicate the event.
func partial(err error) error {
	if staleConn(err) {
		return fmt.Errorf("%w (%v)", io.ErrUnexpectedEOF, err)
	}
	return err
}

// readLine returns the next line of br without its line break; the slice is valid until
// the next read. A line longer than br's buffer is copied.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(long) < 64<<10 {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: a header line longer than 64 KiB", errMalformed)
		}
		if len(line) > 0 {
			return nil, partial(err)
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// asciiEqualFold tells whether b equals s ignoring ASCII case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// truncate shortens b for an error message.
func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// ctxErr prefers the context's error to the I/O error it caused, and reports the passing of
// the send's deadline (the connection's) as context.DeadlineExceeded.
func ctxErr(ctx context.Context, deadline time.Time, err error) error {
	if ce := ctx.Err(); ce != nil {
		return fmt.Errorf("%w (%w)", ce, err)
	}
	if !deadline.IsZero() && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
	}
	return err
}

// errUnencodable marks an event that cannot be written as an HTTP request; a retry
// cannot help.
var errUnencodable = errors.New("event cannot be encoded as HTTP headers")

// appendRequest appends the HTTP request for e in binary content mode (the CloudEvents
// HTTP binding, as sdk-go writes it) to b.
func (s *httpSender) appendRequest(b []byte, e *cloudevents.Event) ([]byte, error) {
	ec, ok := e.Context.(*event.EventContextV1)
	if !ok {
		return b, fmt.Errorf("%w: specversion %q", errUnencodable, e.SpecVersion())
	}
	data := e.Data()
	b = append(b, s.head...)
	if s.token != nil {
		if tok := s.token.get(s.now()); tok != "" {
			b = append(b, "Authorization: Bearer "...)
			b = appendValue(b, tok)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(data)), 10)
	b = append(b, "\r\n"...)
	if ec.DataContentType != nil && *ec.DataContentType != "" {
		b = appendHeader(b, "Content-Type", *ec.DataContentType)
	}
	b = append(b, "Ce-Specversion: 1.0\r\n"...)
	b = appendHeader(b, "Ce-Id", ec.ID)
	b = append(b, "Ce-Source: "...)
	b = appendURI(b, &ec.Source.URL)
	b = append(b, "\r\n"...)
	b = appendHeader(b, "Ce-Type", ec.Type)
	if ec.Subject != nil && *ec.Subject != "" {
		b = appendHeader(b, "Ce-Subject", *ec.Subject)
	}
	if ec.DataSchema != nil {
		b = appendHeader(b, "Ce-Dataschema", ec.DataSchema.String())
	}
	if ec.Time != nil && !ec.Time.IsZero() {
		b = append(b, "Ce-Time: "...)
		b = ec.Time.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, "\r\n"...)
	}
	for name, v := range ec.Extensions {
		if _, over := s.overrides[name]; over {
			continue
		}
		str, isString := v.(string)
		if !isString {
			var err error
			if str, err = types.Format(v); err != nil {
				return b, fmt.Errorf("%w: extension %s: %w", errUnencodable, name, err)
			}
		}
		b = appendExtension(b, name, str)
	}
	for name, v := range s.overrides {
		b = appendExtension(b, name, v)
	}
	if !validHeaderValues(b[len(s.head):]) {
		return b, fmt.Errorf("%w: a control character in an attribute", errUnencodable)
	}
	b = append(b, "\r\n"...)
	return append(b, data...), nil
}

// appendURI appends u as a header value, without building a string for an opaque URI such
// as drogue:app/device.
func appendURI(b []byte, u *url.URL) []byte {
	if u.Opaque != "" && u.Scheme != "" && u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" {
		b = append(b, u.Scheme...)
		b = append(b, ':')
		return appendValue(b, u.Opaque)
	}
	return appendValue(b, u.String())
}

// appendExtension appends the header of extension name as sdk-go names it: Ce- and the
// name with its first letter upper-cased.
func appendExtension(b []byte, name, value string) []byte {
	b = append(b, "Ce-"...)
	c := name[0]
	if 'a' <= c && c <= 'z' {
		c -= 'a' - 'A'
	}
	b = append(b, c)
	b = append(b, name[1:]...)
	b = append(b, ": "...)
	b = appendValue(b, value)
	return append(b, "\r\n"...)
}

// appendHeader appends "name: value\r\n".
func appendHeader(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = appendValue(b, value)
	return append(b, "\r\n"...)
}

// appendValue appends v as net/http writes a header value, without surrounding spaces and
// tabs. A line break in v, which net/http refuses to send, is appended as a NUL so that
// validHeaderValues refuses the request: it would otherwise end the header line.
func appendValue(b []byte, v string) []byte {
	i, j := 0, len(v)
	for i < j && (v[i] == ' ' || v[i] == '\t') {
		i++
	}
	for j > i && (v[j-1] == ' ' || v[j-1] == '\t') {
		j--
	}
	for k := i; k < j; k++ {
		c := v[k]
		if c == '\r' || c == '\n' {
			c = 0
		}
		b = append(b, c)
	}
	return b
}

// validHeaderValues tells whether the header lines in b carry no control character other
// than tab (net/http refuses to send those, and servers refuse to read them).
func validHeaderValues(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
			continue
		}
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// coreAttribute tells whether name is a CloudEvents 1.0 context attribute or data.
func coreAttribute(name string) bool {
	switch name {
	case "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64":
		return true
	}
	return false
}

// validExtensionName tells whether name is a CloudEvents attribute name: lower-case letters
// and digits.
func validExtensionName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
