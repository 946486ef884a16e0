package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// connections measures the endpoint's memory per idle authenticated connection, its connect rate
// with bcrypt passwords and its CPU during a reconnect storm, next to a minimal Go MQTT server
// (one goroutine and a 512-byte read buffer per connection, no authentication) as the baseline.
func (b *bench) connections(ctx context.Context) (*scenarioResult, error) {
	cfg := b.cfg
	n := cfg.Conns
	res := &scenarioResult{Name: "connections", Title: fmt.Sprintf("Connections: %d idle devices, bcrypt cost %d passwords, reconnect storm", n, cfg.BcryptCost)}
	var rl syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	const spare = 256
	res.Notes = append(res.Notes, fmt.Sprintf("open files limit of the tool: soft %d, hard %d (each side of %d connections needs %d)", rl.Cur, rl.Max, n, n+spare))
	if int(rl.Cur) < n+spare {
		n = max(int(rl.Cur)-spare, 1)
		res.Notes = append(res.Notes, fmt.Sprintf("the hard open files limit is too low for %d connections: measuring %d (raise it with ulimit -Hn as root)", cfg.Conns, n))
	}
	var epRows struct {
		perConn, connRate, stormRate, stormCPU float64
	}
	err := b.withEndpoint(ctx, n, cfg.BcryptCost, func(t *target) error {
		if t.Pid > 0 {
			if soft, hard, err := openFilesLimit(t.Pid); err == nil {
				res.Notes = append(res.Notes, fmt.Sprintf("open files limit of the endpoint: soft %d, hard %d", soft, hard))
				if int(soft) < n+spare {
					res.Notes = append(res.Notes, fmt.Sprintf("the endpoint's soft limit %d is below %d: connections beyond it fail", soft, n+spare))
				}
			}
		} else {
			res.Notes = append(res.Notes, "no -endpoint-pid: the endpoint's RSS and CPU are not measured")
		}
		phs, perConn, err := b.connectionPhases(ctx, t, "endpoint", t.Devices[:n], func() (map[string]float64, error) {
			return endpointMetrics(ctx, t.HTTP)
		})
		res.Phases = append(res.Phases, phs...)
		if len(phs) == 3 {
			epRows.perConn, epRows.connRate, epRows.stormRate, epRows.stormCPU = perConn, phs[1].Throughput, phs[2].Throughput, phs[2].EndpointCPU
		}
		if err == nil {
			res.Phases[len(res.Phases)-1].Extra["connection_events_at_sink"] = b.sink.connections.Load()
		}
		return err
	})
	if err != nil {
		return res, err
	}
	var base struct{ perConn, connRate, stormRate float64 }
	if !cfg.NoBaseline {
		srv, err := startIdleServer(ctx, cfg.Version)
		if err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("baseline server: %v", err))
		} else {
			t := &target{MQTT: srv.addr, Pid: srv.cmd.Process.Pid, Devices: nil}
			devs := make([]device, n)
			for i := range devs {
				devs[i] = device{App: "baseline", Name: fmt.Sprintf("d%06d", i), Password: "x"}
			}
			saved := b.cfg.Transport
			b.cfg.Transport = "tcp" // the baseline server speaks plain TCP only
			phs, perConn, err := b.connectionPhases(ctx, t, "baseline Go server", devs, nil)
			b.cfg.Transport = saved
			srv.stop()
			res.Phases = append(res.Phases, phs...)
			if err != nil {
				res.Notes = append(res.Notes, fmt.Sprintf("baseline: %v", err))
			} else if len(phs) == 3 {
				base.perConn, base.connRate, base.stormRate = perConn, phs[1].Throughput, phs[2].Throughput
			}
		}
	}
	res.Rows = append(res.Rows,
		ratioRow("RSS per idle authenticated connection", epRows.perConn/1024, base.perConn/1024, "KiB", atMost(targetRSSPerConn)),
		ratioRow("connects/s, reconnect storm (bcrypt verifications cached)", epRows.stormRate, base.stormRate, "connects/s", atLeast(targetStormRate)),
		absRow("RSS per idle authenticated connection", epRows.perConn/1024, "KiB", atMost(targetRSSKiB)),
		absRow("connects/s, reconnect storm (bcrypt verifications cached)", epRows.stormRate, "connects/s", atLeast(targetConnectsPerSec)),
		row{Metric: "endpoint CPU during the reconnect storm", Value: epRows.stormCPU, Unit: "% of a core", Target: "(reported)"},
	)
	if epRows.stormRate > 0 && epRows.stormCPU > 0 {
		res.Rows = append(res.Rows, row{Metric: "endpoint CPU per connect in the storm", Value: epRows.stormCPU / 100 / epRows.stormRate * 1000, Unit: "ms", Target: "(reported)"})
	}
	return res, nil
}

// connectionPhases opens devs at -idle-connect-rate, measures RSS per connection, then aborts
// them all (TCP reset) and reconnects them as fast as -storm-parallel dials allow. metrics, when
// set, reads the server's Prometheus metrics: the Go runtime's stack and heap use, and the
// connections it still counts (to wait for the aborts to be noticed).
func (b *bench) connectionPhases(ctx context.Context, t *target, who string, devs []device, metrics func() (map[string]float64, error)) ([]phaseResult, float64, error) {
	cfg := b.cfg
	n := len(devs)
	var phs []phaseResult
	b.sink.track(nil, nil)

	// One connect alone: the first verification of the shared bcrypt hash is not cached.
	time.Sleep(time.Second) // let the process settle after start-up
	first, cst := b.connect(ctx, t, devs[:1], 0, 1, nil)
	if cst.Connected != 1 {
		return phs, 0, fmt.Errorf("%s: first connect failed: %v", who, cst.Errors)
	}
	firstLat := cst.Latency.Summary()
	b.closeAll(first, true)
	time.Sleep(200 * time.Millisecond)
	rss0 := rssKiB(t.Pid)
	var m0 map[string]float64
	if metrics != nil {
		m0, _ = metrics()
	}
	phs = append(phs, phaseResult{Name: who + " first connect (uncached)", Devices: 1, Sent: 1, Acked: 1, Seconds: firstLat.Max / 1000,
		Latency: &firstLat, LatencyOf: "dial → CONNACK", EndpointRSSMiB: float64(rss0) / 1024})

	cpu := startCPU(t.Pid)
	var profWG sync.WaitGroup
	if t.Pprof != "" && cfg.ProfileDir != "" && cfg.IdleRate > 0 {
		secs := max(int(float64(n)/cfg.IdleRate), 1)
		profWG.Go(func() {
			if err := fetchProfile(ctx, t.Pprof, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), filepath.Join(cfg.ProfileDir, "connect.cpu.pprof")); err != nil {
				b.println("  cpu profile: %v", err)
			}
		})
		profWG.Go(func() {
			time.Sleep(time.Duration(secs) * time.Second / 2)
			if err := fetchProfile(ctx, t.Pprof, "/debug/pprof/goroutine?debug=1", filepath.Join(cfg.ProfileDir, "connect.goroutines.txt")); err != nil {
				b.println("  goroutine profile: %v", err)
			}
		})
	}
	mach := readMachine()
	self0 := selfCPU()
	clients, cst := b.connect(ctx, t, devs, cfg.IdleRate, 256, nil)
	ph := connectPhase(who+fmt.Sprintf(" connect %d at ≤%.0f/s", n, cfg.IdleRate), cst, cpu.percent())
	ph.MachineBusy, ph.Steal = mach.since()
	ph.ToolCPU = (selfCPU() - self0) / cst.Elapsed.Seconds() * 100
	profWG.Wait()
	// Settle, then read the RSS: the per-connection cost is what stays after the connects.
	time.Sleep(3 * time.Second)
	rss1 := rssKiB(t.Pid)
	ph.EndpointRSSMiB = float64(rss1) / 1024
	if t.Pprof != "" && cfg.ProfileDir != "" {
		// After the RSS was read: gc=1 collects first, so the profile shows what stays.
		if err := fetchProfile(ctx, t.Pprof, "/debug/pprof/heap?gc=1", filepath.Join(cfg.ProfileDir, "idle.heap.pprof")); err != nil {
			b.println("  heap profile: %v", err)
		}
	}
	perConn := 0.0
	if cst.Connected > 0 {
		perConn = float64(rss1-rss0) * 1024 / float64(cst.Connected)
	}
	ph.Extra = map[string]any{"rss_before_mib": float64(rss0) / 1024, "rss_per_connection_kib": perConn / 1024}
	if st, err := readProc(t.Pid); err == nil {
		ph.Extra["threads"] = st.Threads
	}
	if metrics != nil && m0 != nil && cst.Connected > 0 {
		if m1, err := metrics(); err == nil {
			per := func(k string) float64 { return (m1[k] - m0[k]) / 1024 / float64(cst.Connected) }
			ph.Extra["stack_inuse_per_connection_kib"] = per("go_memstats_stack_inuse_bytes")
			ph.Extra["heap_inuse_per_connection_kib"] = per("go_memstats_heap_inuse_bytes")
			ph.Extra["heap_alloc_per_connection_kib"] = per("go_memstats_heap_alloc_bytes")
			ph.Extra["goroutines_per_connection"] = (m1["go_goroutines"] - m0["go_goroutines"]) / float64(cst.Connected)
		}
	}
	phs = append(phs, ph)
	if cst.Connected < n {
		b.closeAll(clients, false)
		return phs, perConn, fmt.Errorf("%s: only %d of %d connected: %v", who, cst.Connected, n, cst.Errors)
	}

	// Reconnect storm: every connection is lost at once and every device comes back.
	b.closeAll(clients, false)
	if metrics != nil {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
			if m, err := metrics(); err != nil || m["mqtt_endpoint_connections"] == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	} else {
		time.Sleep(time.Second)
	}
	cpu = startCPU(t.Pid)
	self0 = selfCPU()
	mach = readMachine()
	clients, cst = b.connect(ctx, t, devs, 0, cfg.StormConns, nil)
	ph = connectPhase(who+fmt.Sprintf(" reconnect storm (%d dials in flight)", cfg.StormConns), cst, cpu.percent())
	ph.MachineBusy, ph.Steal = mach.since()
	ph.ToolCPU = (selfCPU() - self0) / cst.Elapsed.Seconds() * 100
	ph.EndpointRSSMiB = float64(rssKiB(t.Pid)) / 1024
	ph.Extra = map[string]any{}
	if st, err := readProc(t.Pid); err == nil {
		ph.Extra["peak_rss_mib"] = float64(st.HWMKiB) / 1024
	}
	phs = append(phs, ph)
	b.closeAll(clients, true)
	if cst.Connected < n {
		return phs, perConn, fmt.Errorf("%s: only %d of %d reconnected: %v", who, cst.Connected, n, cst.Errors)
	}
	return phs, perConn, nil
}

func connectPhase(name string, cst connectStats, cpuPct float64) phaseResult {
	l := cst.Latency.Summary()
	ph := phaseResult{Name: name, Devices: cst.Attempted, Sent: uint64(cst.Attempted), Acked: uint64(cst.Connected),
		Seconds: cst.Elapsed.Seconds(), Throughput: float64(cst.Connected) / cst.Elapsed.Seconds(), ThroughputOf: "connects/s",
		Latency: &l, LatencyOf: "dial → CONNACK", EndpointCPU: cpuPct, Errors: map[string]uint64{}}
	for k, v := range cst.Errors {
		ph.Errors[k] = uint64(v)
	}
	return ph
}

// idleServerArg runs the tool as the baseline server (a subprocess, so that its RSS is its own).
const idleServerArg = "__idle-server"

type idleServer struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
}

func startIdleServer(ctx context.Context, version byte) (*idleServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, idleServerArg, "-listen", "127.0.0.1:0", "-version", fmt.Sprint(version))
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &idleServer{cmd: cmd, exited: make(chan struct{})}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("baseline server did not start: %w", err)
	}
	s.addr = strings.TrimSpace(strings.TrimPrefix(line, "listening "))
	go func() { _ = cmd.Wait(); close(s.exited) }()
	return s, nil
}

func (s *idleServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// runIdleServer is the baseline: it accepts MQTT connections, answers CONNECT with a success
// CONNACK and PINGREQ with PINGRESP, with one goroutine and a 512-byte read buffer per connection.
func runIdleServer(args []string) int {
	fs := flag.NewFlagSet(idleServerArg, flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "")
	version := fs.Int("version", 5, "")
	if fs.Parse(args) != nil {
		return 2
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening %s\n", ln.Addr())
	connack := []byte{typeConnack << 4, 2, 0, 0}
	if *version == 5 {
		connack = []byte{typeConnack << 4, 3, 0, 0, 0}
	}
	pingresp := []byte{typePingresp << 4, 0}
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return 0
			}
			continue
		}
		go func() {
			defer c.Close()
			r := bufio.NewReaderSize(c, 512)
			var buf []byte
			first, _, b, err := readPacket(r, buf)
			buf = b
			if err != nil || first>>4 != typeConnect {
				return
			}
			if _, err := c.Write(connack); err != nil {
				return
			}
			for {
				first, _, b, err := readPacket(r, buf)
				buf = b
				if err != nil {
					return
				}
				switch first >> 4 {
				case typePingreq:
					if _, err := c.Write(pingresp); err != nil {
						return
					}
				case typeDisconnect:
					return
				}
			}
		}()
	}
}
