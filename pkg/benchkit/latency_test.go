package benchkit

import (
	"sync"
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

// near says got is want within the histogram's precision.
func near(got, want time.Duration) bool {
	diff := got - want
	return diff.Abs() <= want/1000+time.Microsecond
}

func TestLatency(t *testing.T) {
	tests := []struct {
		name string
		ds   []time.Duration
		want Summary
	}{
		{"empty is zero", nil, Summary{}},
		{"one value is every figure", ms(4), Summary{Mean: 4 * time.Millisecond, P50: 4 * time.Millisecond, P99: 4 * time.Millisecond, P999: 4 * time.Millisecond, Max: 4 * time.Millisecond}},
		{"unsorted", ms(9, 1, 5, 3), Summary{Mean: 4500 * time.Microsecond, P50: 3 * time.Millisecond, P99: 9 * time.Millisecond, P999: 9 * time.Millisecond, Max: 9 * time.Millisecond}},
		// p99.9 of 1000 is the 999th, not a value between it and the max.
		{"1 to 1000", ms(seq(1000)...), Summary{Mean: 500500 * time.Microsecond, P50: 500 * time.Millisecond, P99: 990 * time.Millisecond, P999: 999 * time.Millisecond, Max: 1000 * time.Millisecond}},
		{"p99.9 of 100 is the max", ms(seq(100)...), Summary{Mean: 50500 * time.Microsecond, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, P999: 100 * time.Millisecond, Max: 100 * time.Millisecond}},
		{"negative counts as zero, beyond an hour as an hour", []time.Duration{-time.Second, 2 * time.Hour}, Summary{Mean: 30 * time.Minute, P50: 0, P99: time.Hour, P999: time.Hour, Max: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLatency()
			for _, d := range tt.ds {
				l.Record(d)
			}
			if l.Count() != len(tt.ds) {
				t.Errorf("Count = %d, want %d", l.Count(), len(tt.ds))
			}
			got := l.Summary()
			for _, f := range []struct {
				name      string
				got, want time.Duration
			}{{"mean", got.Mean, tt.want.Mean}, {"p50", got.P50, tt.want.P50}, {"p99", got.P99, tt.want.P99}, {"p99.9", got.P999, tt.want.P999}, {"max", got.Max, tt.want.Max}} {
				if !near(f.got, f.want) {
					t.Errorf("%s = %s, want %s", f.name, f.got, f.want)
				}
			}
		})
	}
}

// TestLatencyConcurrent: workers record into one histogram at once.
func TestLatencyConcurrent(t *testing.T) {
	l := NewLatency()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 100 {
				l.Record(time.Duration(w*100+i+1) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if s := l.Summary(); l.Count() != 400 || !near(s.Max, 400*time.Millisecond) || !near(s.P50, 200*time.Millisecond) {
		t.Fatalf("%d recorded: %+v, want 400 from 1ms to 400ms", l.Count(), s)
	}
}

func TestSummaryString(t *testing.T) {
	s := Summary{P50: 650 * time.Microsecond, P99: 4400 * time.Microsecond, Max: 2 * time.Second}
	if got, want := s.String(), "p50 0.65ms, p99 4.40ms, max 2000.00ms"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
