package bench

import (
	"context"
	"sync"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
)

// shot is one timed operation: a request to the edge or a publish.
type shot struct {
	start   time.Time
	latency time.Duration
	// status is the HTTP status; a publish has none and leaves it 0.
	status int
	// dup is set when the answer said the message was a duplicate.
	dup bool
	// err is a transport or publish error: no answer at all.
	err error
}

// tally is what one worker saw.
type tally struct {
	statuses map[int]int // unexpected statuses in the window
	errors   int         // failed shots in the window
	firstErr error
	lastEnd  time.Time
	// Whole phase, warmup included: what the stream must hold afterwards.
	fresh, dups int
}

// drive runs op on concurrency workers: warmup unmeasured, then measured
// for dur. A shot counts in the window when it started in it; the window
// closes when the last of those is answered. Only good shots count towards
// rate and latency: a fast refusal is not throughput. Every worker makes at
// least one measured shot, so that a starved machine still gives figures
// rather than zeros. atMeasure runs as the window opens, before any shot a
// worker starts after seeing it open, so that profiles and metric snapshots
// cover the window. okStatus is the status of a good answer, 0 for
// publishes.
func drive(ctx context.Context, concurrency int, warmup, dur time.Duration, okStatus int, atMeasure func(), op func() shot) Result {
	from := time.Now().Add(warmup)
	until := from.Add(dur)
	var opened sync.Once
	open := func() {
		if atMeasure != nil {
			opened.Do(atMeasure)
		}
	}

	// The good shots' latencies in the window, from every worker.
	lat := benchkit.NewLatency()
	tallies := make([]tally, concurrency)
	var wg sync.WaitGroup
	for i := range tallies {
		tl := &tallies[i]
		tl.statuses = map[int]int{}
		wg.Go(func() {
			measured := false
			for ctx.Err() == nil {
				now := time.Now()
				if measured && !now.Before(until) {
					return
				}
				if !now.Before(from) {
					open()
				}
				s := op()
				good := s.err == nil && s.status == okStatus
				if good && s.dup {
					tl.dups++
				} else if good {
					tl.fresh++
				}
				if s.start.Before(from) {
					continue
				}
				measured = true
				if end := s.start.Add(s.latency); end.After(tl.lastEnd) {
					tl.lastEnd = end
				}
				switch {
				case good:
					lat.Record(s.latency)
				case s.err != nil:
					tl.errors++
					if tl.firstErr == nil {
						tl.firstErr = s.err
					}
				default:
					tl.errors++
					tl.statuses[s.status]++
				}
			}
		})
	}
	wg.Wait()

	r := Result{Statuses: map[int]int{}}
	last := from
	for i := range tallies {
		tl := &tallies[i]
		r.Errors += tl.errors
		r.Fresh += tl.fresh
		r.Duplicates += tl.dups
		for st, n := range tl.statuses {
			r.Statuses[st] += n
		}
		if r.FirstError == "" && tl.firstErr != nil {
			r.FirstError = tl.firstErr.Error()
		}
		if tl.lastEnd.After(last) {
			last = tl.lastEnd
		}
	}
	r.Requests = lat.Count()
	r.Elapsed = last.Sub(from)
	r.Summary = lat.Summary()
	return r
}
