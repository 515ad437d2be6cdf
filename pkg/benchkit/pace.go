package benchkit

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
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

// Load is a paced load as the reports describe it: its schedule, and what
// became of the sends of its window.
type Load struct {
	// Rate is the schedule in sends a second, from Workers goroutines;
	// Warmup and Duration its unmeasured and measured parts.
	Rate             float64
	Workers          int
	Warmup, Duration time.Duration
	// GOMAXPROCS is the cores the load shared with what it loaded.
	GOMAXPROCS int
	// Accepted counts the window's sends that returned no error; Errors
	// those that did, with the first error's text in FirstError.
	Accepted, Errors int
	FirstError       string
	// MaxLag is the longest a send of the window began after it was due:
	// above LagWarning, the load was not the steady rate it claims.
	MaxLag time.Duration
	// CPU is this process's and other processes' use during the window.
	CPU Use
}

// Achieved is accepted sends per second of the window.
func (l Load) Achieved() float64 { return PerSecond(l.Accepted, l.Duration) }

// String is the reports' line for the schedule: "500/s scheduled for 10s
// after 2s warmup, 8 workers, GOMAXPROCS 2".
func (l Load) String() string {
	return fmt.Sprintf("%.0f/s scheduled for %s after %s warmup, %d workers, GOMAXPROCS %d", l.Rate, l.Duration, l.Warmup, l.Workers, l.GOMAXPROCS)
}

// PrintNotes writes what a report says about the load besides its figures:
// the window's CPU use, sends that were not accepted, and a schedule the
// load fell behind.
func (l Load) PrintNotes(w io.Writer) {
	if u := l.CPU.String(); u != "" {
		fmt.Fprintf(w, "  %s\n", u)
	}
	if l.Errors > 0 {
		fmt.Fprintf(w, "WARNING: %d sends were not accepted; first error: %s\n", l.Errors, l.FirstError)
	}
	if l.MaxLag > LagWarning {
		fmt.Fprintf(w, "note: a send started up to %s after it was due: the load fell behind its schedule, its %d workers\n", l.MaxLag.Round(time.Millisecond), l.Workers)
		fmt.Fprintf(w, "  all waiting for answers\n")
	}
}

// Paced is what Pace did: the Load, and its sends.
type Paced[T any] struct {
	Load
	// Sends is every call, the warmup's included.
	Sends []Sent[T]
	// OK are the calls of the window that returned no error.
	OK []Sent[T]
}

// Edge is the front of the pipeline a steady load goes to: Send sends one
// new provider event and returns what the edge's 2xx said, Close stops the
// edge once the last Send returned.
type Edge[T any] interface {
	Send(ctx context.Context) (T, error)
	Close() error
}

// PaceEdge starts an edge against the JetStream at url, sends to it at
// o.Rate from o.Concurrency workers for o.Warmup and then o.Duration (see
// Pace), and closes it. name says whose load it is in the progress line.
func PaceEdge[T any, E Edge[T]](ctx context.Context, o *Options, name string, start func(ctx context.Context, url string) (E, error), url string) (*Paced[T], error) {
	edge, err := start(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("bench: starting the edge: %w", err)
	}
	o.Step("%s: end to end: %g events/s from %d workers, %s warmup, then %s measured", name, o.Rate, o.Concurrency, o.Warmup, o.Duration)
	p := Pace(ctx, o.Rate, o.Concurrency, o.Warmup, o.Duration, edge.Send)
	if err := edge.Close(); err != nil {
		return nil, fmt.Errorf("bench: stopping the edge: %w", err)
	}
	return p, ctx.Err()
}

// Drained polls every 10ms until arrived says yes for every id, or drain
// has passed: after a steady load, the last accepted sends are still on
// their way through the pipeline. Those that never arrive are the
// caller's to count. It returns early only when ctx ends.
func Drained(ctx context.Context, ids []string, drain time.Duration, arrived func(id string) bool) error {
	missing := slices.Clone(ids)
	deadline := time.Now().Add(drain)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		missing = slices.DeleteFunc(missing, arrived)
		if len(missing) == 0 || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Pace calls send at rate a second from workers goroutines for warmup and
// then dur, on a fixed schedule: the n-th call is due n/rate after the
// start, whatever the calls before it took. When every worker is busy, the
// due calls wait, and their Lag shows it, rather than the load slowing down
// with what it loads and hiding its latency. It stops scheduling when ctx
// ends. rate and workers must be positive.
func Pace[T any](ctx context.Context, rate float64, workers int, warmup, dur time.Duration, send func(context.Context) (T, error)) *Paced[T] {
	var cpu0 CPU
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
				cpu0, opened = ReadCPU(), true
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
	p := &Paced[T]{Load: Load{
		Rate: rate, Workers: workers, Warmup: warmup, Duration: dur, GOMAXPROCS: runtime.GOMAXPROCS(0),
		CPU: cpu0.Until(ReadCPU()),
	}}
	for _, t := range tallies {
		p.Sends = append(p.Sends, t...)
	}
	for _, s := range p.Sends {
		if !s.Measured {
			continue
		}
		p.MaxLag = max(p.MaxLag, s.Lag)
		if s.Err != nil {
			p.Errors++
			if p.FirstError == "" {
				p.FirstError = s.Err.Error()
			}
			continue
		}
		p.OK = append(p.OK, s)
	}
	p.Accepted = len(p.OK)
	return p
}
