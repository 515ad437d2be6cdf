package measure

import (
	"context"
	"sync"
	"time"
)

// LagWarning is how far behind its schedule a paced send may start before
// a report should say that the load was not the steady rate it claims.
const LagWarning = 100 * time.Millisecond

// Sent is one call of a paced load.
type Sent[T any] struct {
	// Result and Err are what the call returned.
	Result T
	Err    error
	// Begin and End are when the call was made and when it returned.
	Begin, End time.Time
	// Lag is how late the call began after its place in the schedule.
	Lag time.Duration
	// Measured says the call was scheduled in the measurement window, not
	// the warmup.
	Measured bool
}

// Pace calls send at rate a second from workers goroutines for warmup and
// then dur, on a fixed schedule: the n-th call is due n/rate after the
// start, whatever the calls before it took. When every worker is busy, the
// due calls wait, and their Lag shows it, rather than the load slowing down
// with what it loads and hiding its latency. Pace returns every call, the
// warmup's included, and CPU snapshots from the window's opening and
// closing. It stops scheduling when ctx ends. rate and workers must be
// positive.
func Pace[T any](ctx context.Context, rate float64, workers int, warmup, dur time.Duration, send func(context.Context) (T, error)) ([]Sent[T], [2]CPU) {
	var cpu [2]CPU
	start := time.Now()
	from := start.Add(warmup)
	until := from.Add(dur)
	due := make(chan time.Time, workers)
	paced := make(chan struct{})
	go func() {
		defer close(paced)
		defer close(due)
		opened := false
		timer := time.NewTimer(0)
		defer timer.Stop()
		<-timer.C
		for n := 0; ; n++ {
			at := start.Add(time.Duration(float64(n) * float64(time.Second) / rate))
			if !at.Before(until) {
				return
			}
			if d := time.Until(at); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return
				}
			}
			if !opened && !at.Before(from) {
				cpu[0], opened = ReadCPU(), true
			}
			select {
			case due <- at:
			case <-ctx.Done():
				return
			}
		}
	}()

	tallies := make([][]Sent[T], workers)
	var wg sync.WaitGroup
	for w := range tallies {
		wg.Go(func() {
			for at := range due {
				begin := time.Now()
				r, err := send(ctx)
				end := time.Now()
				tallies[w] = append(tallies[w], Sent[T]{
					Result: r, Err: err, Begin: begin, End: end, Lag: begin.Sub(at),
					Measured: !at.Before(from),
				})
			}
		})
	}
	wg.Wait()
	<-paced
	cpu[1] = ReadCPU()
	var all []Sent[T]
	for _, t := range tallies {
		all = append(all, t...)
	}
	return all, cpu
}
