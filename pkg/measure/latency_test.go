package measure

import (
	"slices"
	"testing"
	"time"
)

// ms makes durations of whole milliseconds.
func ms(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

// seq is 1 to n.
func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"empty is zero", nil, 0.5, 0},
		{"one value", ms(7), 0.99, 7 * time.Millisecond},
		{"one value at q=1", ms(7), 1, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 100 is the 99th", ms(seq(100)...), 0.99, 99 * time.Millisecond},
		{"p99.9 of 100 is the max", ms(seq(100)...), 0.999, 100 * time.Millisecond},
		{"q=1 is the max", ms(seq(100)...), 1, 100 * time.Millisecond},
		{"p0 is the min", ms(3, 5), 0, 3 * time.Millisecond},
		{"q above 1 is the max", ms(3, 5), 1.5, 5 * time.Millisecond},
		{"q below 0 is the min", ms(3, 5), -1, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.q); got != tt.want {
				t.Errorf("Percentile(%v) = %s, want %s", tt.q, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		ds   []time.Duration
		want Summary
	}{
		{"empty is zero", nil, Summary{}},
		{"one value is every figure", ms(4), Summary{Mean: 4 * time.Millisecond, P50: 4 * time.Millisecond, P99: 4 * time.Millisecond, P999: 4 * time.Millisecond, Max: 4 * time.Millisecond}},
		{"unsorted", ms(9, 1, 5, 3), Summary{Mean: 4500 * time.Microsecond, P50: 3 * time.Millisecond, P99: 9 * time.Millisecond, P999: 9 * time.Millisecond, Max: 9 * time.Millisecond}},
		{"1 to 1000", ms(seq(1000)...), Summary{Mean: 500500 * time.Microsecond, P50: 500 * time.Millisecond, P99: 990 * time.Millisecond, P999: 999 * time.Millisecond, Max: 1000 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.ds); got != tt.want {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
			if !slices.IsSorted(tt.ds) {
				t.Errorf("Summarize left its argument unsorted: %v", tt.ds)
			}
		})
	}
}
