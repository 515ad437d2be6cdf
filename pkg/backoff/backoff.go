// Package backoff spaces the attempts of a retry: exponential growth up to
// a ceiling, and jitter, so that many retries that failed together do not
// all come back together.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Exponential is the pause before attempt (1 for the first retry): initial,
// doubled for every attempt after the first, at most ceiling. An initial of
// zero or less gives ceiling. It never overflows, however high attempt.
func Exponential(initial, ceiling time.Duration, attempt int) time.Duration {
	if initial <= 0 {
		return ceiling
	}
	d := initial
	for i := 1; i < attempt && d < ceiling; i++ {
		if d > ceiling/2 {
			return ceiling
		}
		d *= 2
	}
	return min(d, ceiling)
}

// Jitter is d spread at random by up to frac of it either way: between
// d·(1-frac) and d·(1+frac).
func Jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 - frac + 2*frac*rand.Float64()))
}
