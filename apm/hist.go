package apm

import (
	"math"
	"time"
)

// Latency buckets of the windows a comparison reads: bucket i holds
// durations up to histBase·histFactor^i, from 100 µs to about 12 s at 20 %
// resolution, then one bucket for the rest.
const (
	histBase    = 100 * time.Microsecond
	histFactor  = 1.2
	histBuckets = 65
)

// hist counts durations in the buckets above.
type hist [histBuckets + 1]uint32

// histBucket is the bucket of d.
func histBucket(d time.Duration) int {
	if d <= histBase {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(histBase)) / math.Log(histFactor)))
	return min(i, histBuckets)
}

// histUpper is the upper bound of bucket i (the last one's lower bound).
func histUpper(i int) time.Duration {
	return time.Duration(float64(histBase) * math.Pow(histFactor, float64(min(i, histBuckets-1))))
}

func (h *hist) add(d time.Duration) { h[histBucket(d)]++ }

func (h *hist) merge(o *hist) {
	for i, n := range o {
		h[i] += n
	}
}

func (h *hist) count() uint64 {
	var n uint64
	for _, c := range h {
		n += uint64(c)
	}
	return n
}

// quantile returns the upper bound of the bucket holding quantile q
// (0 < q ≤ 1), 0 for an empty hist.
func (h *hist) quantile(q float64) time.Duration {
	n := h.count()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i, c := range h {
		seen += uint64(c)
		if seen >= rank {
			return histUpper(i)
		}
	}
	return histUpper(histBuckets)
}
