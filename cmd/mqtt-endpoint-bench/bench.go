package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bench is one run of the tool.
type bench struct {
	cfg    config
	out    io.Writer // tables and live progress
	errOut io.Writer
	tty    bool
	sink   *sink
	tmp    string
	bin    string // the endpoint binary the tool starts; "" for a running endpoint
	pprof  bool   // bin has the pprof overlay

	progMu   sync.Mutex
	progress func() string // the live status line of the running phase; nil when none

	clientsMu sync.Mutex
	clients   map[*client]struct{} // open clients, for keep-alive pings
}

// target is the endpoint a scenario runs against.
type target struct {
	MQTT, WS, HTTP, Pprof string
	Pid                   int
	Devices               []device
	ep                    *endpointProc // nil for a running endpoint
}

// addr is the MQTT address of the configured transport.
func (t *target) addr(transport string) string {
	if transport == "ws" {
		return t.WS
	}
	return t.MQTT
}

func run(ctx context.Context, cfg config, out, errOut io.Writer) (*report, error) {
	b := &bench{cfg: cfg, out: out, errOut: errOut, clients: map[*client]struct{}{}}
	if cfg.JSON {
		b.out = errOut // tables to stderr, JSON alone on stdout
	}
	if f, ok := b.out.(*os.File); ok && !cfg.Quiet {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty = true
		}
	}
	rep := &report{Started: time.Now().UTC().Format(time.RFC3339), Machine: machineInfo(), Config: cfg.summary()}
	soft, hard, err := raiseOpenFiles()
	rep.OpenFiles = fmt.Sprintf("soft %d, hard %d", soft, hard)
	if err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("could not raise RLIMIT_NOFILE: %v", err))
	}

	dir, err := os.MkdirTemp("", "mqtt-endpoint-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b.tmp = dir

	b.sink, err = startSink(ctx, cfg.SinkListen)
	if err != nil {
		return nil, fmt.Errorf("sink receiver: %w", err)
	}
	if cfg.EndpointMQTT != "" {
		fmt.Fprintf(b.out, "The tool's CloudEvents receiver listens at %s — the endpoint's K_SINK must point there.\n", b.sink.URL)
	} else {
		b.bin = cfg.EndpointBin
		if b.bin == "" {
			fmt.Fprintln(b.out, "building ./cmd/mqtt-endpoint …")
			b.bin, b.pprof, err = b.build(ctx)
			if err != nil {
				return nil, err
			}
		}
	}
	go b.keepalive(ctx)
	stopProgress := b.startProgress(ctx)
	defer stopProgress()

	for _, name := range cfg.Scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(b.out, "\n== scenario %s ==\n", name)
		var res *scenarioResult
		var err error
		switch name {
		case "qos0":
			res, err = b.qos0(ctx)
		case "qos1":
			res, err = b.qos1(ctx)
		case "commands":
			res, err = b.commands(ctx)
		case "connections":
			res, err = b.connections(ctx)
		case "outage":
			res, err = b.outage(ctx)
		}
		b.setProgress(nil)
		if res == nil {
			res = &scenarioResult{Name: name}
		}
		if err != nil {
			res.Error = err.Error()
			fmt.Fprintf(b.errOut, "scenario %s failed: %v\n", name, err)
		}
		rep.Scenarios = append(rep.Scenarios, res)
		b.printScenario(res)
	}
	rep.Finished = time.Now().UTC().Format(time.RFC3339)
	fmt.Fprintln(b.out)
	b.printSummary(rep)
	return rep, ctx.Err()
}

// pprofOverlay is compiled into the endpoint for -profile, through go build -overlay, so that
// the endpoint's sources stay untouched: it serves net/http/pprof on BENCH_PPROF_LISTEN.
const pprofOverlay = `package main

import (
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
)

func init() {
	addr := os.Getenv("BENCH_PPROF_LISTEN")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return
	}
	runtime.SetMutexProfileFraction(100)
	os.Stderr.WriteString("{\"msg\":\"listening\",\"listener\":\"pprof\",\"address\":\"" + ln.Addr().String() + "\"}\n")
	go func() { _ = http.Serve(ln, nil) }()
}
`

// build compiles the endpoint, with the pprof overlay when profiles are wanted.
func (b *bench) build(ctx context.Context) (string, bool, error) {
	if b.cfg.ProfileDir == "" {
		bin, err := buildEndpoint(ctx, b.tmp, "")
		return bin, false, err
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", false, err
	}
	src := filepath.Join(b.tmp, "zz_bench_pprof.go")
	if err := os.WriteFile(src, []byte(pprofOverlay), 0o644); err != nil {
		return "", false, err
	}
	ov, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(root, "cmd", "mqtt-endpoint", "zz_bench_pprof.go"): src,
	}})
	ovPath := filepath.Join(b.tmp, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(b.cfg.ProfileDir, 0o755); err != nil {
		return "", false, err
	}
	bin, err := buildEndpoint(ctx, b.tmp, ovPath)
	return bin, err == nil, err
}

// withEndpoint runs fn against a fresh endpoint with a generated registry of n devices, or
// against the running endpoint (its first n devices).
func (b *bench) withEndpoint(ctx context.Context, n, bcryptCost int, fn func(t *target) error) error {
	cfg := b.cfg
	if cfg.EndpointMQTT != "" {
		devs, err := readRegistry(cfg.Registry, cfg.Password)
		if err != nil {
			return err
		}
		if len(devs) < n {
			return fmt.Errorf("the registry has %d usable devices, the scenario needs %d", len(devs), n)
		}
		return fn(&target{MQTT: cfg.EndpointMQTT, WS: cfg.EndpointWS, HTTP: cfg.EndpointHTTP, Pid: cfg.EndpointPID, Devices: devs[:n]})
	}
	regPath := filepath.Join(b.tmp, "registry.yaml")
	devs, err := generateRegistry(regPath, n, bcryptCost)
	if err != nil {
		return fmt.Errorf("generate registry: %w", err)
	}
	var env []string
	if b.pprof {
		env = append(env, "BENCH_PPROF_LISTEN=127.0.0.1:0")
	}
	ep, err := startEndpoint(ctx, b.bin, regPath, b.sink.URL, cfg.LogLevel, env)
	if err != nil {
		return err
	}
	defer ep.stop()
	t := &target{MQTT: ep.Addrs["mqtt"], WS: ep.Addrs["ws"], HTTP: ep.Addrs["http"], Pprof: ep.Addrs["pprof"], Pid: ep.Pid, Devices: devs, ep: ep}
	err = fn(t)
	if w, e := ep.logCounts(); e > 0 && err == nil {
		fmt.Fprintf(b.out, "  (the endpoint logged %d warnings and %d errors; last: %s)\n", w, e, lastOf(ep.lastLines()))
	}
	return err
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// connectStats describes opening a set of connections.
type connectStats struct {
	Attempted int
	Connected int
	Errors    map[string]int
	Elapsed   time.Duration
	Latency   *hist
}

// connect opens a connection for each device, at most rate per second (0: unlimited) with at
// most parallel dials in flight. setup runs on each client before its reader starts. The
// result has nil for devices that failed.
func (b *bench) connect(ctx context.Context, t *target, devs []device, rate float64, parallel int, setup func(i int, c *client)) ([]*client, connectStats) {
	st := connectStats{Attempted: len(devs), Errors: map[string]int{}, Latency: newHist()}
	clients := make([]*client, len(devs))
	var next atomic.Int64
	var connected atomic.Int64
	var mu sync.Mutex
	start := time.Now()
	local := localAddrs(t.addr(b.cfg.Transport), len(devs))
	b.setProgress(func() string {
		return fmt.Sprintf("connecting %d/%d", connected.Load(), len(devs))
	})
	var wg sync.WaitGroup
	for range min(parallel, len(devs)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(devs) || ctx.Err() != nil {
					return
				}
				if rate > 0 {
					sleepUntil(ctx, start.Add(time.Duration(float64(i)/rate*float64(time.Second))))
				}
				d := devs[i]
				t0 := time.Now()
				c, err := dial(ctx, dialConfig{
					Transport: b.cfg.Transport, Address: t.addr(b.cfg.Transport), Version: b.cfg.Version,
					ClientID: d.Username(), Username: d.Username(), Password: d.Password,
					Keepalive: b.cfg.Keepalive, LocalAddr: local(i),
				})
				if err != nil {
					mu.Lock()
					st.Errors[errorClass(err)]++
					mu.Unlock()
					continue
				}
				st.Latency.Record(time.Since(t0))
				if setup != nil {
					setup(i, c)
				}
				c.start()
				b.track(c)
				clients[i] = c
				connected.Add(1)
			}
		})
	}
	wg.Wait()
	st.Elapsed = time.Since(start)
	st.Connected = int(connected.Load())
	return clients, st
}

// localAddrs spreads connections to a loopback endpoint over 127.0.0.1–127.0.0.8 when there are
// many, so that ephemeral ports (about 28k per source address) do not run out in a storm.
func localAddrs(remote string, n int) func(i int) *net.TCPAddr {
	host, _, _ := net.SplitHostPort(remote)
	ip := net.ParseIP(host)
	if n < 5000 || ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return func(int) *net.TCPAddr { return nil }
	}
	return func(i int) *net.TCPAddr {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%8))}
	}
}

// errorClass names an error briefly for the error counts.
func errorClass(err error) string {
	var ce connackError
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("connack 0x%02x", ce.code)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed by endpoint"
	}
	s := err.Error()
	for _, k := range []string{"connection refused", "connection reset", "too many open files", "cannot assign requested address", "broken pipe"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// track registers an open client for keep-alive pings.
func (b *bench) track(c *client) {
	b.clientsMu.Lock()
	b.clients[c] = struct{}{}
	b.clientsMu.Unlock()
}

// closeAll closes clients (DISCONNECT first when graceful) and forgets them.
func (b *bench) closeAll(clients []*client, graceful bool) {
	b.clientsMu.Lock()
	for _, c := range clients {
		if c != nil {
			delete(b.clients, c)
		}
	}
	b.clientsMu.Unlock()
	var wg sync.WaitGroup
	ch := make(chan *client)
	for range min(64, len(clients)) {
		wg.Go(func() {
			for c := range ch {
				if graceful {
					c.disconnectAndClose()
				} else {
					c.abort()
				}
			}
		})
	}
	for _, c := range clients {
		if c != nil {
			ch <- c
		}
	}
	close(ch)
	wg.Wait()
}

// keepalive sends PINGREQ on connections idle for half the keep-alive.
func (b *bench) keepalive(ctx context.Context) {
	if b.cfg.Keepalive == 0 {
		return
	}
	idle := time.Duration(b.cfg.Keepalive) * time.Second / 2
	tick := time.NewTicker(min(idle/4, 10*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		b.clientsMu.Lock()
		cs := make([]*client, 0, len(b.clients))
		for c := range b.clients {
			cs = append(cs, c)
		}
		b.clientsMu.Unlock()
		for _, c := range cs {
			c.ping(idle)
		}
	}
}

// setProgress sets the live status line.
func (b *bench) setProgress(f func() string) {
	b.progMu.Lock()
	b.progress = f
	b.progMu.Unlock()
}

// startProgress redraws the status line twice a second on a terminal.
func (b *bench) startProgress(ctx context.Context) func() {
	if !b.tty {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-tick.C:
			}
			b.progMu.Lock()
			f := b.progress
			b.progMu.Unlock()
			if f != nil {
				fmt.Fprintf(b.out, "\r\033[K  %s", f())
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		fmt.Fprint(b.out, "\r\033[K")
	}
}

// println writes a line, clearing the status line first on a terminal.
func (b *bench) println(format string, args ...any) {
	if b.tty {
		fmt.Fprint(b.out, "\r\033[K")
	}
	fmt.Fprintf(b.out, format+"\n", args...)
}

// sleepUntil sleeps until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// cpuMeter measures a process's CPU use over an interval.
type cpuMeter struct {
	pid   int
	start time.Time
	cpu   float64
}

func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid, start: time.Now()}
	if pid > 0 {
		if st, err := readProc(pid); err == nil {
			m.cpu = st.CPU
		}
	}
	return m
}

// percent returns the CPU used since start in percent of one core (200 = both cores of this machine).
func (m *cpuMeter) percent() float64 {
	if m.pid <= 0 {
		return 0
	}
	st, err := readProc(m.pid)
	if err != nil {
		return 0
	}
	return (st.CPU - m.cpu) / time.Since(m.start).Seconds() * 100
}

// selfCPU returns this process's user+system CPU seconds.
func selfCPU() float64 {
	st, err := readProc(os.Getpid())
	if err != nil {
		return 0
	}
	return st.CPU
}

// rssKiB returns a process's VmRSS, 0 when unknown.
func rssKiB(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	st, err := readProc(pid)
	if err != nil {
		return 0
	}
	return st.RSSKiB
}

// machineInfo describes where the run happens.
func machineInfo() map[string]string {
	m := map[string]string{
		"cpus":      fmt.Sprint(runtime.NumCPU()),
		"go":        runtime.Version(),
		"os":        runtime.GOOS + "/" + runtime.GOARCH,
		"gomaxproc": fmt.Sprint(runtime.GOMAXPROCS(0)),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m["cpu_model"] = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		m["memory"] = strings.Join(strings.Fields(strings.TrimPrefix(line, "MemTotal:")), " ")
	}
	return m
}

// fetchProfile saves a pprof profile of the endpoint (CPU: blocks for its duration).
func fetchProfile(ctx context.Context, addr, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// machineMeter measures how busy the whole machine is over an interval, from /proc/stat.
type machineMeter struct {
	busy, total, steal uint64
}

func readMachine() machineMeter {
	var m machineMeter
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return m
	}
	var v [8]uint64
	for i := range v {
		_, _ = fmt.Sscan(f[i+1], &v[i])
	}
	// user nice system idle iowait irq softirq steal
	for _, x := range v {
		m.total += x
	}
	m.busy = m.total - v[3] - v[4]
	m.steal = v[7]
	return m
}

// since returns the machine's busy and stolen time since m, in percent of all its cores.
func (m machineMeter) since() (busy, steal float64) {
	n := readMachine()
	dt := float64(n.total - m.total)
	if dt <= 0 {
		return 0, 0
	}
	return float64(n.busy-m.busy) / dt * 100, float64(n.steal-m.steal) / dt * 100
}
