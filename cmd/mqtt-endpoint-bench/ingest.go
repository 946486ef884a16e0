package main

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pubStats counts one publishing phase of all devices.
type pubStats struct {
	sent       atomic.Uint64
	acked      atomic.Uint64 // PUBACK with a success code
	refused    atomic.Uint64 // PUBACK with a failure code (v5)
	codes      [256]atomic.Uint64
	closed     atomic.Uint64 // connections that ended during the phase (v3.1.1 refusals, errors)
	unanswered atomic.Uint64 // QoS 1 publishes without PUBACK when the phase ended
	stalls     atomic.Uint64 // QoS 0 windows that stopped moving (events lost or dropped)
	lastAck    atomic.Int64  // unix ns of the last successful PUBACK
	lat        *hist         // PUBACK latency (QoS 1)
	refusedLat *hist         // latency of refusing PUBACKs
	// split, when set, picks the stats that count a PUBACK read at a time (unix ns); sent,
	// closed and unanswered stay here.
	split func(ns int64) *pubStats
}

func newPubStats() *pubStats { return &pubStats{lat: newHist(), refusedLat: newHist()} }

// pubSpec is what each device does in a phase.
type pubSpec struct {
	qos    byte
	window int           // QoS 1: unacknowledged publishes; QoS 0: events not yet at the sink (0: none)
	count  int           // per device; 0: until until
	start  time.Time     // when the first publish is due
	until  time.Time     // with count 0: no publish after this
	rate   float64       // per device publishes/s; 0: as fast as the window allows
	drain  time.Duration // how long to wait for outstanding PUBACKs at the end
}

// publishAll runs one publisher per client and waits for them.
func (b *bench) publishAll(ctx context.Context, clients []*client, devs []device, spec pubSpec, st *pubStats, tmpl *payloadTemplate) {
	var wg sync.WaitGroup
	for i, c := range clients {
		if c == nil {
			continue
		}
		payload := tmpl.clone()
		// Stagger rate-limited publishers over one interval, so that they do not fire together.
		offset := time.Duration(0)
		if spec.rate > 0 {
			offset = time.Duration(float64(time.Second) / spec.rate * float64(i) / float64(len(clients)))
		}
		wg.Go(func() {
			if spec.qos == 0 {
				b.publishQoS0(ctx, c, devs[i], i, spec, offset, st, payload)
			} else {
				b.publishQoS1(ctx, c, devs[i], spec, offset, st, payload)
			}
		})
	}
	wg.Wait()
}

// due returns when publish k is due (rate-limited) and whether the phase is over.
func (spec pubSpec) due(k int, offset time.Duration) (time.Time, bool) {
	if spec.count > 0 && k >= spec.count {
		return time.Time{}, true
	}
	if spec.rate > 0 {
		t := spec.start.Add(offset + time.Duration(float64(k)/spec.rate*float64(time.Second)))
		return t, spec.count == 0 && !t.Before(spec.until)
	}
	return time.Time{}, spec.count == 0 && !time.Now().Before(spec.until)
}

// publishQoS1 keeps up to spec.window publishes unacknowledged. Latency runs from the time a
// publish was due (rate-limited; so a late publish counts its wait, avoiding coordinated
// omission) or sent, to its PUBACK.
func (b *bench) publishQoS1(ctx context.Context, c *client, d device, spec pubSpec, offset time.Duration, st *pubStats, payload *payloadTemplate) {
	ringSize := 1024
	for ringSize < 2*spec.window && ringSize < 32768 {
		ringSize *= 2
	}
	ring := make([]atomic.Int64, ringSize) // due/sent time by packet id - 1; 0 when free
	sem := make(chan struct{}, spec.window)
	c.setHandlers(&handlers{Puback: func(id uint16, code byte, now int64) {
		if id == 0 || int(id) > ringSize {
			return
		}
		ts := ring[id-1].Swap(0)
		if ts == 0 {
			return
		}
		to := st
		if st.split != nil {
			to = st.split(now)
		}
		to.codes[code].Add(1)
		if code < 0x80 {
			to.acked.Add(1)
			to.lat.Record(time.Duration(now - ts))
			to.lastAck.Store(now)
		} else {
			to.refused.Add(1)
			to.refusedLat.Record(time.Duration(now - ts))
		}
		<-sem
	}})
	next := 0
	for k := 0; ; k++ {
		due, over := spec.due(k, offset)
		if over {
			break
		}
		if spec.rate > 0 {
			sleepUntil(ctx, due)
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		case <-c.done:
			st.closed.Add(1)
			return
		}
		if spec.rate == 0 && spec.count == 0 && !time.Now().Before(spec.until) {
			<-sem
			break
		}
		for ring[next].Load() != 0 {
			next = (next + 1) % ringSize
		}
		now := time.Now()
		ts := now.UnixNano()
		if spec.rate > 0 {
			ts = due.UnixNano()
		}
		ring[next].Store(ts)
		if err := c.publish(d.Topic, 1, uint16(next+1), payload.stamp(now.UnixNano(), uint64(k))); err != nil {
			st.closed.Add(1)
			return
		}
		next = (next + 1) % ringSize
		st.sent.Add(1)
	}
	deadline := time.Now().Add(spec.drain)
	for len(sem) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-c.done:
			st.closed.Add(1)
			st.unanswered.Add(uint64(len(sem)))
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
	st.unanswered.Add(uint64(len(sem)))
}

// publishQoS0 publishes at QoS 0. With a window it waits while window events of the device
// are sent but not yet received by the sink (flow control through the tool's own sink, so that
// the offered load matches what the endpoint can forward instead of filling its drop queue).
func (b *bench) publishQoS0(ctx context.Context, c *client, d device, idx int, spec pubSpec, offset time.Duration, st *pubStats, payload *payloadTemplate) {
	var credit int64 // events given up on (dropped or lost), so the window moves on
	notify := b.sink.notifier(idx)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k := 0; ; k++ {
		due, over := spec.due(k, offset)
		if over {
			return
		}
		if spec.rate > 0 {
			sleepUntil(ctx, due)
		}
		if spec.window > 0 {
			last := b.sink.receivedBy(idx)
			for int64(k)-last-credit >= int64(spec.window) {
				timer.Reset(time.Second)
				select {
				case <-notify:
				case <-timer.C:
					if now := b.sink.receivedBy(idx); now == last {
						credit += int64(spec.window)
						st.stalls.Add(1)
					}
				case <-ctx.Done():
					return
				case <-c.done:
					st.closed.Add(1)
					return
				}
				last = b.sink.receivedBy(idx)
			}
		}
		if err := c.publish(d.Topic, 0, 0, payload.stamp(time.Now().UnixNano(), uint64(k))); err != nil {
			st.closed.Add(1)
			return
		}
		st.sent.Add(1)
	}
}

// names lists the device names.
func names(devs []device) []string {
	out := make([]string, len(devs))
	for i, d := range devs {
		out[i] = d.Name
	}
	return out
}

// ingestPhase runs one publishing phase against the endpoint and measures it.
func (b *bench) ingestPhase(ctx context.Context, t *target, clients []*client, devs []device, name string, spec pubSpec, profile string) phaseResult {
	cfg := b.cfg
	sinkLat := newHist()
	b.sink.track(names(devs), sinkLat)
	before, merr := endpointMetrics(ctx, t.HTTP)
	st := newPubStats()
	spec.start = time.Now().Add(20 * time.Millisecond)
	if spec.count == 0 {
		spec.until = spec.start.Add(cfg.Duration)
	}
	cpu := startCPU(t.Pid)
	mach := readMachine()
	self0, wall0 := selfCPU(), time.Now()
	rss0 := rssKiB(t.Pid)
	var profWG sync.WaitGroup
	if profile != "" && t.Pprof != "" && cfg.ProfileDir != "" {
		secs := max(int((cfg.Duration-time.Second)/time.Second), 1)
		profWG.Go(func() {
			f := filepath.Join(cfg.ProfileDir, profile+".cpu.pprof")
			if err := fetchProfile(ctx, t.Pprof, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), f); err != nil {
				b.println("  cpu profile: %v", err)
			}
		})
	}
	b.setProgress(func() string {
		el := time.Since(spec.start).Seconds()
		s := fmt.Sprintf("%s: %.0fs sent %d", name, el, st.sent.Load())
		if spec.qos == 1 {
			s += fmt.Sprintf(" acked %d (%.0f/s) refused %d p99 %.2fms", st.acked.Load(), float64(st.acked.Load())/el, st.refused.Load(), st.lat.Summary().P99)
		} else {
			s += fmt.Sprintf(" at sink %d (%.0f/s) p99 %.2fms", b.sink.events.Load(), float64(b.sink.events.Load())/el, sinkLat.Summary().P99)
		}
		return s + fmt.Sprintf(" | endpoint CPU %.0f%% RSS %.0f MiB", cpu.percent(), float64(rssKiB(t.Pid))/1024)
	})
	spec.drain = 10 * time.Second
	b.publishAll(ctx, clients, devs, spec, st, newPayload(cfg.Size, cfg.JSONBody))
	sendEnd := time.Now()
	// QoS 0: wait until the sink has every event the endpoint did not drop, or nothing moves for 2 s.
	var after map[string]float64
	for last, lastChange := b.sink.events.Load(), time.Now(); ctx.Err() == nil; {
		after, _ = endpointMetrics(ctx, t.HTTP)
		dropped := uint64(metricDelta(before, after, "mqtt_endpoint_publishes_total/dropped") + metricDelta(before, after, "mqtt_endpoint_events_total/failed"))
		got := b.sink.events.Load()
		if got+dropped >= st.sent.Load() || time.Since(lastChange) > 2*time.Second {
			break
		}
		if got != last {
			last, lastChange = got, time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	cpuPct := cpu.percent()
	busy, steal := mach.since()
	selfPct := (selfCPU() - self0) / time.Since(wall0).Seconds() * 100
	rss1 := rssKiB(t.Pid)
	profWG.Wait()
	if profile != "" && t.Pprof != "" && cfg.ProfileDir != "" {
		for _, p := range []string{"heap", "allocs", "mutex"} {
			f := filepath.Join(cfg.ProfileDir, profile+"."+p+".pprof")
			if err := fetchProfile(ctx, t.Pprof, "/debug/pprof/"+p, f); err != nil {
				b.println("  %s profile: %v", p, err)
			}
		}
	}

	ph := phaseResult{Name: name, Devices: len(devs), QoS: int(spec.qos), Window: spec.window, PayloadBytes: cfg.Size,
		Sent: st.sent.Load(), Received: b.sink.events.Load(), EndpointCPU: cpuPct, ToolCPU: selfPct,
		EndpointRSSMiB: float64(rss1) / 1024, MachineBusy: busy, Steal: steal, Errors: map[string]uint64{}}
	if spec.rate > 0 {
		ph.OfferedRate = spec.rate * float64(len(devs))
	}
	if spec.qos == 1 {
		ph.Acked = st.acked.Load()
		end := time.Unix(0, st.lastAck.Load())
		if st.lastAck.Load() == 0 {
			end = sendEnd
		}
		ph.Seconds = end.Sub(spec.start).Seconds()
		ph.Throughput, ph.ThroughputOf = float64(ph.Acked)/ph.Seconds, "PUBACKs/s"
		l := st.lat.Summary()
		ph.Latency, ph.LatencyOf = &l, "publish → PUBACK"
		if spec.rate > 0 {
			ph.LatencyOf = "publish due → PUBACK"
		}
		for code := range st.codes {
			if n := st.codes[code].Load(); n > 0 && code >= 0x80 {
				ph.Errors[fmt.Sprintf("PUBACK 0x%02x", code)] = n
			}
		}
		if n := st.unanswered.Load(); n > 0 {
			ph.Errors["no PUBACK"] = n
		}
	} else {
		end := time.Unix(0, b.sink.lastEvent.Load())
		if b.sink.lastEvent.Load() == 0 {
			end = sendEnd
		}
		ph.Seconds = end.Sub(spec.start).Seconds()
		ph.Throughput, ph.ThroughputOf = float64(ph.Received)/ph.Seconds, "events/s at the sink"
		l := sinkLat.Summary()
		ph.Latency, ph.LatencyOf = &l, "publish → sink"
		if n := st.stalls.Load(); n > 0 {
			ph.Errors["window stalls"] = n
		}
	}
	if n := st.closed.Load(); n > 0 {
		ph.Errors["connections closed"] = n
	}
	if merr == nil && after != nil {
		dropped := metricDelta(before, after, "mqtt_endpoint_publishes_total/dropped")
		failed := metricDelta(before, after, "mqtt_endpoint_events_total/failed")
		ph.Extra = map[string]any{
			"endpoint_dropped":     dropped,
			"endpoint_send_failed": failed,
			"endpoint_retried":     metricDelta(before, after, "mqtt_endpoint_events_total/retried"),
			"endpoint_rss_before":  float64(rss0) / 1024,
		}
		if dropped > 0 {
			ph.Errors["dropped by endpoint"] = uint64(dropped)
		}
		if failed > 0 {
			ph.Errors["sink send failed"] = uint64(failed)
		}
		lost := float64(ph.Sent) - float64(ph.Received) - dropped - failed
		if spec.qos == 1 {
			lost = float64(ph.Acked) - float64(ph.Received) // acknowledged but never at the sink
		}
		ph.Lost = max(lost, 0)
		if lost > 0 {
			ph.Errors["lost"] = uint64(lost)
		}
	}
	return ph
}

// connectAll connects every device of an ingest scenario at -connect-rate; on failure the
// connections made are closed.
func (b *bench) connectAll(ctx context.Context, t *target, devs []device) ([]*client, error) {
	clients, cst := b.connect(ctx, t, devs, b.cfg.ConnRate, 64, nil)
	if cst.Connected < len(devs) {
		b.closeAll(clients, true)
		return nil, fmt.Errorf("only %d of %d devices connected: %v", cst.Connected, len(devs), cst.Errors)
	}
	return clients, nil
}

// sameLoad is the baseline of an ingest phase: the same number of events (-m) or the same duration.
func (b *bench) sameLoad() baselineSpec {
	if b.cfg.M > 0 {
		return baselineSpec{count: b.cfg.M * b.cfg.N}
	}
	return baselineSpec{duration: b.cfg.Duration}
}

// qos0 measures QoS 0 ingest against the raw-POST baseline, -rounds times in turn (endpoint,
// baseline, endpoint, …) so that a change in the load of a shared machine shows as a spread
// instead of skewing the one ratio; the targets are judged on the round with the median ratio.
func (b *bench) qos0(ctx context.Context) (*scenarioResult, error) {
	cfg := b.cfg
	res := &scenarioResult{Name: "qos0", Title: fmt.Sprintf("QoS 0 ingest: %d devices, %d-byte payloads", cfg.N, cfg.Size)}
	rounds := max(cfg.Rounds, 1)
	type round struct{ ep, bl phaseResult }
	var rs []round
	for i := range rounds {
		suffix := ""
		if rounds > 1 {
			suffix = fmt.Sprintf(" (round %d of %d)", i+1, rounds)
		}
		profile := ""
		if i == rounds/2 {
			profile = "qos0"
		}
		var devs []device
		var ep phaseResult
		err := b.withEndpoint(ctx, cfg.N, 0, func(t *target) error {
			devs = t.Devices
			clients, err := b.connectAll(ctx, t, devs)
			if err != nil {
				return err
			}
			defer b.closeAll(clients, true)
			ep = b.ingestPhase(ctx, t, clients, devs, "endpoint QoS 0"+suffix, pubSpec{qos: 0, window: cfg.Window0, count: cfg.M}, profile)
			return nil
		})
		if err != nil {
			return res, err
		}
		ep.finish()
		res.Phases = append(res.Phases, ep)
		var bl phaseResult
		if !cfg.NoBaseline {
			bl = b.baseline(ctx, "baseline sdk-go POST"+suffix, devs, len(devs), b.sameLoad())
			res.Phases = append(res.Phases, bl)
		}
		rs = append(rs, round{ep, bl})
	}
	ratio := func(r round) float64 {
		if r.bl.Throughput <= 0 {
			return 0
		}
		return r.ep.Throughput / r.bl.Throughput
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(x, y round) int { return cmp.Compare(ratio(x), ratio(y)) })
	med := sorted[len(sorted)/2]
	metric := "events/s at the sink"
	if rounds > 1 {
		metric += fmt.Sprintf(" (median of %d rounds)", rounds)
	}
	res.Rows = append(res.Rows,
		ratioRow(metric, med.ep.Throughput, med.bl.Throughput, "events/s", atLeast(targetQoS0)),
		cpuRow("events per CPU-second (endpoint + tool vs baseline tool)", med.ep, med.bl, "events/CPU-s", atLeast(targetQoS0)),
	)
	if rounds > 1 && !cfg.NoBaseline {
		var ratios []string
		for _, r := range rs {
			ratios = append(ratios, fmt.Sprintf("%.2f", ratio(r)))
		}
		res.Notes = append(res.Notes, fmt.Sprintf("events/s ratio of each round, in order: %s; lowest %.2f, highest %.2f",
			strings.Join(ratios, ", "), ratio(sorted[0]), ratio(sorted[len(sorted)-1])))
	}
	var lost float64
	for _, r := range rs {
		lost += r.ep.Lost
	}
	res.Rows = append(res.Rows,
		row{Metric: "events lost (sent − received − dropped by the endpoint), all rounds", Value: lost, Unit: "events", Target: "= 0", Met: ptr(lost == 0)},
		row{Metric: "endpoint CPU per event", Value: med.ep.EndpointCPUPerOp, Unit: "µs", Target: "(reported)"},
	)
	return res, nil
}

// qos1 measures QoS 1 ingest at full speed and PUBACK latency at half that load.
func (b *bench) qos1(ctx context.Context) (*scenarioResult, error) {
	cfg := b.cfg
	res := &scenarioResult{Name: "qos1", Title: fmt.Sprintf("QoS 1 ingest: %d devices × %d in flight, %d-byte payloads", cfg.N, cfg.W, cfg.Size)}
	var devs []device
	rate := cfg.Rate
	err := b.withEndpoint(ctx, cfg.N, 0, func(t *target) error {
		devs = t.Devices
		clients, err := b.connectAll(ctx, t, devs)
		if err != nil {
			return err
		}
		defer b.closeAll(clients, true)
		if c := clients[0]; c != nil && c.Connack.ReceiveMaximum > 0 && int(c.Connack.ReceiveMaximum) < cfg.W {
			res.Notes = append(res.Notes, fmt.Sprintf("the endpoint's Receive Maximum is %d, below -w %d: the client exceeds it", c.Connack.ReceiveMaximum, cfg.W))
		}
		ph := b.ingestPhase(ctx, t, clients, devs, "endpoint QoS 1 max", pubSpec{qos: 1, window: cfg.W, count: cfg.M}, "qos1")
		res.Phases = append(res.Phases, ph)
		if rate == 0 {
			rate = ph.Throughput / 2
		}
		if rate <= 0 {
			return fmt.Errorf("no PUBACK in the QoS 1 phase: %v", ph.Errors)
		}
		ph = b.ingestPhase(ctx, t, clients, devs, "endpoint QoS 1 half load", pubSpec{qos: 1, window: cfg.W, rate: rate / float64(len(devs))}, "")
		res.Phases = append(res.Phases, ph)
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Phases[0].finish()
	max, half := res.Phases[0], res.Phases[1]
	var bl, blHalf phaseResult
	if !cfg.NoBaseline {
		conc := len(devs) * cfg.W
		bl = b.baseline(ctx, "baseline sdk-go POST max", devs, conc, b.sameLoad())
		blHalf = b.baseline(ctx, "baseline sdk-go POST half load", devs, conc, baselineSpec{duration: cfg.Duration, rate: rate / float64(conc)})
		res.Phases = append(res.Phases, bl, blHalf)
	}
	res.Rows = append(res.Rows,
		ratioRow("events/s acknowledged (PUBACK)", max.Throughput, bl.Throughput, "events/s", atLeast(targetQoS1)),
		cpuRow("events per CPU-second (endpoint + tool vs baseline tool)", max, bl, "events/CPU-s", atLeast(targetQoS1)),
		row{Metric: "events acknowledged but not at the sink", Value: max.Lost + half.Lost, Unit: "events", Target: "= 0", Met: ptr(max.Lost+half.Lost == 0)},
		row{Metric: "endpoint CPU per event", Value: max.EndpointCPUPerOp, Unit: "µs", Target: "(reported)"},
	)
	if half.Latency != nil && blHalf.Latency != nil {
		res.Rows = append(res.Rows,
			ratioRow(fmt.Sprintf("PUBACK p50 at %.0f/s (half load) vs POST p50", rate), half.Latency.P50, blHalf.Latency.P50, "ms", atMost(targetQoS1P50)),
			ratioRow(fmt.Sprintf("PUBACK p99 at %.0f/s (half load) vs POST p99", rate), half.Latency.P99, blHalf.Latency.P99, "ms", atMost(targetQoS1P99)),
			absRow(fmt.Sprintf("PUBACK p99 at %.0f/s (half load)", rate), half.Latency.P99, "ms", atMost(targetQoS1P99Ms)),
		)
	}
	return res, nil
}
