package main

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
)

// A payload carries the time it was published (unix nanoseconds), so that the sink and the
// command receivers measure latency without any table: JSON payloads start with
// {"ts":<19 digits>, binary ones with the magic "\x00ts" and 8 big-endian bytes.
const (
	jsonTimePrefix = `{"ts":`
	binMagic       = "\x00ts"
	tsDigits       = 19
)

// payloadTemplate is a payload of a fixed size whose time and sequence number are rewritten
// in place for every message.
type payloadTemplate struct {
	buf    []byte
	json   bool
	tsAt   int // -1: no time (payload too small)
	seqAt  int // -1: no sequence number
	seqLen int
}

// newPayload returns a template of size bytes, JSON (valid JSON of exactly size bytes when
// size >= 26) or binary.
func newPayload(size int, json bool) *payloadTemplate {
	p := &payloadTemplate{json: json, tsAt: -1, seqAt: -1}
	if json {
		const full = `{"ts":0000000000000000000,"seq":"0000000000","pad":"`
		switch {
		case size >= len(full)+2:
			var b strings.Builder
			b.WriteString(full)
			b.WriteString(strings.Repeat("x", size-len(full)-2))
			b.WriteString(`"}`)
			p.buf = []byte(b.String())
			p.tsAt, p.seqAt, p.seqLen = len(jsonTimePrefix), len(`{"ts":0000000000000000000,"seq":"`), 10
		case size >= len(jsonTimePrefix)+tsDigits+1:
			p.buf = []byte(`{"ts":0000000000000000000` + strings.Repeat(" ", size-len(jsonTimePrefix)-tsDigits-1) + `}`)
			p.tsAt = len(jsonTimePrefix)
		default:
			p.buf = []byte(strings.Repeat("1", max(size, 1))[:max(size, 0)])
		}
		return p
	}
	p.buf = make([]byte, size)
	for i := range p.buf {
		p.buf[i] = byte(i*7 + 1)
	}
	if size >= len(binMagic)+8 {
		copy(p.buf, binMagic)
		p.tsAt = len(binMagic)
		if size >= len(binMagic)+16 {
			p.seqAt, p.seqLen = len(binMagic)+8, 8
		}
	}
	return p
}

// clone returns a template with its own buffer (one per publisher).
func (p *payloadTemplate) clone() *payloadTemplate {
	q := *p
	q.buf = bytes.Clone(p.buf)
	return &q
}

// stamp writes the time and sequence number and returns the payload.
func (p *payloadTemplate) stamp(ts int64, seq uint64) []byte {
	if p.tsAt >= 0 {
		if p.json {
			writeDigits(p.buf[p.tsAt:p.tsAt+tsDigits], uint64(ts))
		} else {
			binary.BigEndian.PutUint64(p.buf[p.tsAt:], uint64(ts))
		}
	}
	if p.seqAt >= 0 {
		if p.json {
			writeDigits(p.buf[p.seqAt:p.seqAt+p.seqLen], seq)
		} else {
			binary.BigEndian.PutUint64(p.buf[p.seqAt:], seq)
		}
	}
	return p.buf
}

// writeDigits writes v as decimal digits filling b, zero-padded on the left (modulo 10^len(b)).
func writeDigits(b []byte, v uint64) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// payloadTime reads the publish time of a payload made by payloadTemplate.
func payloadTime(b []byte) (int64, bool) {
	switch {
	case len(b) >= len(jsonTimePrefix)+tsDigits && string(b[:len(jsonTimePrefix)]) == jsonTimePrefix:
		d := b[len(jsonTimePrefix) : len(jsonTimePrefix)+tsDigits]
		var v int64
		for _, c := range d {
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		}
		return v, true
	case len(b) >= len(binMagic)+8 && string(b[:len(binMagic)]) == binMagic:
		return int64(binary.BigEndian.Uint64(b[len(binMagic):])), true
	}
	return 0, false
}

// commandPayload is the body of a command: a JSON object carrying the time it was POSTed.
func commandPayload(ts int64) []byte {
	b := make([]byte, 0, 40)
	b = append(b, jsonTimePrefix...)
	b = strconv.AppendInt(b, ts, 10)
	return append(b, `,"cmd":"set"}`...)
}
