package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"mqtt-endpoint/bridge/psk"
	"mqtt-endpoint/source"
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
	MQTTSListen       string        // MQTTS_LISTEN
	WSListen          string        // WS_LISTEN
	WSSListen         string        // WSS_LISTEN
	PSKListen         string        // PSK_LISTEN
	CertFile          string        // TLS_CERT_FILE
	KeyFile           string        // TLS_KEY_FILE
	WSSClientCerts    bool          // WSS_CLIENT_CERTS: request (true) or off
	OIDCTokenFile     string        // OIDC_TOKEN_FILE
	HTTPListen        string        // HTTP_LISTEN
	Instance          string        // INSTANCE
	CommandAckTimeout time.Duration // COMMAND_ACK_TIMEOUT
	ConnectTimeout    time.Duration // CONNECT_TIMEOUT
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
	fs.StringVar(&cfg.MQTTSListen, "mqtts-listen", env("MQTTS_LISTEN", ""), "MQTT over TLS listen address, or off; default :8883 when a certificate is set (MQTTS_LISTEN)")
	fs.StringVar(&cfg.WSListen, "ws-listen", env("WS_LISTEN", ":8083"), "MQTT over WebSocket listen address, or off (WS_LISTEN)")
	fs.StringVar(&cfg.WSSListen, "wss-listen", env("WSS_LISTEN", ""), "MQTT over secure WebSocket listen address, or off; default :8084 when a certificate is set (WSS_LISTEN)")
	fs.StringVar(&cfg.PSKListen, "psk-listen", env("PSK_LISTEN", ""), "MQTT over TLS-PSK listen address, or off; default :8884 in a build with -tags psk (PSK_LISTEN)")
	fs.StringVar(&cfg.CertFile, "tls-cert", env("TLS_CERT_FILE", ""), "PEM server certificate for the TLS listeners, re-read on change (TLS_CERT_FILE)")
	fs.StringVar(&cfg.KeyFile, "tls-key", env("TLS_KEY_FILE", ""), "PEM private key of the server certificate (TLS_KEY_FILE)")
	wssCerts := fs.String("wss-client-certs", env("WSS_CLIENT_CERTS", "request"), "request client certificates on wss (request), or not (off: browsers) (WSS_CLIENT_CERTS)")
	fs.StringVar(&cfg.HTTPListen, "http-listen", env("HTTP_LISTEN", ":8080"), "command sink, health and metrics listen address (HTTP_LISTEN)")
	fs.StringVar(&cfg.Instance, "instance", env("INSTANCE", "drogue"), "value of the instance extension (INSTANCE)")
	ackTimeout := fs.String("command-ack-timeout", env("COMMAND_ACK_TIMEOUT", "5s"), "how long a QoS 1 command waits for the device's PUBACK before 504 (COMMAND_ACK_TIMEOUT)")
	connectTimeout := fs.String("connect-timeout", env("CONNECT_TIMEOUT", "10s"), "time a new connection has for its TLS handshake and CONNECT packet (CONNECT_TIMEOUT)")
	fs.StringVar(&cfg.OIDCTokenFile, "oidc-token-file", env("OIDC_TOKEN_FILE", source.DefaultTokenFile), "OIDC token for the sink, sent as a Bearer token when the file exists (OIDC_TOKEN_FILE)")
	level := fs.String("log-level", env("LOG_LEVEL", knativeLevel(getenv("K_LOGGING_CONFIG"))), "log level: debug, info, warn, error (LOG_LEVEL; default from K_LOGGING_CONFIG, else info)")
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
	if d, err := time.ParseDuration(*connectTimeout); err != nil || d <= 0 {
		errs = append(errs, fmt.Errorf("connect timeout %q: want a positive duration such as 10s", *connectTimeout))
	} else {
		cfg.ConnectTimeout = d
	}
	switch *wssCerts {
	case "request":
		cfg.WSSClientCerts = true
	case "off":
	default:
		errs = append(errs, fmt.Errorf("WSS_CLIENT_CERTS %q: want request or off", *wssCerts))
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE and TLS_KEY_FILE go together"))
	}
	tlsDefault := "off"
	if cfg.CertFile != "" {
		tlsDefault = ""
	}
	cfg.MQTTSListen = listenDefault(cfg.MQTTSListen, tlsDefault, ":8883")
	cfg.WSSListen = listenDefault(cfg.WSSListen, tlsDefault, ":8084")
	if cfg.CertFile == "" && (cfg.MQTTSListen != "off" || cfg.WSSListen != "off") {
		errs = append(errs, errors.New("MQTTS_LISTEN and WSS_LISTEN need TLS_CERT_FILE and TLS_KEY_FILE"))
	}
	pskDefault := "off"
	if psk.Available() {
		pskDefault = ""
	}
	cfg.PSKListen = listenDefault(cfg.PSKListen, pskDefault, ":8884")
	if cfg.PSKListen != "off" && !psk.Available() {
		errs = append(errs, errors.New("PSK_LISTEN needs a build with -tags psk and CGO_ENABLED=1 (see README)"))
	}
	if cfg.RegistryPath == "" && !cfg.Dev {
		errs = append(errs, errors.New("REGISTRY_PATH is required (or run with --dev for the example registry)"))
	}
	if cfg.HTTPListen == "off" {
		errs = append(errs, errors.New("HTTP_LISTEN cannot be off: it serves health, readiness and commands"))
	}
	return cfg, errors.Join(errs...)
}

// listenDefault resolves an optional listener address: the value given, else off when the
// listener's prerequisite is missing (def "off"), else its default port.
func listenDefault(value, def, port string) string {
	switch {
	case value != "":
		return value
	case def == "off":
		return "off"
	default:
		return port
	}
}

// knativeLevel reads the log level from Knative's K_LOGGING_CONFIG: the component's
// "loglevel.mqtt-endpoint", else the level of "zap-logger-config", else info. Zap's levels above
// error (dpanic, panic, fatal) mean error.
func knativeLevel(config string) string {
	var c map[string]string
	if config == "" || json.Unmarshal([]byte(config), &c) != nil {
		return "info"
	}
	level := c["loglevel.mqtt-endpoint"]
	if level == "" {
		var zap struct {
			Level string `json:"level"`
		}
		if json.Unmarshal([]byte(c["zap-logger-config"]), &zap) == nil {
			level = zap.Level
		}
	}
	switch level {
	case "debug", "info", "warn", "error":
		return level
	case "dpanic", "panic", "fatal":
		return "error"
	default:
		return "info"
	}
}
