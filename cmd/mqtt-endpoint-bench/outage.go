package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// The three periods of an outage run.
const (
	periodBefore = iota
	periodOutage
	periodAfter
	periods
)

var periodNames = [periods]string{"before", "outage", "after"}

// outage offers a steady load (half the devices QoS 1 with -w in flight, half QoS 0, each
// -outage-rate publishes/s) while the tool's sink works, then fails (503 or hang) for -outage,
// then works again; it samples the endpoint's RSS and counts PUBACK codes per period.
func (b *bench) outage(ctx context.Context) (*scenarioResult, error) {
	cfg := b.cfg
	res := &scenarioResult{Name: "outage", Title: fmt.Sprintf("Sink outage: %d devices (half QoS 1 × %d in flight, half QoS 0), %.0f publishes/s per QoS", max(cfg.N, 2), cfg.W, cfg.OutageRate)}
	if cfg.Version != 5 {
		res.Notes = append(res.Notes, "MQTT 3.1.1 has no negative PUBACK: refused QoS 1 publishes close the connection (counted as connections closed)")
	}
	for _, mode := range cfg.OutageModes {
		if ctx.Err() != nil {
			break
		}
		err := b.withEndpoint(ctx, max(cfg.N, 2), 0, func(t *target) error {
			return b.outageRun(ctx, t, mode, res)
		})
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func (b *bench) outageRun(ctx context.Context, t *target, mode string, res *scenarioResult) error {
	cfg := b.cfg
	devs := t.Devices
	clients, cst := b.connect(ctx, t, devs, cfg.ConnRate, 64, nil)
	defer b.closeAll(clients, false)
	if cst.Connected < len(devs) {
		return fmt.Errorf("only %d of %d devices connected: %v", cst.Connected, len(devs), cst.Errors)
	}
	half := len(devs) / 2
	q1c, q1d := clients[:half], devs[:half]
	q0c, q0d := clients[half:], devs[half:]
	b.sink.track(names(q0d), nil)

	pre, post := 5*time.Second, 5*time.Second
	start := time.Now().Add(20 * time.Millisecond)
	outStart, outEnd := start.Add(pre), start.Add(pre+cfg.Outage)
	until := outEnd.Add(post)
	periodOf := func(ns int64) int {
		switch {
		case ns < outStart.UnixNano():
			return periodBefore
		case ns < outEnd.UnixNano():
			return periodOutage
		}
		return periodAfter
	}
	var per [periods]*pubStats
	for i := range per {
		per[i] = newPubStats()
	}
	st1 := newPubStats()
	st1.split = func(ns int64) *pubStats { return per[periodOf(ns)] }
	st0 := newPubStats()

	// The controller: switch the sink, sample RSS and the endpoint's counters.
	var rssMu sync.Mutex
	type sample struct {
		at  time.Duration
		kib int64
	}
	var samples []sample
	var metrics [periods + 1]map[string]float64
	var sent0 [periods + 1]uint64
	var recv0 [periods + 1]uint64
	var sent1 [periods + 1]uint64
	snap := func(i int) {
		metrics[i], _ = endpointMetrics(ctx, t.HTTP)
		sent0[i], recv0[i], sent1[i] = st0.sent.Load(), b.sink.events.Load(), st1.sent.Load()
	}
	modeCode := sinkUnavailable
	if mode == "hang" {
		modeCode = sinkHang
	}
	ctrlDone := make(chan struct{})
	cpu := startCPU(t.Pid)
	go func() {
		defer close(ctrlDone)
		sleepUntil(ctx, start)
		snap(periodBefore)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		phase := periodBefore
		for ctx.Err() == nil {
			now := time.Now()
			if phase == periodBefore && !now.Before(outStart) {
				snap(periodOutage)
				b.sink.setMode(modeCode)
				phase = periodOutage
			}
			if phase == periodOutage && !now.Before(outEnd) {
				b.sink.setMode(sinkNormal)
				snap(periodAfter)
				phase = periodAfter
			}
			if !now.Before(until) {
				return
			}
			rssMu.Lock()
			samples = append(samples, sample{now.Sub(start), rssKiB(t.Pid)})
			rssMu.Unlock()
			<-tick.C
		}
	}()
	name := fmt.Sprintf("outage %s", mode)
	b.setProgress(func() string {
		el := time.Since(start)
		ph := periodNames[periodOf(time.Now().UnixNano())]
		return fmt.Sprintf("%s [%s] %.0fs QoS1 sent %d acked %d refused %d | QoS0 sent %d at sink %d | sink hanging %d | endpoint RSS %.0f MiB",
			name, ph, el.Seconds(), st1.sent.Load(), sumAcked(per), sumRefused(per), st0.sent.Load(), b.sink.events.Load(), b.sink.hanging.Load(), float64(rssKiB(t.Pid))/1024)
	})
	tmpl := newPayload(cfg.Size, cfg.JSONBody)
	rate := cfg.OutageRate / float64(max(half, 1))
	var wg sync.WaitGroup
	wg.Go(func() {
		b.publishAll(ctx, q1c, q1d, pubSpec{qos: 1, window: cfg.W, start: start, until: until, rate: rate, drain: 40 * time.Second}, st1, tmpl)
	})
	wg.Go(func() {
		b.publishAll(ctx, q0c, q0d, pubSpec{qos: 0, start: start, until: until, rate: cfg.OutageRate / float64(max(len(q0c), 1))}, st0, tmpl)
	})
	wg.Wait()
	<-ctrlDone
	time.Sleep(500 * time.Millisecond)
	snap(periods)
	cpuPct := cpu.percent()

	// RSS: before the outage, its peak, the peak of each half of the outage, and after.
	var rssBefore, peak, firstHalf, secondHalf, after int64
	mid := pre + cfg.Outage/2
	for _, s := range samples {
		switch {
		case s.at < pre:
			rssBefore = s.kib
		case s.at < pre+cfg.Outage:
			peak = max(peak, s.kib)
			if s.at < mid {
				firstHalf = max(firstHalf, s.kib)
			} else {
				secondHalf = max(secondHalf, s.kib)
			}
		default:
			after = s.kib
		}
	}
	for p := range periods {
		ps := per[p]
		ph := phaseResult{Name: fmt.Sprintf("%s: %s, QoS 1", name, periodNames[p]), Devices: half, QoS: 1, Window: cfg.W,
			Sent: sent1[p+1] - sent1[p], Acked: ps.acked.Load(), Errors: map[string]uint64{}, OfferedRate: cfg.OutageRate}
		dur := [periods]time.Duration{pre, cfg.Outage, post}[p]
		ph.Seconds = dur.Seconds()
		ph.Throughput, ph.ThroughputOf = float64(ph.Acked)/ph.Seconds, "PUBACKs/s (success)"
		for code := range ps.codes {
			if n := ps.codes[code].Load(); n > 0 && code >= 0x80 {
				ph.Errors[fmt.Sprintf("PUBACK 0x%02x", code)] = n
			}
		}
		if ps.refusedLat.Count() > 0 {
			l := ps.refusedLat.Summary()
			ph.Latency, ph.LatencyOf = &l, "publish → refusing PUBACK"
		} else {
			l := ps.lat.Summary()
			ph.Latency, ph.LatencyOf = &l, "publish due → PUBACK"
		}
		ph.Extra = map[string]any{}
		if metrics[p] != nil && metrics[p+1] != nil {
			for _, k := range []string{"publishes_total/sink_unavailable", "publishes_total/quota_exceeded", "publishes_total/dropped", "events_total/retried", "events_total/failed"} {
				ph.Extra["endpoint_"+strings.ReplaceAll(k, "/", "_")] = metricDelta(metrics[p], metrics[p+1], "mqtt_endpoint_"+k)
			}
		}
		ph.Extra["qos0_sent"] = sent0[p+1] - sent0[p]
		ph.Extra["qos0_at_sink"] = recv0[p+1] - recv0[p]
		switch p {
		case periodBefore:
			ph.EndpointRSSMiB = float64(rssBefore) / 1024
		case periodOutage:
			ph.EndpointRSSMiB = float64(peak) / 1024
			ph.Extra["rss_first_half_peak_mib"] = float64(firstHalf) / 1024
			ph.Extra["rss_second_half_peak_mib"] = float64(secondHalf) / 1024
			ph.Extra["sink_refused"] = b.sink.refused.Load()
		case periodAfter:
			ph.EndpointRSSMiB = float64(after) / 1024
			ph.Extra["endpoint_cpu_percent_whole_run"] = cpuPct
			if n := st1.unanswered.Load(); n > 0 {
				ph.Errors["no PUBACK 40 s after the end"] = n
			}
			if n := st1.closed.Load() + st0.closed.Load(); n > 0 {
				ph.Errors["connections closed"] = n
			}
		}
		res.Phases = append(res.Phases, ph)
	}
	// A hanging sink refuses late: after every attempt timed out (3 × 5 s by default), possibly after the outage.
	refused := per[periodOutage].refused.Load() + per[periodAfter].refused.Load()
	dropped := 0.0
	if metrics[periodOutage] != nil && metrics[periodAfter] != nil {
		dropped = metricDelta(metrics[periodOutage], metrics[periodAfter], "mqtt_endpoint_publishes_total/dropped")
	}
	growth := float64(peak-rssBefore) / 1024
	creep := float64(secondHalf-firstHalf) / 1024
	res.Rows = append(res.Rows,
		row{Metric: fmt.Sprintf("%s: endpoint RSS growth during the outage (%.0f → %.0f MiB)", mode, float64(rssBefore)/1024, float64(peak)/1024), Value: growth, Unit: "MiB", Target: fmt.Sprintf("≤ %.0f", targetOutageGrowthMiB), Met: ptr(growth <= targetOutageGrowthMiB)},
		row{Metric: fmt.Sprintf("%s: RSS growth from the outage's first half to its second", mode), Value: creep, Unit: "MiB", Target: fmt.Sprintf("≤ %.0f (bounded)", targetOutageCreepMiB), Met: ptr(creep <= targetOutageCreepMiB)},
		row{Metric: fmt.Sprintf("%s: QoS 1 publishes refused (v5 PUBACK ≥ 0x80) during or after the outage", mode), Value: float64(refused), Unit: "publishes", Target: "> 0", Met: ptr(refused > 0 || cfg.Version != 5)},
		row{Metric: fmt.Sprintf("%s: QoS 0 publishes dropped by the endpoint during the outage", mode), Value: dropped, Unit: "publishes", Target: "(reported)"},
		row{Metric: fmt.Sprintf("%s: QoS 1 publishes never answered", mode), Value: float64(st1.unanswered.Load()), Unit: "publishes", Target: "= 0", Met: ptr(st1.unanswered.Load() == 0)},
		row{Metric: fmt.Sprintf("%s: QoS 1 publishes acknowledged after recovery", mode), Value: float64(per[periodAfter].acked.Load()), Unit: "publishes", Target: "> 0", Met: ptr(per[periodAfter].acked.Load() > 0)},
	)
	rssMu.Lock()
	res.Series = append(res.Series, rssSeries(mode, samples, func(s sample) (time.Duration, int64) { return s.at, s.kib }))
	rssMu.Unlock()
	return nil
}

func sumAcked(per [periods]*pubStats) (n uint64) {
	for _, p := range per {
		n += p.acked.Load()
	}
	return n
}

func sumRefused(per [periods]*pubStats) (n uint64) {
	for _, p := range per {
		n += p.refused.Load()
	}
	return n
}

// rssSeries summarises RSS samples as one line per second.
func rssSeries[T any](mode string, samples []T, get func(T) (time.Duration, int64)) series {
	bySec := map[int]int64{}
	for _, s := range samples {
		at, kib := get(s)
		sec := int(at / time.Second)
		bySec[sec] = max(bySec[sec], kib)
	}
	keys := make([]int, 0, len(bySec))
	for k := range bySec {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	out := series{Name: "endpoint RSS (MiB) by second, " + mode + " outage"}
	for _, k := range keys {
		out.Points = append(out.Points, [2]float64{float64(k), float64(bySec[k]) / 1024})
	}
	return out
}
