package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a log-linear latency histogram of nanosecond values: exact below 128 ns, then 128
// buckets per power of two, so every percentile is within 0.4% of a recorded value (the bucket
// midpoint is reported). Record is lock-free and safe for concurrent use; a snapshot may be
// read while recording goes on (live progress).
type hist struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	min    atomic.Int64 // math.MaxInt64 while empty (set by newHist)
	max    atomic.Int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histMaxExp  = 42 // values up to 2^42 ns (73 minutes); larger ones land in the last bucket
	histBuckets = (histMaxExp - histSubBits + 1) * histSub
)

func newHist() *hist {
	h := &hist{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v int64) int {
	if v < histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	msb := bits.Len64(uint64(v)) - 1
	shift := msb - histSubBits
	i := (shift+1)*histSub + int(v>>uint(shift)) - histSub
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < histSub {
		return int64(i), int64(i)
	}
	shift := i/histSub - 1
	sub := int64(i%histSub + histSub)
	return sub << uint(shift), (sub+1)<<uint(shift) - 1
}

// Record adds one value.
func (h *hist) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count is the number of recorded values.
func (h *hist) Count() uint64 { return h.n.Load() }

// latencies is a summary of a histogram, in milliseconds for the report.
type latencies struct {
	N    uint64  `json:"n"`
	Min  float64 `json:"min_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// Summary returns the percentiles of what was recorded so far.
func (h *hist) Summary() latencies {
	var counts [histBuckets]uint64
	var n uint64
	for i := range counts {
		counts[i] = h.counts[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return latencies{}
	}
	ms := func(v int64) float64 { return float64(v) / 1e6 }
	minV, maxV := h.min.Load(), h.max.Load()
	pct := func(p float64) float64 {
		return ms(clamp(percentile(counts[:], n, p), minV, maxV))
	}
	return latencies{
		N:    n,
		Min:  ms(minV),
		P50:  pct(50),
		P90:  pct(90),
		P99:  pct(99),
		P999: pct(99.9),
		Max:  ms(maxV),
		Mean: ms(int64(h.sum.Load() / h.n.Load())),
	}
}

func clamp(v, lo, hi int64) int64 {
	return max(lo, min(v, hi))
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of n values counted by
// bucket: the midpoint of the bucket holding the value of rank ceil(p/100 × n).
func percentile(counts []uint64, n uint64, p float64) int64 {
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(n)))
	rank = max(rank, 1)
	rank = min(rank, n)
	var cum uint64
	for i, c := range counts {
		cum += c
		if cum >= rank {
			lo, hi := bucketRange(i)
			return lo + (hi-lo)/2
		}
	}
	lo, hi := bucketRange(len(counts) - 1)
	return lo + (hi-lo)/2
}
