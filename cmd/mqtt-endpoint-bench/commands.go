package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// cmdStats counts one command phase.
type cmdStats struct {
	posted    atomic.Uint64
	accepted  atomic.Uint64 // 202
	received  atomic.Uint64 // PUBLISH at a device
	statuses  sync.Map      // status code → *atomic.Uint64
	errs      atomic.Uint64 // transport errors
	post      *hist         // POST → answer
	toDevice  *hist         // POST → the device read the PUBLISH
	lastRecvd atomic.Int64
}

func newCmdStats() *cmdStats { return &cmdStats{post: newHist(), toDevice: newHist()} }

func (s *cmdStats) status(code int) {
	v, _ := s.statuses.LoadOrStore(code, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

// commandPoster sends binary-mode command CloudEvents (SPEC §7) with a keep-alive client.
type commandPoster struct {
	url    string
	client *http.Client
	id     atomic.Uint64
}

func newCommandPoster(url string, conc int) *commandPoster {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conc + 4
	tr.MaxIdleConnsPerHost = conc + 4
	return &commandPoster{url: url, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// post sends one command to d and returns the status.
func (p *commandPoster) post(ctx context.Context, d device, ts int64) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(commandPayload(ts)))
	if err != nil {
		return 0, err
	}
	h := req.Header
	h["Ce-Specversion"] = []string{"1.0"}
	h["Ce-Id"] = []string{"bench-" + strconv.FormatUint(p.id.Add(1), 10)}
	h["Ce-Source"] = []string{"mqtt-endpoint-bench"}
	h["Ce-Type"] = []string{"io.drogue.command.v1"}
	h["Ce-Subject"] = []string{"set"}
	h["Ce-Application"] = []string{d.App}
	h["Ce-Device"] = []string{d.Name}
	h["Content-Type"] = []string{"application/json"}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// commandLoad posts commands round robin to devs with conc concurrent posters, count in all or
// for duration.
func (b *bench) commandLoad(ctx context.Context, name string, p *commandPoster, devs []device, conc, count int, duration time.Duration, st *cmdStats, toDevice bool) phaseResult {
	var left atomic.Int64
	left.Store(int64(count))
	start := time.Now()
	until := start.Add(duration)
	var rr atomic.Uint64
	self0 := selfCPU()
	mach := readMachine()
	b.setProgress(func() string {
		el := time.Since(start).Seconds()
		return fmt.Sprintf("%s: %.0fs posted %d accepted %d (%.0f/s) received %d", name, el, st.posted.Load(), st.accepted.Load(), float64(st.accepted.Load())/el, st.received.Load())
	})
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				if count > 0 && left.Add(-1) < 0 {
					return
				}
				if count == 0 && !time.Now().Before(until) {
					return
				}
				d := devs[int(rr.Add(1)-1)%len(devs)]
				t0 := time.Now()
				st.posted.Add(1)
				code, err := p.post(ctx, d, t0.UnixNano())
				if err != nil {
					st.errs.Add(1)
					continue
				}
				st.post.Record(time.Since(t0))
				st.status(code)
				if code == http.StatusAccepted {
					st.accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if toDevice { // let the last PUBLISHes arrive
		deadline := time.Now().Add(5 * time.Second)
		for st.received.Load() < st.accepted.Load() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	ph := phaseResult{Name: name, Devices: len(devs), Concurrency: conc, Seconds: el.Seconds(),
		Sent: st.posted.Load(), Acked: st.accepted.Load(), Received: st.received.Load(),
		ToolCPU: (selfCPU() - self0) / el.Seconds() * 100, Errors: map[string]uint64{}}
	ph.MachineBusy, ph.Steal = mach.since()
	ph.Throughput, ph.ThroughputOf = float64(ph.Acked)/ph.Seconds, "202s/s"
	if toDevice {
		l := st.toDevice.Summary()
		ph.Latency, ph.LatencyOf = &l, "POST → device"
		pl := st.post.Summary()
		ph.Extra = map[string]any{"post_to_202": pl}
	} else {
		l := st.post.Summary()
		ph.Latency, ph.LatencyOf = &l, "POST → 202"
	}
	st.statuses.Range(func(k, v any) bool {
		if k.(int) != http.StatusAccepted {
			ph.Errors[fmt.Sprintf("HTTP %d", k.(int))] = v.(*atomic.Uint64).Load()
		}
		return true
	})
	if n := st.errs.Load(); n > 0 {
		ph.Errors["transport errors"] = n
	}
	if toDevice && ph.Acked > ph.Received {
		ph.Errors["202 but not received"] = ph.Acked - ph.Received
	}
	return ph
}

// commands measures command latency one at a time and command throughput at -cmd-concurrency.
func (b *bench) commands(ctx context.Context) (*scenarioResult, error) {
	cfg := b.cfg
	res := &scenarioResult{Name: "commands", Title: fmt.Sprintf("Commands: %d devices subscribed to command/inbox//# at QoS %d", cfg.CmdDevices, cfg.CmdQoS)}
	var devs []device
	err := b.withEndpoint(ctx, cfg.CmdDevices, 0, func(t *target) error {
		if t.HTTP == "" {
			return fmt.Errorf("the commands scenario needs -endpoint-http")
		}
		devs = t.Devices
		var cur atomic.Pointer[cmdStats]
		var subacks atomic.Int64
		clients, cst := b.connect(ctx, t, devs, cfg.ConnRate, 16, func(_ int, c *client) {
			c.setHandlers(&handlers{
				Publish: func(_, payload []byte, _ byte, now int64) {
					st := cur.Load()
					if st == nil {
						return
					}
					st.received.Add(1)
					if ts, ok := payloadTime(payload); ok {
						st.toDevice.Record(time.Duration(now - ts))
					}
				},
				Suback: func(_ uint16, code byte) {
					if code < 0x80 {
						subacks.Add(1)
					}
				},
			})
		})
		defer b.closeAll(clients, true)
		if cst.Connected < len(devs) {
			return fmt.Errorf("only %d of %d devices connected: %v", cst.Connected, len(devs), cst.Errors)
		}
		for _, c := range clients {
			if err := c.write(encodeSubscribe(cfg.Version, 1, "command/inbox//#", cfg.CmdQoS)); err != nil {
				return err
			}
		}
		for deadline := time.Now().Add(10 * time.Second); subacks.Load() < int64(len(clients)); {
			if time.Now().After(deadline) {
				return fmt.Errorf("only %d of %d subscriptions granted", subacks.Load(), len(clients))
			}
			time.Sleep(5 * time.Millisecond)
		}
		url := "http://" + t.HTTP + "/"
		cpu := startCPU(t.Pid)
		st := newCmdStats()
		cur.Store(st)
		ph := b.commandLoad(ctx, "endpoint commands concurrency 1", newCommandPoster(url, 1), devs, 1, cfg.CmdCount, cfg.Duration, st, true)
		ph.EndpointCPU = cpu.percent()
		res.Phases = append(res.Phases, ph)

		cpu = startCPU(t.Pid)
		st = newCmdStats()
		cur.Store(st)
		var profWG sync.WaitGroup
		if t.Pprof != "" && cfg.ProfileDir != "" {
			secs := max(int((cfg.Duration-time.Second)/time.Second), 1)
			profWG.Go(func() {
				f := filepath.Join(cfg.ProfileDir, "commands.cpu.pprof")
				if err := fetchProfile(ctx, t.Pprof, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), f); err != nil {
					b.println("  cpu profile: %v", err)
				}
			})
		}
		ph = b.commandLoad(ctx, fmt.Sprintf("endpoint commands concurrency %d", cfg.CmdConcurrency), newCommandPoster(url, cfg.CmdConcurrency), devs, cfg.CmdConcurrency, 0, cfg.Duration, st, true)
		ph.EndpointCPU = cpu.percent()
		profWG.Wait()
		ph.EndpointRSSMiB = float64(rssKiB(t.Pid)) / 1024
		res.Phases = append(res.Phases, ph)
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Phases[1].finish()
	lat, thr := res.Phases[0], res.Phases[1]
	var bl, blThr phaseResult
	if !cfg.NoBaseline {
		// The same POSTs to the tool's own receiver, which reads them and answers 202: the HTTP hop alone.
		bl = b.commandLoad(ctx, "baseline POST concurrency 1", newCommandPoster(b.sink.URL, 1), devs, 1, cfg.CmdCount, cfg.Duration, newCmdStats(), false)
		blThr = b.commandLoad(ctx, fmt.Sprintf("baseline POST concurrency %d", cfg.CmdConcurrency), newCommandPoster(b.sink.URL, cfg.CmdConcurrency), devs, cfg.CmdConcurrency, 0, cfg.Duration, newCmdStats(), false)
		res.Phases = append(res.Phases, bl, blThr)
	}
	if lat.Latency != nil {
		var blp50, blp99 float64
		if bl.Latency != nil {
			blp50, blp99 = bl.Latency.P50, bl.Latency.P99
		}
		res.Rows = append(res.Rows,
			ratioRow("POST → device p50, concurrency 1, vs POST → 202 p50", lat.Latency.P50, blp50, "ms", atMost(targetCmdP50)),
			ratioRow("POST → device p99, concurrency 1, vs POST → 202 p99", lat.Latency.P99, blp99, "ms", atMost(targetCmdP99)),
			absRow("POST → device p50, concurrency 1", lat.Latency.P50, "ms", atMost(targetCmdP50Ms)),
			absRow("POST → device p99, concurrency 1", lat.Latency.P99, "ms", atMost(targetCmdP99Ms)),
		)
	}
	res.Rows = append(res.Rows,
		ratioRow(fmt.Sprintf("commands/s delivered, concurrency %d", cfg.CmdConcurrency), thr.Throughput, blThr.Throughput, "commands/s", atLeast(targetCmdThroughput)),
		absRow(fmt.Sprintf("commands/s delivered, concurrency %d", cfg.CmdConcurrency), thr.Throughput, "commands/s", atLeast(targetCmdPerSec)),
		cpuRow("commands per CPU-second (endpoint + tool vs baseline tool)", thr, blThr, "commands/CPU-s", atLeast(targetCmdThroughput)),
		row{Metric: "endpoint CPU per command", Value: thr.EndpointCPUPerOp, Unit: "µs", Target: "(reported)"},
		row{Metric: "commands answered other than 202 or not received", Value: float64(errorsTotal(lat) + errorsTotal(thr)), Unit: "commands", Target: "= 0", Met: ptr(errorsTotal(lat)+errorsTotal(thr) == 0)},
	)
	return res, nil
}

func errorsTotal(ph phaseResult) uint64 {
	var n uint64
	for _, v := range ph.Errors {
		n += v
	}
	return n
}
