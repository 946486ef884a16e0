package main

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
)

// Targets: each is a ratio against a baseline measured in the same run (or a bound), so that
// they hold on any machine. They are proposals for the endpoint's 2-core deployment profile.
const (
	targetQoS0          = 1.0 // QoS 0 events/s at the sink ≥ 1.0 × raw sdk-go POSTs/s, 50 senders (issue #6)
	targetQoS1          = 0.8 // QoS 1 PUBACKs/s ≥ 0.8 × raw POSTs/s at 50 × 10 senders (issue #6)
	targetQoS1P50       = 3   // PUBACK p50 at half load ≤ 3 × POST p50 at the same rate
	targetQoS1P99       = 5   // PUBACK p99 at half load ≤ 5 × POST p99 at the same rate
	targetCmdP50        = 3   // POST → device p50 ≤ 3 × POST → 202 p50 of a trivial receiver
	targetCmdP99        = 5   // POST → device p99 ≤ 5 × POST → 202 p99
	targetCmdThroughput = 0.5 // commands/s at concurrency 16 ≥ 0.5 × trivial POSTs/s
	targetRSSPerConn    = 3   // RSS per idle connection ≤ 3 × the minimal Go server's
	targetStormRate     = 0.25
	// The bounds on this 2-core machine, reported beside the ratios.
	targetQoS1P99Ms       = 25.0  // PUBACK p99 at half load
	targetCmdP50Ms        = 0.5   // POST → device p50, concurrency 1
	targetCmdP99Ms        = 2.0   // POST → device p99, concurrency 1
	targetCmdPerSec       = 20000 // commands/s at concurrency 16 (QoS 0)
	targetRSSKiB          = 14.0  // RSS per idle authenticated connection at 15k connections
	targetConnectsPerSec  = 8000  // connects/s, every device with a bcrypt password
	targetOutageGrowthMiB = 64.0  // RSS growth during a sink outage
	targetOutageCreepMiB  = 8.0   // RSS growth from the outage's first half to its second
)

// report is the whole run, also printed as JSON.
type report struct {
	Started   string            `json:"started"`
	Finished  string            `json:"finished"`
	Machine   map[string]string `json:"machine"`
	OpenFiles string            `json:"open_files"`
	Config    map[string]any    `json:"config"`
	Scenarios []*scenarioResult `json:"scenarios"`
	Notes     []string          `json:"notes,omitempty"`
}

// scenarioResult is one scenario: its measured phases and the rows compared with targets.
type scenarioResult struct {
	Name   string        `json:"name"`
	Title  string        `json:"title"`
	Phases []phaseResult `json:"phases"`
	Rows   []row         `json:"targets"`
	Series []series      `json:"series,omitempty"`
	Notes  []string      `json:"notes,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// phaseResult is one measured phase.
type phaseResult struct {
	Name           string            `json:"name"`
	Devices        int               `json:"devices,omitempty"`
	Concurrency    int               `json:"concurrency,omitempty"`
	QoS            int               `json:"qos"`
	Window         int               `json:"window,omitempty"`
	PayloadBytes   int               `json:"payload_bytes,omitempty"`
	OfferedRate    float64           `json:"offered_rate,omitempty"`
	Seconds        float64           `json:"seconds"`
	Sent           uint64            `json:"sent"`
	Acked          uint64            `json:"acked,omitempty"`
	Received       uint64            `json:"received,omitempty"`
	Lost           float64           `json:"lost,omitempty"`
	Throughput     float64           `json:"throughput"`
	ThroughputOf   string            `json:"throughput_of"`
	Latency        *latencies        `json:"latency,omitempty"`
	LatencyOf      string            `json:"latency_of,omitempty"`
	Errors         map[string]uint64 `json:"errors,omitempty"`
	EndpointCPU    float64           `json:"endpoint_cpu_percent,omitempty"`
	ToolCPU        float64           `json:"tool_cpu_percent,omitempty"`
	EndpointRSSMiB float64           `json:"endpoint_rss_mib,omitempty"`
	MachineBusy    float64           `json:"machine_busy_percent,omitempty"` // all cores = 100
	Steal          float64           `json:"steal_percent,omitempty"`
	// OtherCPU is what the rest of the machine used meanwhile (100 = one core): other processes
	// and kernel work not charged to the endpoint or the tool. High values mean a noisy phase.
	OtherCPU float64 `json:"other_cpu_percent,omitempty"`
	// EndpointCPUPerOp is the endpoint's CPU time per event, command or connect, in µs: steadier
	// than throughput on a shared machine.
	EndpointCPUPerOp float64        `json:"endpoint_cpu_us_per_op,omitempty"`
	Extra            map[string]any `json:"extra,omitempty"`
}

// row is one measured value against its target.
type row struct {
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target"`
	Met      *bool   `json:"met,omitempty"`
}

// series is a small time series (x, y).
type series struct {
	Name   string       `json:"name"`
	Points [][2]float64 `json:"points"`
}

type bound struct {
	atLeast bool
	v       float64
}

func atLeast(v float64) bound { return bound{true, v} }
func atMost(v float64) bound  { return bound{false, v} }

func ptr[T any](v T) *T { return &v }

// cpuPerOp is the CPU time (endpoint and tool together) per event, command or connect of a
// phase, in µs; 0 when unknown.
func cpuPerOp(p phaseResult) float64 {
	ops := p.Acked
	if ops == 0 {
		ops = p.Received
	}
	if ops == 0 || p.ToolCPU <= 0 {
		return 0
	}
	return (p.EndpointCPU + p.ToolCPU) / 100 * p.Seconds / float64(ops) * 1e6
}

// cpuRow is the noise-robust cross-check of a throughput ratio: operations per CPU-second of the
// whole measured system (endpoint, load clients and sink) against the baseline's (its senders
// and the same sink). Other processes on a shared machine change throughput a lot between two
// phases but the CPU cost per operation much less.
func cpuRow(metric string, ep, base phaseResult, unit string, b bound) row {
	e, bl := cpuPerOp(ep), cpuPerOp(base)
	var ev, bv float64
	if e > 0 {
		ev = 1e6 / e
	}
	if bl > 0 {
		bv = 1e6 / bl
	}
	r := ratioRow(metric, ev, bv, unit, b)
	r.Target += " (cross-check)"
	return r
}

// absRow compares value with an absolute bound of the issue.
func absRow(metric string, value float64, unit string, b bound) row {
	r := row{Metric: metric, Value: value, Unit: unit}
	if b.atLeast {
		r.Target = fmt.Sprintf("≥ %g %s", b.v, unit)
		r.Met = ptr(value >= b.v)
	} else {
		r.Target = fmt.Sprintf("≤ %g %s", b.v, unit)
		r.Met = ptr(value <= b.v)
	}
	return r
}

// ratioRow compares value with its baseline: the ratio must be within b.
func ratioRow(metric string, value, base float64, unit string, b bound) row {
	r := row{Metric: metric, Value: value, Unit: unit, Baseline: base}
	op := "≤"
	if b.atLeast {
		op = "≥"
	}
	r.Target = fmt.Sprintf("ratio %s %g", op, b.v)
	if base > 0 && value > 0 {
		r.Ratio = value / base
		if b.atLeast {
			r.Met = ptr(r.Ratio >= b.v)
		} else {
			r.Met = ptr(r.Ratio <= b.v)
		}
	}
	return r
}

func (c config) summary() map[string]any {
	return map[string]any{
		"scenarios": c.Scenarios, "n": c.N, "m": c.M, "s": c.Size, "w": c.W, "duration": c.Duration.String(),
		"rate": c.Rate, "version": c.Version, "transport": c.Transport, "json_payload": c.JSONBody,
		"qos0_window": c.Window0, "connect_rate": c.ConnRate, "cmd_devices": c.CmdDevices, "cmd_count": c.CmdCount,
		"cmd_concurrency": c.CmdConcurrency, "cmd_qos": c.CmdQoS, "conns": c.Conns, "storm_parallel": c.StormConns,
		"bcrypt_cost": c.BcryptCost, "idle_connect_rate": c.IdleRate, "outage_modes": c.OutageModes,
		"outage": c.Outage.String(), "outage_rate": c.OutageRate, "external_endpoint": c.EndpointMQTT != "",
	}
}

// finish derives the CPU figures of a phase from what was measured.
func (p *phaseResult) finish() {
	if p.MachineBusy > 0 {
		p.OtherCPU = max(p.MachineBusy*float64(runtime.NumCPU())-p.EndpointCPU-p.ToolCPU, 0)
	}
	ops := p.Acked
	if ops == 0 {
		ops = p.Received
	}
	if p.EndpointCPU > 0 && ops > 0 && p.Seconds > 0 {
		p.EndpointCPUPerOp = p.EndpointCPU / 100 * p.Seconds / float64(ops) * 1e6
	}
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func fmtErrors(m map[string]uint64) string {
	if len(m) == 0 {
		return "–"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func metString(m *bool) string {
	switch {
	case m == nil:
		return "–"
	case *m:
		return "met"
	default:
		return "NOT met"
	}
}

// phaseCells are the columns of a phase in both formats.
func phaseCells(p phaseResult) []string {
	lat := func(f func(l *latencies) float64) string {
		if p.Latency == nil || p.Latency.N == 0 {
			return "–"
		}
		return fmtNum(f(p.Latency))
	}
	cpu := "–"
	if p.EndpointCPU > 0 {
		cpu = fmt.Sprintf("%.0f%%", p.EndpointCPU)
	}
	tool := "–"
	if p.ToolCPU > 0 {
		tool = fmt.Sprintf("%.0f%%", p.ToolCPU)
	}
	machine := "–"
	if p.MachineBusy > 0 {
		machine = fmt.Sprintf("%.0f%%", p.MachineBusy)
		if p.Steal >= 1 {
			machine += fmt.Sprintf(" (steal %.0f%%)", p.Steal)
		}
		machine += fmt.Sprintf(", others %.0f%%", p.OtherCPU)
	}
	perOp := "–"
	if p.EndpointCPUPerOp > 0 {
		perOp = fmtNum(p.EndpointCPUPerOp)
	}
	rss := "–"
	if p.EndpointRSSMiB > 0 {
		rss = fmt.Sprintf("%.1f", p.EndpointRSSMiB)
	}
	ok := p.Acked
	if ok == 0 {
		ok = p.Received
	}
	return []string{p.Name, fmt.Sprintf("%.1f", p.Seconds), fmt.Sprint(p.Sent), fmt.Sprint(ok),
		fmtNum(p.Throughput) + " " + p.ThroughputOf, p.LatencyOf,
		lat(func(l *latencies) float64 { return l.P50 }), lat(func(l *latencies) float64 { return l.P90 }),
		lat(func(l *latencies) float64 { return l.P99 }), lat(func(l *latencies) float64 { return l.Max }),
		fmtErrors(p.Errors), cpu, perOp, tool, machine, rss}
}

var phaseHeader = []string{"phase", "s", "sent", "ok", "throughput", "latency of", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "endpoint CPU", "endpoint CPU µs/op", "tool CPU", "machine busy", "endpoint RSS MiB"}
var rowHeader = []string{"metric", "value", "unit", "baseline", "ratio", "target", "result"}

func rowCells(r row) []string {
	base, ratio := "–", "–"
	if r.Baseline > 0 {
		base = fmtNum(r.Baseline)
	}
	if r.Ratio > 0 {
		ratio = fmt.Sprintf("%.2f", r.Ratio)
	}
	return []string{r.Metric, fmtNum(r.Value), r.Unit, base, ratio, r.Target, metString(r.Met)}
}

// printScenario writes a scenario's tables to the terminal.
func (b *bench) printScenario(s *scenarioResult) {
	for i := range s.Phases {
		s.Phases[i].finish()
	}
	if b.tty {
		fmt.Fprint(b.out, "\r\033[K")
	}
	fmt.Fprintf(b.out, "%s\n", s.Title)
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(phaseHeader, "\t"))
	for _, p := range s.Phases {
		fmt.Fprintln(tw, strings.Join(phaseCells(p), "\t"))
	}
	_ = tw.Flush()
	fmt.Fprintln(b.out)
	if len(s.Rows) > 0 {
		tw = tabwriter.NewWriter(b.out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, strings.Join(rowHeader, "\t"))
		for _, r := range s.Rows {
			fmt.Fprintln(tw, strings.Join(rowCells(r), "\t"))
		}
		_ = tw.Flush()
	}
	for _, n := range s.Notes {
		fmt.Fprintf(b.out, "note: %s\n", n)
	}
	if s.Error != "" {
		fmt.Fprintf(b.out, "error: %s\n", s.Error)
	}
}

// printSummary writes every target row of the run.
func (b *bench) printSummary(rep *report) {
	fmt.Fprintln(b.out, "== summary ==")
	tw := tabwriter.NewWriter(b.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\t"+strings.Join(rowHeader, "\t"))
	for _, s := range rep.Scenarios {
		for _, r := range s.Rows {
			fmt.Fprintln(tw, s.Name+"\t"+strings.Join(rowCells(r), "\t"))
		}
		if s.Error != "" {
			fmt.Fprintf(tw, "%s\tfailed: %s\t\t\t\t\t\t\n", s.Name, s.Error)
		}
	}
	_ = tw.Flush()
}

// markdown renders the report as Markdown tables (BENCHMARKS.md embeds it).
func (rep *report) markdown() string {
	var b strings.Builder
	mdTable := func(w io.Writer, header []string, rows [][]string) {
		fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
		fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(header)))
		for _, r := range rows {
			for i := range r {
				r[i] = strings.ReplaceAll(r[i], "|", "\\|")
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		}
	}
	fmt.Fprintf(&b, "### Targets\n\n")
	var rows [][]string
	for _, s := range rep.Scenarios {
		for _, r := range s.Rows {
			rows = append(rows, append([]string{s.Name}, rowCells(r)...))
		}
		if s.Error != "" {
			rows = append(rows, []string{s.Name, "failed: " + s.Error, "", "", "", "", "", ""})
		}
	}
	mdTable(&b, append([]string{"scenario"}, rowHeader...), rows)
	for _, s := range rep.Scenarios {
		fmt.Fprintf(&b, "\n### %s\n\n", s.Title)
		rows = nil
		for _, p := range s.Phases {
			rows = append(rows, phaseCells(p))
		}
		mdTable(&b, phaseHeader, rows)
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "\n- %s", n)
		}
		if len(s.Notes) > 0 {
			b.WriteString("\n")
		}
		for _, sr := range s.Series {
			fmt.Fprintf(&b, "\n%s: ", sr.Name)
			var pts []string
			for _, p := range sr.Points {
				pts = append(pts, fmt.Sprintf("%.0fs %.0f", p[0], p[1]))
			}
			b.WriteString(strings.Join(pts, " · ") + "\n")
		}
		if s.Error != "" {
			fmt.Fprintf(&b, "\nError: %s\n", s.Error)
		}
	}
	return b.String()
}
