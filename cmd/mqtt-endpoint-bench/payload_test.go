package main

import (
	"encoding/json"
	"testing"
)

func TestPayload(t *testing.T) {
	const ts = int64(1_790_000_000_123_456_789)
	for _, tc := range []struct {
		size   int
		json   bool
		hasTS  bool
		asJSON bool
	}{
		{256, true, true, true}, {54, true, true, true}, {40, true, true, true}, {26, true, true, true},
		{10, true, false, true}, {0, true, false, false},
		{256, false, true, false}, {11, false, true, false}, {8, false, false, false},
	} {
		p := newPayload(tc.size, tc.json).clone()
		b := p.stamp(ts, 77)
		if len(b) != tc.size {
			t.Errorf("size %d json %v: len %d", tc.size, tc.json, len(b))
		}
		if tc.asJSON && !json.Valid(b) {
			t.Errorf("size %d: not JSON: %q", tc.size, b)
		}
		got, ok := payloadTime(b)
		if ok != tc.hasTS || (ok && got != ts) {
			t.Errorf("size %d json %v: payloadTime = %d, %v; want %d, %v", tc.size, tc.json, got, ok, ts, tc.hasTS)
		}
	}
	if got, ok := payloadTime(commandPayload(ts)); !ok || got != ts || !json.Valid(commandPayload(ts)) {
		t.Errorf("command payload: %d %v %q", got, ok, commandPayload(ts))
	}
}

func TestParseListening(t *testing.T) {
	for _, tc := range []struct {
		line, listener, address string
		ok                      bool
	}{
		{`{"time":"x","level":"INFO","msg":"listening","listener":"mqtt","address":"127.0.0.1:1883"}`, "mqtt", "127.0.0.1:1883", true},
		{`time=2026-01-01T00:00:00Z level=INFO msg=listening listener=http address=127.0.0.1:8080`, "http", "127.0.0.1:8080", true},
		{`time=x level=INFO msg="device connected" listener=mqtt`, "mqtt", "", false},
		{`{"msg":"listening"}`, "", "", false},
	} {
		l, a, ok := parseListening(tc.line)
		if ok != tc.ok || (ok && (l != tc.listener || a != tc.address)) {
			t.Errorf("%s: %q %q %v", tc.line, l, a, ok)
		}
	}
}

func TestRatioRow(t *testing.T) {
	for _, tc := range []struct {
		value, base float64
		b           bound
		met         *bool
	}{
		{60, 100, atLeast(0.5), ptr(true)},
		{40, 100, atLeast(0.5), ptr(false)},
		{3, 1, atMost(3), ptr(true)},
		{3.1, 1, atMost(3), ptr(false)},
		{3, 0, atMost(3), nil}, // no baseline: not judged
	} {
		r := ratioRow("m", tc.value, tc.base, "u", tc.b)
		if (r.Met == nil) != (tc.met == nil) || (r.Met != nil && *r.Met != *tc.met) {
			t.Errorf("%v vs %v (%+v): met %v", tc.value, tc.base, tc.b, r.Met)
		}
	}
}
