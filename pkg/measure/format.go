package measure

import (
	"fmt"
	"time"
)

// Millis formats d in milliseconds with two decimals, so that report
// columns line up, sub-millisecond latencies stay visible, and every bench
// prints latencies alike.
func Millis(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// CPUs formats CPUs' worth of time, as Use returns it, with two decimals:
// "-" when unknown (negative).
func CPUs(x float64) string {
	if x < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}
