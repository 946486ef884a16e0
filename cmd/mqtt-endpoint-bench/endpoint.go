package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// endpointProc is an mqtt-endpoint process the tool started.
type endpointProc struct {
	cmd    *exec.Cmd
	Pid    int
	Addrs  map[string]string // listener name → host:port (mqtt, ws, http, …)
	exited chan struct{}

	mu      sync.Mutex
	tail    []string // the last warning and error lines
	warns   int
	errs    int
	lines   int
	profile string // where a CPU profile is written, if any
}

// buildEndpoint compiles ./cmd/mqtt-endpoint of the module the tool runs in.
func buildEndpoint(ctx context.Context, dir, overlay string) (string, error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "mqtt-endpoint")
	args := []string{"build", "-o", bin}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/mqtt-endpoint")...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./cmd/mqtt-endpoint in %s: %w", root, err)
	}
	return bin, nil
}

// moduleRoot finds the directory of go.mod (the tool is run from inside the module).
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the mqtt-endpoint module: run from its directory, or pass -endpoint-bin / -endpoint-mqtt")
	}
	return filepath.Dir(mod), nil
}

// startEndpoint runs bin with --dev on loopback ports picked by the kernel and waits for its
// listeners. Logs stay at info level (the default in production), so that the listening lines
// appear; they are read continuously and only warnings and errors are kept.
func startEndpoint(ctx context.Context, bin, registryPath, sinkURL, logLevel string, extraEnv []string) (*endpointProc, error) {
	env := append(os.Environ(),
		"REGISTRY_PATH="+registryPath,
		"K_SINK="+sinkURL,
		"MQTT_LISTEN=127.0.0.1:0",
		"WS_LISTEN=127.0.0.1:0",
		"HTTP_LISTEN=127.0.0.1:0",
		"MQTTS_LISTEN=off",
		"WSS_LISTEN=off",
		"PSK_LISTEN=off",
		"LOG_LEVEL="+logLevel,
	)
	env = append(env, extraEnv...)
	cmd := exec.Command(bin, "--dev")
	cmd.Env = env
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	ep := &endpointProc{cmd: cmd, Pid: cmd.Process.Pid, exited: make(chan struct{})}
	bound := make(chan map[string]string, 1)
	go func() {
		defer close(ep.exited)
		addrs := map[string]string{}
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			ep.note(line)
			if addrs != nil && strings.Contains(line, "listening") {
				if l, a, ok := parseListening(line); ok {
					addrs[l] = a
				}
				if addrs["http"] != "" { // the HTTP listener opens after every MQTT listener
					bound <- addrs
					addrs = nil
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
	}()
	select {
	case ep.Addrs = <-bound:
		return ep, nil
	case <-ep.exited:
		return nil, fmt.Errorf("endpoint exited before listening: %s", strings.Join(ep.lastLines(), "\n"))
	case <-time.After(30 * time.Second):
		ep.stop()
		return nil, errors.New("endpoint did not listen within 30s")
	case <-ctx.Done():
		ep.stop()
		return nil, ctx.Err()
	}
}

// parseListening reads a listening line in JSON ({"msg":"listening","listener":…,"address":…})
// or text (msg=listening listener=mqtt address=127.0.0.1:1883) format.
func parseListening(line string) (listener, address string, ok bool) {
	var rec struct{ Msg, Listener, Address string }
	if json.Unmarshal([]byte(line), &rec) == nil {
		return rec.Listener, rec.Address, rec.Msg == "listening" && rec.Address != ""
	}
	fields := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, found := strings.Cut(f, "="); found {
			fields[k] = strings.Trim(v, `"`)
		}
	}
	return fields["listener"], fields["address"], fields["msg"] == "listening" && fields["address"] != ""
}

// note keeps count of the log lines and the last warnings and errors.
func (ep *endpointProc) note(line string) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.lines++
	lvl := ""
	switch {
	case strings.Contains(line, "level=WARN"), strings.Contains(line, `"level":"WARN"`):
		lvl = "warn"
		ep.warns++
	case strings.Contains(line, "level=ERROR"), strings.Contains(line, `"level":"ERROR"`):
		lvl = "error"
		ep.errs++
	}
	if lvl != "" || ep.lines < 20 {
		ep.tail = append(ep.tail, line)
		if len(ep.tail) > 20 {
			ep.tail = ep.tail[1:]
		}
	}
}

func (ep *endpointProc) lastLines() []string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return append([]string(nil), ep.tail...)
}

// logCounts returns the warnings and errors logged so far.
func (ep *endpointProc) logCounts() (warns, errs int) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.warns, ep.errs
}

// stop sends SIGTERM (the endpoint drains) and kills it after 25 s.
func (ep *endpointProc) stop() {
	_ = ep.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ep.exited:
	case <-time.After(25 * time.Second):
		_ = ep.cmd.Process.Kill()
		<-ep.exited
	}
}

// procStats is what /proc tells about a process.
type procStats struct {
	RSSKiB  int64   // VmRSS
	HWMKiB  int64   // VmHWM: peak RSS
	Threads int64   // Threads
	CPU     float64 // user + system seconds
}

// readProc reads /proc/<pid>/status and /proc/<pid>/stat.
func readProc(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			st.RSSKiB = n
		case "VmHWM":
			st.HWMKiB = n
		case "Threads":
			st.Threads = n
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name may contain spaces; the fields after it are fixed.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) > 13 {
			ut, _ := strconv.ParseFloat(f[11], 64) // field 14 utime
			kt, _ := strconv.ParseFloat(f[12], 64) // field 15 stime
			st.CPU = (ut + kt) / clockTicks
		}
	}
	return st, nil
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// openFilesLimit reads the soft "Max open files" limit of a process from /proc/<pid>/limits.
func openFilesLimit(pid int) (soft, hard int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(line, "Max open files"))
			if len(f) >= 2 {
				soft, _ = strconv.ParseInt(f[0], 10, 64)
				hard, _ = strconv.ParseInt(f[1], 10, 64)
				return soft, hard, nil
			}
		}
	}
	return 0, 0, errors.New("no Max open files line")
}

// raiseOpenFiles raises this process's soft RLIMIT_NOFILE to the hard limit (children inherit
// it) and returns both.
func raiseOpenFiles() (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return rl.Cur, rl.Max, err
		}
	}
	return rl.Cur, rl.Max, nil
}

// endpointMetrics reads the endpoint's Prometheus counters, summed over the labels other than
// outcome: name{outcome="x"} → value, under the key "name/x".
func endpointMetrics(ctx context.Context, httpAddr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "mqtt_endpoint_") && !strings.HasPrefix(line, "go_memstats_") && !strings.HasPrefix(line, "go_goroutines") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		name, labels, _ := strings.Cut(line[:sp], "{")
		key := name
		if i := strings.Index(labels, `outcome="`); i >= 0 {
			o := labels[i+len(`outcome="`):]
			o, _, _ = strings.Cut(o, `"`)
			key += "/" + o
		}
		out[key] += v
	}
	return out, sc.Err()
}

// metricDelta returns after[k] - before[k].
func metricDelta(before, after map[string]float64, k string) float64 {
	return after[k] - before[k]
}
