package measure

import (
	"math"
	"slices"
	"time"
)

// Percentile is the nearest-rank q-quantile of sorted: the smallest value
// that at least q of all values do not exceed, as HDR histograms report it,
// so that p99.9 of a hundred values is their maximum rather than a value
// that was never seen. q below 0 gives the minimum, above 1 the maximum;
// an empty sorted gives 0.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// Summary is the figures the bench reports print for a set of latencies.
type Summary struct {
	// Mean is the arithmetic mean.
	Mean time.Duration
	// P50, P99 and P999 are nearest-rank percentiles (see Percentile).
	P50, P99, P999 time.Duration
	// Max is the largest.
	Max time.Duration
}

// Summarize sorts ds in place, which saves copying the millions of
// latencies a run can collect, and returns their Summary: the zero Summary
// when ds is empty.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Summary{
		Mean: sum / time.Duration(len(ds)),
		P50:  Percentile(ds, 0.50),
		P99:  Percentile(ds, 0.99),
		P999: Percentile(ds, 0.999),
		Max:  ds[len(ds)-1],
	}
}
