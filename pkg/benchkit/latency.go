package benchkit

import (
	"fmt"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// latencyRange is the largest latency a Latency tells apart; longer ones
// count as this long. The pipeline's backlogs drain in minutes, not hours.
const latencyRange = time.Hour

// Latency is a histogram of latencies (HDR: three significant digits, from
// a microsecond to an hour), so that a run of millions keeps its
// percentiles in 200 kilobytes. It is safe for concurrent use: a load's
// workers record into one.
type Latency struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewLatency returns an empty Latency.
func NewLatency() *Latency {
	return &Latency{h: hdrhistogram.New(int64(time.Microsecond), int64(latencyRange), 3)}
}

// Record adds d: a negative d as zero, one beyond an hour as an hour.
func (l *Latency) Record(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// In range, RecordValue cannot fail.
	_ = l.h.RecordValue(int64(min(max(d, 0), latencyRange)))
}

// Count is how many latencies were recorded.
func (l *Latency) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int(l.h.TotalCount())
}

// Summary is the figures of the latencies recorded: the zero Summary when
// there are none.
func (l *Latency) Summary() Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.h.TotalCount() == 0 {
		return Summary{}
	}
	at := func(p float64) time.Duration { return time.Duration(l.h.ValueAtPercentile(p)) }
	return Summary{
		Mean: time.Duration(l.h.Mean()),
		P50:  at(50),
		P99:  at(99),
		P999: at(99.9),
		Max:  time.Duration(l.h.Max()),
	}
}

// Summary is the figures the reports print for a set of latencies, each
// within 0.1% of the latency it stands for (the histogram's precision).
type Summary struct {
	// Mean is the arithmetic mean.
	Mean time.Duration
	// P50, P99 and P999 are percentiles: the smallest latency that at
	// least that share of all do not exceed, so that p99.9 of a hundred
	// latencies is their maximum rather than one that was never seen.
	P50, P99, P999 time.Duration
	// Max is the largest.
	Max time.Duration
}

// String is the reports' line format for latencies: "p50 1.20ms, p99
// 4.40ms, max 9.00ms".
func (s Summary) String() string {
	return fmt.Sprintf("p50 %s, p99 %s, max %s", Millis(s.P50), Millis(s.P99), Millis(s.Max))
}
