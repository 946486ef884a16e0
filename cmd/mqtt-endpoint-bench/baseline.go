package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
)

// baselineSpec is the load of a baseline phase.
type baselineSpec struct {
	count    int           // events in all; 0: for duration
	duration time.Duration // with count 0
	rate     float64       // per sender events/s; 0: back to back
}

// newBaselineClient is the physical limit of the endpoint's HTTP hop: sdk-go's HTTP client over
// a cloned default transport that keeps a connection per sender.
func newBaselineClient(url string, conc int) (cloudevents.Client, *http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = conc + 16
	tr.MaxIdleConnsPerHost = conc + 16
	c, err := cloudevents.NewClientHTTP(cehttp.WithTarget(url), cehttp.WithClient(http.Client{Transport: tr}))
	return c, tr, err
}

// baseline POSTs the events the endpoint would send for devs straight to the tool's sink with
// conc concurrent senders, each waiting for its answer, and measures events/s and POST latency.
func (b *bench) baseline(ctx context.Context, name string, devs []device, conc int, spec baselineSpec) phaseResult {
	cfg := b.cfg
	ph := phaseResult{Name: name, Devices: conc, PayloadBytes: cfg.Size, Errors: map[string]uint64{}}
	c, tr, err := newBaselineClient(b.sink.URL, conc)
	if err != nil {
		ph.Errors[err.Error()] = 1
		return ph
	}
	defer tr.CloseIdleConnections()
	sinkLat := newHist()
	b.sink.track(names(devs), sinkLat)
	lat := newHist()
	var sent, ok, failed atomic.Uint64
	var left atomic.Int64
	left.Store(int64(spec.count))
	start := time.Now().Add(20 * time.Millisecond)
	until := start.Add(spec.duration)
	self0 := selfCPU()
	mach := readMachine()
	b.setProgress(func() string {
		el := time.Since(start).Seconds()
		return fmt.Sprintf("%s: %.0fs %d events (%.0f/s) p99 %.2fms", name, el, ok.Load(), float64(ok.Load())/el, lat.Summary().P99)
	})
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range conc {
		d := devs[g%len(devs)]
		payload := newPayload(cfg.Size, cfg.JSONBody)
		ct := "application/json"
		if !cfg.JSONBody {
			ct = "application/octet-stream"
		}
		e := cloudevents.NewEvent()
		e.SetType(typeEvent)
		e.SetSource("drogue://" + d.App + "/" + d.Name)
		e.SetSubject("telemetry")
		e.SetDataContentType(ct)
		e.SetExtension("application", d.App)
		e.SetExtension("device", d.Name)
		e.SetExtension("sender", d.Name)
		e.SetExtension("partitionkey", d.App+"/"+d.Name)
		e.SetExtension("instance", "drogue")
		offset := time.Duration(0)
		if spec.rate > 0 {
			offset = time.Duration(float64(time.Second) / spec.rate * float64(g) / float64(conc))
		}
		wg.Go(func() {
			sleepUntil(ctx, start)
			for k := 0; ctx.Err() == nil; k++ {
				if spec.count > 0 {
					if left.Add(-1) < 0 {
						return
					}
				}
				var due time.Time
				if spec.rate > 0 {
					due = start.Add(offset + time.Duration(float64(k)/spec.rate*float64(time.Second)))
					if spec.count == 0 && !due.Before(until) {
						return
					}
					sleepUntil(ctx, due)
				} else if spec.count == 0 && !time.Now().Before(until) {
					return
				}
				now := time.Now()
				if due.IsZero() {
					due = now
				}
				e.SetID(uuid.NewString())
				e.SetTime(now)
				e.DataEncoded = payload.stamp(now.UnixNano(), uint64(k))
				sent.Add(1)
				res := c.Send(ctx, e)
				if cloudevents.IsACK(res) {
					ok.Add(1)
					lat.Record(time.Since(due))
					continue
				}
				failed.Add(1)
				mu.Lock()
				ph.Errors[errorClass(res)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	ph.Seconds = el.Seconds()
	ph.Sent, ph.Acked, ph.Received = sent.Load(), ok.Load(), b.sink.events.Load()
	ph.Throughput, ph.ThroughputOf = float64(ph.Acked)/ph.Seconds, "events/s accepted"
	ph.ToolCPU = (selfCPU() - self0) / el.Seconds() * 100
	ph.MachineBusy, ph.Steal = mach.since()
	l := lat.Summary()
	ph.Latency, ph.LatencyOf = &l, "POST → 202"
	if spec.rate > 0 {
		ph.OfferedRate = spec.rate * float64(conc)
		ph.LatencyOf = "POST due → 202"
	}
	return ph
}
