// Command mqtt-endpoint is the device-facing MQTT endpoint: devices connect and publish, every
// publish becomes a CloudEvent POSTed to K_SINK. See README.md and SPEC §3 for its configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"mqtt-endpoint/bridge"
	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/bridge/registry"
	"mqtt-endpoint/sink"
	"mqtt-endpoint/source"
)

// version is stamped by the image build (ko.yaml: -X main.version=…).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mqtt-endpoint:", err)
		os.Exit(1)
	}
}

// run wires the endpoint from its configuration and serves until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	log.Info("starting mqtt-endpoint", "version", version)

	reg, err := openRegistry(ctx, cfg, log)
	if err != nil {
		return err
	}

	sender, err := newSender(cfg, stdout)
	if err != nil {
		return err
	}
	if sender == nil {
		log.Warn("K_SINK is not set: the endpoint is not ready and refuses publishes as server busy")
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		registryCollector{reg}, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "mqtt_endpoint_build_info",
			Help:        "Always 1; the version label is the build's.",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }))
	fwd := source.NewForwarder(sender, source.Options{Instance: cfg.Instance, Logger: log, Metrics: metrics})

	listeners, err := mqttListeners(cfg)
	if err != nil {
		return err
	}
	srv, err := bridge.New(bridge.Options{
		Listeners:      listeners,
		Registry:       reg,
		Authenticator:  auth.New(reg, auth.Options{}),
		Forwarder:      fwd,
		Logger:         log,
		Metrics:        metrics,
		ConnectTimeout: cfg.ConnectTimeout,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}

	hln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("listen http on %s: %w", cfg.HTTPListen, err)
	}
	log.Info("listening", "listener", "http", "address", hln.Addr().String())
	hs := &http.Server{
		Handler:           routes(sink.Routes(srv, sink.Options{AckTimeout: cfg.CommandAckTimeout, Logger: log}), srv, reg, fwd, metrics),
		ReadHeaderTimeout: 10 * time.Second,
	}
	httpDone := make(chan error, 1)
	go func() { httpDone <- hs.Serve(hln) }()

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-httpDone:
		_ = srv.Close()
		return fmt.Errorf("serve http: %w", err)
	}
	// Kubernetes waits terminationGracePeriodSeconds (30 in config/) before it kills the pod.
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(shutdown), fwd.Close(shutdown), hs.Shutdown(shutdown))
	log.Info("stopped", "err", err)
	return err
}

// mqttListeners lists the device-facing listeners that are not off (SPEC §3).
func mqttListeners(cfg config) ([]bridge.Listener, error) {
	var certs *bridge.CertificateFiles
	if cfg.CertFile != "" {
		var err error
		if certs, err = bridge.LoadCertificateFiles(cfg.CertFile, cfg.KeyFile); err != nil {
			return nil, err
		}
	}
	all := []bridge.Listener{
		{Name: "mqtt", Address: cfg.MQTTListen, Transport: bridge.TCP},
		{Name: "mqtts", Address: cfg.MQTTSListen, Transport: bridge.TCP, Certificate: certs},
		{Name: "ws", Address: cfg.WSListen, Transport: bridge.WebSocket},
		{Name: "wss", Address: cfg.WSSListen, Transport: bridge.WebSocket, Certificate: certs, NoClientCertificates: !cfg.WSSClientCerts},
		{Name: "psk", Address: cfg.PSKListen, Transport: bridge.PSK},
	}
	var out []bridge.Listener
	for _, l := range all {
		if l.Address != "off" {
			out = append(out, l)
		}
	}
	return out, nil
}

// openRegistry loads REGISTRY_PATH and watches it, or uses the embedded example in dev mode.
func openRegistry(ctx context.Context, cfg config, log *slog.Logger) (*registry.Store, error) {
	if cfg.RegistryPath != "" {
		return registry.Open(ctx, cfg.RegistryPath, log)
	}
	r, err := registry.Parse("dev-registry.yaml (embedded)", devRegistry)
	if err != nil {
		return nil, fmt.Errorf("embedded dev registry: %w", err)
	}
	log.Info("using the embedded example registry (dev mode)")
	return registry.NewStore(r), nil
}

// newSender returns the sink client: K_SINK, the console in dev mode, or nil (not ready).
func newSender(cfg config, stdout io.Writer) (source.Sender, error) {
	switch {
	case cfg.Sink != "":
		s, err := source.NewClient(source.ClientOptions{
			Sink:        cfg.Sink,
			CACerts:     cfg.CACerts,
			CEOverrides: cfg.CEOverrides,
			Namespace:   cfg.Namespace,
			TokenFile:   cfg.OIDCTokenFile,
		})
		if err != nil {
			return nil, fmt.Errorf("sink client for %s: %w", cfg.Sink, err)
		}
		return s, nil
	case cfg.Dev:
		return source.NewConsoleSender(stdout), nil
	default:
		return nil, nil
	}
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.Dev {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
