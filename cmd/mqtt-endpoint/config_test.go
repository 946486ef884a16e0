package main

import (
	"io"
	"strings"
	"testing"
)

func TestKnativeLevel(t *testing.T) {
	tests := []struct {
		name, config, want string
	}{
		{"unset", "", "info"},
		{"not JSON", "{", "info"},
		{"zap level", `{"zap-logger-config":"{\"level\":\"debug\",\"encoding\":\"json\"}"}`, "debug"},
		{"component level wins", `{"zap-logger-config":"{\"level\":\"debug\"}","loglevel.mqtt-endpoint":"warn"}`, "warn"},
		{"fatal means error", `{"loglevel.mqtt-endpoint":"fatal"}`, "error"},
		{"unknown level", `{"loglevel.mqtt-endpoint":"verbose"}`, "info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := knativeLevel(tt.config); got != tt.want {
				t.Fatalf("knativeLevel(%s) = %q, want %q", tt.config, got, tt.want)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string // substring; "" means valid
		check   func(t *testing.T, c config)
	}{
		{name: "dev mode defaults", args: []string{"--dev"}, check: func(t *testing.T, c config) {
			if c.MQTTListen != ":1883" || c.WSListen != ":8083" || c.HTTPListen != ":8080" || c.MQTTSListen != "off" || c.WSSListen != "off" {
				t.Fatalf("listeners %+v", c)
			}
			if c.Instance != "drogue" || c.CommandAckTimeout.String() != "5s" {
				t.Fatalf("defaults %+v", c)
			}
		}},
		{name: "registry required outside dev", wantErr: "REGISTRY_PATH is required"},
		{name: "certificate enables TLS listeners", env: map[string]string{"REGISTRY_PATH": "r", "TLS_CERT_FILE": "c", "TLS_KEY_FILE": "k"}, check: func(t *testing.T, c config) {
			if c.MQTTSListen != ":8883" || c.WSSListen != ":8084" || !c.WSSClientCerts {
				t.Fatalf("TLS listeners %+v", c)
			}
		}},
		{name: "TLS listener without certificate", env: map[string]string{"REGISTRY_PATH": "r", "MQTTS_LISTEN": ":8883"}, wantErr: "need TLS_CERT_FILE"},
		{name: "certificate without key", env: map[string]string{"REGISTRY_PATH": "r", "TLS_CERT_FILE": "c"}, wantErr: "go together"},
		{name: "flag overrides environment", env: map[string]string{"REGISTRY_PATH": "r", "INSTANCE": "env"}, args: []string{"--instance", "flag"}, check: func(t *testing.T, c config) {
			if c.Instance != "flag" {
				t.Fatalf("instance %q", c.Instance)
			}
		}},
		{name: "bad durations and values", env: map[string]string{"REGISTRY_PATH": "r", "COMMAND_ACK_TIMEOUT": "soon", "WSS_CLIENT_CERTS": "maybe"}, wantErr: "command ack timeout"},
		{name: "http cannot be off", env: map[string]string{"REGISTRY_PATH": "r", "HTTP_LISTEN": "off"}, wantErr: "HTTP_LISTEN cannot be off"},
		{name: "K_CA_CERTS kept", env: map[string]string{"REGISTRY_PATH": "r", "K_CA_CERTS": "pem"}, check: func(t *testing.T, c config) {
			if c.CACerts == nil || *c.CACerts != "pem" {
				t.Fatal("K_CA_CERTS lost")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
