package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
)

// catchup takes the LMS down for o.catchupDown under o.catchupRate
// intake, brings it back with the intake going on, and times the drain.
func (r *pipeRun) catchup() error {
	ctx, o, p := r.ctx, r.o, r.printf
	pl, err := r.fresh("catchup")
	if err != nil {
		return err
	}
	defer pl.stop()
	pl.lms.down.Store(true)
	fmt.Fprintf(os.Stderr, "bench: pipeline: catch-up: LMS down, %.0f/s for %s\n", o.catchupRate, o.catchupDown)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		// Until stopped: the intake goes on while the backlog drains.
		benchkit.Pace(loadCtx, o.catchupRate, o.workers, 0, 24*time.Hour, pl.send)
	}()
	downUntil := time.Now().Add(o.catchupDown)
	for time.Now().Before(downUntil) {
		if err := pl.alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(30*time.Second, time.Until(downUntil))):
		}
		fmt.Fprintf(os.Stderr, "bench: pipeline: catch-up: %d accepted, backlog %d, %d deliveries refused\n", pl.track.nAccepted.Load(), pl.track.backlog(), pl.lms.refused.Load())
	}
	backlogAtUp := pl.track.backlog()
	pl.lms.down.Store(false)
	up := time.Now()
	fmt.Fprintf(os.Stderr, "bench: pipeline: catch-up: LMS up with a backlog of %d\n", backlogAtUp)
	caughtUp := time.Duration(-1)
	threshold := int64(math.Ceil(o.catchupRate)) // one second of intake
	for time.Since(up) < time.Hour {
		if err := pl.alive(); err != nil {
			return err
		}
		if pl.track.backlog() <= threshold {
			caughtUp = time.Since(up)
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if s := time.Since(up); s%(30*time.Second) < 100*time.Millisecond {
			fmt.Fprintf(os.Stderr, "bench: pipeline: catch-up: %s after the LMS came back, backlog %d\n", s.Round(time.Second), pl.track.backlog())
		}
	}
	stopLoad()
	<-loaded
	p("")
	p("catch-up: the LMS answered 503 for %s of %.0f/s intake, then 204 again, the intake going on:", o.catchupDown, o.catchupRate)
	p("  backlog when the LMS came back: %d events (%d deliveries refused while it was down)", backlogAtUp, pl.lms.refused.Load())
	if caughtUp < 0 {
		p("  NOT caught up within an hour: backlog %d", pl.track.backlog())
	} else {
		p("  caught up (backlog within one second of intake) %s after the LMS came back: %.0f events/s drained above the intake",
			caughtUp.Round(100*time.Millisecond), float64(backlogAtUp)/caughtUp.Seconds())
	}
	if d := pl.track.dups.Load(); d > 0 {
		p("  the LMS received %d events twice (deliveries it answered 2xx for)", d)
	}
	return nil
}
