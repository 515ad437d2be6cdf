package backoff_test

import (
	"math"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/backoff"
)

func TestExponential(t *testing.T) {
	for _, c := range []struct {
		name             string
		initial, ceiling time.Duration
		attempts         []int
		want             []time.Duration
	}{
		{"doubles to the ceiling", time.Second, time.Minute, []int{1, 2, 3, 6, 7, 8, 1000},
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 32 * time.Second, time.Minute, time.Minute, time.Minute}},
		{"ceiling a power of two", time.Millisecond, 128 * time.Millisecond, []int{7, 8, 9},
			[]time.Duration{64 * time.Millisecond, 128 * time.Millisecond, 128 * time.Millisecond}},
		{"attempt 0 or less is the first", time.Second, time.Minute, []int{0, -5}, []time.Duration{time.Second, time.Second}},
		{"initial above the ceiling", time.Hour, time.Minute, []int{1, 2}, []time.Duration{time.Minute, time.Minute}},
		{"no initial", 0, 5 * time.Minute, []int{1, 3}, []time.Duration{5 * time.Minute, 5 * time.Minute}},
		// A shift by attempt would have wrapped around long before.
		{"no overflow near the largest duration", time.Hour, math.MaxInt64, []int{22, 23, math.MaxInt32},
			[]time.Duration{time.Hour << 21, math.MaxInt64, math.MaxInt64}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i, a := range c.attempts {
				if got := backoff.Exponential(c.initial, c.ceiling, a); got != c.want[i] {
					t.Errorf("Exponential(%s, %s, %d) = %s, want %s", c.initial, c.ceiling, a, got, c.want[i])
				}
			}
		})
	}
}

func TestJitter(t *testing.T) {
	const d = 10 * time.Second
	lo, hi := d, d
	for range 2000 {
		got := backoff.Jitter(d, 0.2)
		if got < 8*time.Second || got > 12*time.Second {
			t.Fatalf("Jitter(%s, 0.2) = %s, outside 8s..12s", d, got)
		}
		lo, hi = min(lo, got), max(hi, got)
	}
	// Spread, not constant: 2000 draws cover most of the range.
	if lo > 9*time.Second || hi < 11*time.Second {
		t.Errorf("2000 draws of Jitter(%s, 0.2) lie within %s..%s, want them spread over 8s..12s", d, lo, hi)
	}
	if got := backoff.Jitter(d, 0); got != d {
		t.Errorf("Jitter(%s, 0) = %s, want %s", d, got, d)
	}
}
