package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// config is the endpoint's whole configuration (SPEC §3): environment variables, overridden by
// flags of the same meaning.
type config struct {
	Dev               bool
	Sink              string        // K_SINK
	CEOverrides       string        // K_CE_OVERRIDES
	CACerts           *string       // K_CA_CERTS
	Namespace         string        // NAMESPACE
	RegistryPath      string        // REGISTRY_PATH
	MQTTListen        string        // MQTT_LISTEN
	HTTPListen        string        // HTTP_LISTEN
	Instance          string        // INSTANCE
	CommandAckTimeout time.Duration // COMMAND_ACK_TIMEOUT
	LogLevel          slog.Level
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	cfg := config{
		Sink:        getenv("K_SINK"),
		CEOverrides: getenv("K_CE_OVERRIDES"),
		Namespace:   getenv("NAMESPACE"),
	}
	if v := getenv("K_CA_CERTS"); v != "" {
		cfg.CACerts = &v
	}
	fs := flag.NewFlagSet("mqtt-endpoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.Dev, "dev", false, "development mode: embedded example registry, events printed on stdout when K_SINK is unset")
	fs.StringVar(&cfg.Sink, "sink", cfg.Sink, "URL events are POSTed to (K_SINK)")
	fs.StringVar(&cfg.RegistryPath, "registry", env("REGISTRY_PATH", ""), "registry YAML file or directory (REGISTRY_PATH)")
	fs.StringVar(&cfg.MQTTListen, "mqtt-listen", env("MQTT_LISTEN", ":1883"), "plain MQTT listen address, or off (MQTT_LISTEN)")
	fs.StringVar(&cfg.HTTPListen, "http-listen", env("HTTP_LISTEN", ":8080"), "command sink, health and metrics listen address (HTTP_LISTEN)")
	fs.StringVar(&cfg.Instance, "instance", env("INSTANCE", "drogue"), "value of the instance extension (INSTANCE)")
	ackTimeout := fs.String("command-ack-timeout", env("COMMAND_ACK_TIMEOUT", "5s"), "how long a QoS 1 command waits for the device's PUBACK before 504 (COMMAND_ACK_TIMEOUT)")
	level := fs.String("log-level", env("LOG_LEVEL", "info"), "log level: debug, info, warn, error (LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var errs []error
	if err := cfg.LogLevel.UnmarshalText([]byte(*level)); err != nil {
		errs = append(errs, fmt.Errorf("log level %q: %w", *level, err))
	}
	if d, err := time.ParseDuration(*ackTimeout); err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("command ack timeout %q: want a positive duration such as 5s", *ackTimeout))
	} else {
		cfg.CommandAckTimeout = d
	}
	if cfg.RegistryPath == "" && !cfg.Dev {
		errs = append(errs, errors.New("REGISTRY_PATH is required (or run with --dev for the example registry)"))
	}
	if cfg.HTTPListen == "off" {
		errs = append(errs, errors.New("HTTP_LISTEN cannot be off: it serves health, readiness and commands"))
	}
	return cfg, errors.Join(errs...)
}
