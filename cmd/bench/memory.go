package main

import (
	"fmt"
	"os"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
)

// memory sends o.memoryWebhooks at o.memoryRate and prints the child's
// RSS as they go.
func (r *pipeRun) memory() error {
	ctx, o, p := r.ctx, r.o, r.printf
	pl, err := r.fresh("memory")
	if err != nil {
		return err
	}
	defer pl.stop()
	dur := time.Duration(float64(o.memoryWebhooks) / o.memoryRate * float64(time.Second))
	fmt.Fprintf(os.Stderr, "bench: pipeline: memory: %d webhooks at %.0f/s (%s)\n", o.memoryWebhooks, o.memoryRate, dur.Round(time.Second))
	type point struct {
		accepted, delivered int64
		rss                 int64
	}
	var points []point
	step := int64(o.memoryWebhooks / 10)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		benchkit.Pace(ctx, o.memoryRate, o.workers, 0, dur, pl.send)
	}()
	next := step
	for {
		done := false
		select {
		case <-loadDone:
			done = true
		case <-time.After(200 * time.Millisecond):
		}
		if err := pl.alive(); err != nil {
			return err
		}
		if a := pl.track.nAccepted.Load(); a >= next || done {
			rss, err := pl.rss()
			if err != nil {
				return err
			}
			points = append(points, point{a, pl.track.nDelivered.Load(), rss})
			fmt.Fprintf(os.Stderr, "bench: pipeline: memory: %d accepted, %d delivered, RSS %d MiB\n", a, pl.track.nDelivered.Load(), rss>>20)
			next += step
		}
		if done {
			break
		}
	}
	drainStart := time.Now()
	for pl.track.backlog() > 0 && time.Since(drainStart) < 30*time.Minute && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	rss, err := pl.rss()
	if err != nil {
		return err
	}
	points = append(points, point{pl.track.nAccepted.Load(), pl.track.nDelivered.Load(), rss})
	p("")
	p("memory: RSS of `leadstream run` (its embedded nats-server included) while %d webhooks go through at %.0f/s:", o.memoryWebhooks, o.memoryRate)
	for i, pt := range points {
		label := ""
		if i == len(points)-1 {
			label = " (all delivered)"
		}
		p("  %9d accepted %9d delivered   RSS %5d MiB%s", pt.accepted, pt.delivered, pt.rss>>20, label)
	}
	if len(points) > 2 {
		first, last := points[1], points[len(points)-1]
		per := float64(last.rss-first.rss) / float64(max(last.accepted-first.accepted, 1))
		p("  from %d to %d webhooks RSS changed by %+d MiB (%+.0f bytes a webhook)", first.accepted, last.accepted, (last.rss-first.rss)>>20, per)
	}
	if f := pl.track.failed.Load(); f > 0 {
		p("  %d requests failed", f)
	}
	return nil
}
