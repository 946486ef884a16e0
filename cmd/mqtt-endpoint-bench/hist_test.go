package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prevHi := int64(-1)
	for i := range histBuckets {
		lo, hi := bucketRange(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d = [%d, %d] after %d: buckets must tile the range", i, lo, hi, prevHi)
		}
		for _, v := range []int64{lo, hi, lo + (hi-lo)/2} {
			if b := bucketOf(v); b != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, b, i)
			}
		}
		if lo >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/histSub+1e-9 {
			t.Fatalf("bucket %d = [%d, %d] wider than 1/%d of its value", i, lo, hi, histSub)
		}
		prevHi = hi
	}
	if b := bucketOf(math.MaxInt64); b != histBuckets-1 {
		t.Errorf("bucketOf(max) = %d, want the last bucket", b)
	}
	if b := bucketOf(-5); b != 0 {
		t.Errorf("bucketOf(-5) = %d, want 0", b)
	}
}

// exact is the nearest-rank percentile of sorted values.
func exact(sorted []int64, p float64) int64 {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() int64
		n    int
	}{
		{"constant", func() int64 { return 1234567 }, 100},
		{"small exact values", func() int64 { return r.Int64N(100) }, 1000},
		{"uniform µs to ms", func() int64 { return 1000 + r.Int64N(10_000_000) }, 10000},
		{"exponential", func() int64 { return int64(r.ExpFloat64() * 2e6) }, 50000},
		{"bimodal with outliers", func() int64 {
			if r.IntN(100) == 0 {
				return 5e8 + r.Int64N(1e8)
			}
			return 2e5 + r.Int64N(1e5)
		}, 20000},
		{"one value", func() int64 { return 42_000 }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHist()
			vals := make([]int64, tc.n)
			for i := range vals {
				vals[i] = tc.gen()
				h.Record(time.Duration(vals[i]))
			}
			slices.Sort(vals)
			s := h.Summary()
			if s.N != uint64(tc.n) {
				t.Errorf("N = %d, want %d", s.N, tc.n)
			}
			for _, c := range []struct {
				p   float64
				got float64
			}{{50, s.P50}, {90, s.P90}, {99, s.P99}, {99.9, s.P999}} {
				want := float64(exact(vals, c.p)) / 1e6
				if math.Abs(c.got-want) > want/histSub+1e-6 {
					t.Errorf("p%g = %v ms, want %v ms (±%.2f%%)", c.p, c.got, want, 100.0/histSub)
				}
			}
			if s.Min != float64(vals[0])/1e6 || s.Max != float64(vals[len(vals)-1])/1e6 {
				t.Errorf("min/max = %v/%v, want %v/%v", s.Min, s.Max, float64(vals[0])/1e6, float64(vals[len(vals)-1])/1e6)
			}
		})
	}
}

func TestPercentileRanks(t *testing.T) {
	// Values 1..10 ns are exact buckets: nearest rank gives ceil(p/100 × 10).
	var counts [histBuckets]uint64
	for v := 1; v <= 10; v++ {
		counts[v] = 1
	}
	for _, tc := range []struct {
		p    float64
		want int64
	}{{1, 1}, {10, 1}, {11, 2}, {50, 5}, {90, 9}, {99, 10}, {100, 10}} {
		if got := percentile(counts[:], 10, tc.p); got != tc.want {
			t.Errorf("p%g = %d, want %d", tc.p, got, tc.want)
		}
	}
	if got := percentile(counts[:], 0, 50); got != 0 {
		t.Errorf("empty: %d", got)
	}
	if s := newHist().Summary(); s.N != 0 || s.P99 != 0 {
		t.Errorf("empty summary: %+v", s)
	}
}
