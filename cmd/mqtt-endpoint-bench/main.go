// Command mqtt-endpoint-bench is a load generator for the MQTT endpoint: it opens device
// connections, publishes at QoS 0 and 1, sends commands over HTTP and holds thousands of idle
// connections, and reports throughput, latency percentiles and errors, each compared with a
// baseline measured in the same run on the same machine.
//
// With no flags it builds ./cmd/mqtt-endpoint, starts it with a generated registry and its own
// CloudEvents receiver as K_SINK, and runs every scenario:
//
//	go run ./cmd/mqtt-endpoint-bench                      # all scenarios, ~6 minutes
//	go run ./cmd/mqtt-endpoint-bench -scenario qos1 -n 100 -w 20 -duration 20s
//
// Against an endpoint you run yourself, write a registry (as many devices as the largest
// scenario needs: -conns for connections), start the endpoint with REGISTRY_PATH=bench.yaml and
// K_SINK=http://127.0.0.1:9090/, and point the tool at it:
//
//	go run ./cmd/mqtt-endpoint-bench -write-registry bench.yaml -n 100
//	go run ./cmd/mqtt-endpoint-bench -scenario qos0,qos1,commands \
//	    -endpoint-mqtt 127.0.0.1:1883 -endpoint-http 127.0.0.1:8080 -registry bench.yaml \
//	    -sink-listen 127.0.0.1:9090 -endpoint-pid $(pidof mqtt-endpoint)
//
// See -h for every flag and BENCHMARKS.md for results.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// config is the tool's configuration, from flags.
type config struct {
	Scenarios []string

	// Load shape.
	N          int           // devices publishing (ingest, outage)
	M          int           // messages per device; 0: publish for Duration
	Size       int           // payload bytes
	W          int           // publishes in flight per connection
	Duration   time.Duration // length of each measured phase
	Rate       float64       // publishes/s for the QoS 1 latency phase; 0: half the measured maximum
	Version    byte          // 4 or 5
	Transport  string        // tcp or ws
	JSONBody   bool          // JSON payloads (the endpoint sniffs them) rather than binary
	Window0    int           // QoS 0: sent-but-not-received events per device; 0: open loop
	ConnRate   float64       // connects/s when opening the load connections
	Keepalive  uint16
	NoBaseline bool
	Rounds     int // qos0: endpoint and baseline phases in turn, this many times each

	// Commands.
	CmdDevices     int
	CmdCount       int // commands in the concurrency-1 latency phase
	CmdConcurrency int
	CmdQoS         byte

	// Connections.
	Conns      int
	StormConns int     // connections in flight during the reconnect storm
	BcryptCost int     // 0: plain passwords
	IdleRate   float64 // connects/s for the idle-connection (RSS) phase

	// Outage.
	OutageModes []string // 503, hang
	Outage      time.Duration
	OutageRate  float64 // publishes/s offered per QoS during the outage scenario

	// Targets.
	EndpointBin  string
	EndpointMQTT string
	EndpointWS   string
	EndpointHTTP string
	EndpointPID  int
	Registry     string
	Password     string
	SinkListen   string
	LogLevel     string
	ProfileDir   string

	WriteRegistry string // write a registry of N devices and exit

	JSON     bool
	Markdown string
	Quiet    bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == idleServerArg {
		os.Exit(runIdleServer(os.Args[2:]))
	}
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mqtt-endpoint-bench:", err)
		os.Exit(2)
	}
	if cfg.WriteRegistry != "" {
		if _, err := generateRegistry(cfg.WriteRegistry, cfg.N, 0); err != nil {
			fmt.Fprintln(os.Stderr, "mqtt-endpoint-bench:", err)
			os.Exit(1)
		}
		fmt.Printf("wrote %d devices of application %q to %s\n", cfg.N, benchApp, cfg.WriteRegistry)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, cfg, os.Stdout, os.Stderr)
	if rep != nil {
		if cfg.JSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		}
		if cfg.Markdown != "" {
			if werr := os.WriteFile(cfg.Markdown, []byte(rep.markdown()), 0o644); werr != nil {
				fmt.Fprintln(os.Stderr, "mqtt-endpoint-bench:", werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqtt-endpoint-bench:", err)
		os.Exit(1)
	}
}

var allScenarios = []string{"qos0", "qos1", "commands", "connections", "outage"}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("mqtt-endpoint-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mqtt-endpoint-bench [flags]\n\nLoad generator for the MQTT endpoint. Without -endpoint-mqtt it builds ./cmd/mqtt-endpoint and\nstarts it itself, with a generated registry and the tool's own CloudEvents receiver as K_SINK.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	scen := fs.String("scenario", "all", "scenarios to run, comma-separated: qos0, qos1, commands, connections, outage, all")
	fs.IntVar(&cfg.N, "n", 50, "devices publishing in the ingest and outage scenarios")
	fs.IntVar(&cfg.M, "m", 0, "messages per device in each ingest phase; 0 publishes for -duration instead")
	fs.IntVar(&cfg.Size, "s", 256, "payload size in bytes")
	fs.IntVar(&cfg.W, "w", 10, "publishes in flight per connection (QoS 1: unacknowledged; QoS 0: sent but not yet at the sink, see -qos0-window)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of each measured phase (with -m 0)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "publishes/s of the QoS 1 latency phase, all devices together; 0 means half the measured maximum")
	version := fs.Int("version", 5, "MQTT protocol version: 4 (3.1.1) or 5")
	fs.StringVar(&cfg.Transport, "transport", "tcp", "tcp or ws (MQTT over WebSocket)")
	payload := fs.String("payload", "json", "payload kind: json (the endpoint sniffs and validates it) or binary")
	fs.IntVar(&cfg.Window0, "qos0-window", -1, "QoS 0 flow control: at most this many events per device sent and not yet received by the sink; 0 is open loop (the endpoint drops what it cannot queue); -1 means -w")
	fs.Float64Var(&cfg.ConnRate, "connect-rate", 500, "connects/s when opening the load connections; 0 is unlimited")
	ka := fs.Int("keepalive", 300, "MQTT keep-alive in seconds (PINGREQ is sent on idle connections)")
	fs.BoolVar(&cfg.NoBaseline, "no-baseline", false, "skip the baselines")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "qos0: run the endpoint and baseline phases this many times in turn and judge the round with the median ratio")
	fs.IntVar(&cfg.CmdDevices, "cmd-devices", 16, "devices subscribed for commands")
	fs.IntVar(&cfg.CmdCount, "cmd-count", 0, "commands sent one at a time in the command latency phase; 0 sends them for -duration")
	fs.IntVar(&cfg.CmdConcurrency, "cmd-concurrency", 16, "concurrent POSTs in the command throughput phase")
	cmdQoS := fs.Int("cmd-qos", 0, "QoS of the command subscriptions (0 or 1)")
	fs.IntVar(&cfg.Conns, "conns", 15000, "idle connections in the connections scenario")
	fs.IntVar(&cfg.StormConns, "storm-parallel", 200, "connects in flight during the reconnect storm")
	fs.IntVar(&cfg.BcryptCost, "bcrypt-cost", 10, "bcrypt cost of the device passwords in the connections scenario; 0 for plain passwords")
	fs.Float64Var(&cfg.IdleRate, "idle-connect-rate", 2000, "connects/s when opening the idle connections")
	outage := fs.String("outage-modes", "503,hang", "sink outages to simulate: 503 (answers 503 at once), hang (holds requests until the sender gives up)")
	fs.DurationVar(&cfg.Outage, "outage", 20*time.Second, "length of each sink outage")
	fs.Float64Var(&cfg.OutageRate, "outage-rate", 1000, "publishes/s offered at each of QoS 0 and QoS 1 during the outage scenario")
	fs.StringVar(&cfg.EndpointBin, "endpoint-bin", "", "mqtt-endpoint binary to start; default: go build ./cmd/mqtt-endpoint")
	fs.StringVar(&cfg.EndpointMQTT, "endpoint-mqtt", "", "host:port of a running endpoint's MQTT listener (then the tool starts none)")
	fs.StringVar(&cfg.EndpointWS, "endpoint-ws", "", "host:port of a running endpoint's WebSocket listener")
	fs.StringVar(&cfg.EndpointHTTP, "endpoint-http", "", "host:port of a running endpoint's HTTP listener (commands, /metrics)")
	fs.IntVar(&cfg.EndpointPID, "endpoint-pid", 0, "pid of a running endpoint on this machine, for its RSS and CPU")
	fs.StringVar(&cfg.Registry, "registry", "", "registry of a running endpoint: the tool connects as its devices with plain passwords")
	fs.StringVar(&cfg.Password, "password", "", "with -registry: the password of every device (for hashed credentials)")
	fs.StringVar(&cfg.SinkListen, "sink-listen", "127.0.0.1:0", "address of the tool's CloudEvents receiver (the endpoint's K_SINK)")
	fs.StringVar(&cfg.LogLevel, "endpoint-log-level", "info", "LOG_LEVEL of the started endpoint")
	fs.StringVar(&cfg.ProfileDir, "profile", "", "directory for CPU and heap profiles of the started endpoint during the ingest phases (built with a pprof overlay)")
	fs.StringVar(&cfg.WriteRegistry, "write-registry", "", "write a registry of -n devices with plain passwords to this file and exit (for -registry with an endpoint you run)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON on stdout instead of tables")
	fs.StringVar(&cfg.Markdown, "markdown", "", "also write the report as Markdown tables to this file")
	fs.BoolVar(&cfg.Quiet, "q", false, "no live progress")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var errs []error
	for _, s := range strings.Split(*scen, ",") {
		s = strings.TrimSpace(s)
		switch s {
		case "all":
			cfg.Scenarios = append(cfg.Scenarios, allScenarios...)
		case "qos0", "qos1", "commands", "connections", "outage":
			cfg.Scenarios = append(cfg.Scenarios, s)
		default:
			errs = append(errs, fmt.Errorf("unknown scenario %q", s))
		}
	}
	for _, m := range strings.Split(*outage, ",") {
		switch m = strings.TrimSpace(m); m {
		case "503", "hang":
			cfg.OutageModes = append(cfg.OutageModes, m)
		case "":
		default:
			errs = append(errs, fmt.Errorf("unknown outage mode %q", m))
		}
	}
	switch *version {
	case 3, 4:
		cfg.Version = 4
	case 5:
		cfg.Version = 5
	default:
		errs = append(errs, fmt.Errorf("-version %d: want 4 (3.1.1) or 5", *version))
	}
	if cfg.Transport != "tcp" && cfg.Transport != "ws" {
		errs = append(errs, fmt.Errorf("-transport %q: want tcp or ws", cfg.Transport))
	}
	switch *payload {
	case "json":
		cfg.JSONBody = true
	case "binary":
	default:
		errs = append(errs, fmt.Errorf("-payload %q: want json or binary", *payload))
	}
	if *cmdQoS != 0 && *cmdQoS != 1 {
		errs = append(errs, fmt.Errorf("-cmd-qos %d: want 0 or 1", *cmdQoS))
	}
	cfg.CmdQoS = byte(*cmdQoS)
	if *ka < 0 || *ka > 65535 {
		errs = append(errs, fmt.Errorf("-keepalive %d out of range", *ka))
	}
	cfg.Keepalive = uint16(*ka)
	if cfg.Window0 < 0 {
		cfg.Window0 = cfg.W
	}
	if cfg.N < 1 || cfg.W < 1 || cfg.W > 16384 || cfg.Size < 0 || cfg.CmdDevices < 1 || cfg.CmdConcurrency < 1 || cfg.Conns < 1 {
		errs = append(errs, errors.New("-n, -w, -cmd-devices, -cmd-concurrency and -conns must be positive (-w at most 16384), -s not negative"))
	}
	if cfg.M == 0 && cfg.Duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive when -m is 0"))
	}
	if cfg.EndpointMQTT == "" && (cfg.EndpointHTTP != "" || cfg.Registry != "") {
		errs = append(errs, errors.New("-endpoint-http and -registry go with -endpoint-mqtt (a running endpoint)"))
	}
	if cfg.EndpointMQTT != "" && cfg.Registry == "" {
		errs = append(errs, errors.New("-endpoint-mqtt needs -registry: the devices to connect as"))
	}
	if cfg.Transport == "ws" && cfg.EndpointMQTT != "" && cfg.EndpointWS == "" {
		errs = append(errs, errors.New("-transport ws with a running endpoint needs -endpoint-ws"))
	}
	return cfg, errors.Join(errs...)
}
