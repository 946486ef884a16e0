package bridge

import (
	"errors"
	"fmt"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"

	"mqtt-endpoint/bridge/auth"
	"mqtt-endpoint/source"
)

func TestPubackCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want byte
	}{
		{"success", nil, 0x00},
		{"not authorized", errNotAuthorized, 0x87},
		{"topic invalid", errTopicInvalid, 0x90},
		{"payload invalid, wrapped", fmt.Errorf("event: %w", source.ErrPayloadInvalid), 0x99},
		{"queue full", source.ErrQueueFull, 0x97},
		{"not ready", source.ErrNotReady, 0x89},
		{"shutting down", errShuttingDown, 0x89},
		{"sink unavailable, wrapped", fmt.Errorf("send: %w", source.ErrSinkUnavailable), 0x89},
		{"sink rejected", source.ErrSinkRejected, 0x80},
		{"anything else", errors.New("boom"), 0x80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pubackCode(tt.err)
			if got.Code != tt.want {
				t.Fatalf("pubackCode(%v) = 0x%02x, want 0x%02x", tt.err, got.Code, tt.want)
			}
			if tt.err != nil && got.Reason == "" {
				t.Fatalf("pubackCode(%v) has no reason string", tt.err)
			}
		})
	}
}

func TestConnackCode(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		v3, v5 byte
	}{
		{"bad credentials", auth.ErrBadCredentials, 0x04, 0x86},
		{"unknown error looks the same", errors.New("lookup failed"), 0x04, 0x86},
		{"disabled", fmt.Errorf("app: %w", auth.ErrDisabled), 0x05, 0x87},
		{"clean start required", errCleanStartRequired, 0x02, 0x83},
		{"shutting down", errShuttingDown, 0x03, 0x8B},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := connackCode(4, tt.err).Code; got != tt.v3 {
				t.Errorf("v3 code 0x%02x, want 0x%02x", got, tt.v3)
			}
			if got := connackCode(5, tt.err).Code; got != tt.v5 {
				t.Errorf("v5 code 0x%02x, want 0x%02x", got, tt.v5)
			}
		})
	}
}

// TestHookProvides guards against a hook method silently not being called: mochi calls only the
// methods Provides lists.
func TestHookProvides(t *testing.T) {
	h := &hook{}
	want := map[byte]bool{
		mqtt.OnConnect: true, mqtt.OnConnectAuthenticate: true, mqtt.OnSessionEstablish: true,
		mqtt.OnDisconnect: true, mqtt.OnPacketRead: true, mqtt.OnPacketEncode: true,
		mqtt.OnACLCheck: true, mqtt.OnPublish: true, mqtt.OnWill: true,
		mqtt.OnSubscribe: true, mqtt.OnUnsubscribe: true,
	}
	for b := byte(0); b < 64; b++ {
		if got := h.Provides(b); got != want[b] {
			t.Errorf("Provides(%d) = %v, want %v", b, got, want[b])
		}
	}
}
