package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
)

// steadyResult is one steady-rate run.
type steadyResult struct {
	rate, achieved float64
	lat            benchkit.Summary
	n              int
	// growth is the backlog's trend over the window (least squares), in
	// events; flat says it stayed under half a second of intake.
	growth, startBacklog, endBacklog float64
	flat                             bool
	errors                           int64
	// late says a send started more than benchkit.LagWarning after it was
	// due: the load was not the rate it claims.
	late  bool
	drain time.Duration
}

// runSteady loads p at rate for warmup and dur, samples the backlog every
// 250 ms over the window, and waits for the backlog to drain.
func runSteady(ctx context.Context, p *child, rate float64, workers int, warmup, dur time.Duration) (steadyResult, error) {
	res := steadyResult{rate: rate}
	from := time.Now().Add(warmup)
	p.track.measureFrom(from, from.Add(dur))
	errsBefore := p.track.failed.Load()
	var (
		samples []float64
		times   []float64
		stop    = make(chan struct{})
		sampled = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tk.C:
				if now.After(from) && now.Before(from.Add(dur)) {
					times = append(times, now.Sub(from).Seconds())
					samples = append(samples, float64(p.track.backlog()))
				}
			}
		}
	}()
	paced := benchkit.Pace(ctx, rate, workers, warmup, dur, p.send)
	close(stop)
	<-sampled
	res.achieved = float64(paced.Accepted+paced.Errors) / dur.Seconds()
	res.late = paced.MaxLag > benchkit.LagWarning
	res.errors = p.track.failed.Load() - errsBefore
	drainStart := time.Now()
	for p.track.backlog() > 0 && time.Since(drainStart) < 5*time.Minute {
		if err := p.alive(); err != nil {
			return res, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.drain = time.Since(drainStart)
	lat := p.track.takeLatency()
	res.n, res.lat = lat.Count(), lat.Summary()
	if len(samples) > 1 {
		slope := leastSquaresSlope(times, samples)
		res.growth = slope * dur.Seconds()
		res.startBacklog, res.endBacklog = samples[0], samples[len(samples)-1]
	}
	res.flat = res.growth < rate/2 && res.errors == 0 && res.n > 0 && p.track.backlog() == 0
	return res, ctx.Err()
}

func leastSquaresSlope(x, y []float64) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(x))
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// steadyTable is the table of steady runs on w, its header printed.
func steadyTable(w io.Writer) *benchkit.Table {
	t := benchkit.NewTable(w, benchkit.Column{Name: "rate", Width: 9}, benchkit.Column{Name: "achieved", Width: 10},
		benchkit.Column{Name: "events", Width: 8}, benchkit.Column{Name: "p50", Width: 9}, benchkit.Column{Name: "p99", Width: 9},
		benchkit.Column{Name: "max", Width: 9}, benchkit.Column{Name: "backlog trend over the window", Width: 31},
		benchkit.Column{Name: "errors", Width: 7}, benchkit.Column{Name: "drain", Width: 7})
	t.Header()
	return t
}

// row prints r in a steadyTable.
func (r steadyResult) row(t *benchkit.Table) {
	verdict := "flat"
	if !r.flat {
		verdict = "GROWING"
	}
	t.Row(fmt.Sprintf("%.0f/s", r.rate), fmt.Sprintf("%.0f/s", r.achieved), fmt.Sprint(r.n),
		benchkit.Millis(r.lat.P50), benchkit.Millis(r.lat.P99), benchkit.Millis(r.lat.Max),
		fmt.Sprintf("%+.0f (%s)", r.growth, verdict), fmt.Sprint(r.errors), r.drain.Round(10*time.Millisecond).String())
}
