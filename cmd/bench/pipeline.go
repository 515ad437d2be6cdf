package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/leadstream/leadstream/services/edge/simulate"
)

// The pipeline measurements load `leadstream run` as a user runs it: a
// child process of the binary -leadstream names, on its embedded JetStream
// (fsync before every ack), with the shipped sample config except that its
// webhook adapter posts to a fake LMS in this process and its nats adapter
// is left out. The load goes over HTTP from this process, signed as the
// providers sign, each round over the samples with aggregates of its own
// (spreadAggregates).

// pipeOptions are the pipeline measurements' settings.
type pipeOptions struct {
	// bin is the leadstream binary to run.
	bin string
	// out gets the report; default stdout.
	out        io.Writer
	configPath string
	// adjust, when set, changes the child's config (tests shorten timers).
	adjust   func(map[string]any)
	storeDir string
	workers  int

	steadyRate     float64
	steadyDuration time.Duration
	findMax        bool
	stepDuration   time.Duration

	catchupRate float64
	catchupDown time.Duration

	memoryWebhooks int
	memoryRate     float64
}

// any says some pipeline measurement is asked for.
func (o *pipeOptions) any() bool {
	return o.steadyRate > 0 || o.catchupRate > 0 || o.memoryWebhooks > 0
}

// pipeRun is one run of the pipeline measurements: each starts a fresh
// `leadstream run` in a directory of its own under dir and prints to o.out.
type pipeRun struct {
	ctx    context.Context
	o      *pipeOptions
	dir    string
	load   []sample
	signer *simulate.Signer
}

// runPipeline runs the pipeline measurements o asks for and prints them.
func runPipeline(ctx context.Context, o *pipeOptions, signer *simulate.Signer, samples []sample) error {
	load, _ := dispatchSamples(samples)
	// Like every bench's store: fresh, and removed afterwards.
	dir, err := os.MkdirTemp(o.storeDir, "leadstream-bench-pipeline-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if o.out == nil {
		o.out = os.Stdout
	}
	r := &pipeRun{ctx: ctx, o: o, dir: dir, load: load, signer: signer}
	r.printf("")
	r.printf("pipeline: `leadstream run` as a child process (edge, normalizers, dispatcher, projection, embedded JetStream with fsync")
	r.printf("  before every ack), the shipped config with its webhook adapter posting to a fake LMS in the bench process (204 at")
	r.printf("  once) and no nats adapter; the load signed as the providers sign, over HTTP from the bench process, %d workers,", o.workers)
	r.printf("  each round over %d samples with aggregates of its own; latency from the request to the LMS's 2xx", len(load))

	if o.steadyRate > 0 {
		if err := r.steady(); err != nil {
			return err
		}
	}
	if o.catchupRate > 0 && ctx.Err() == nil {
		if err := r.catchup(); err != nil {
			return err
		}
	}
	if o.memoryWebhooks > 0 && ctx.Err() == nil {
		if err := r.memory(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// fresh starts a `leadstream run` named name on a store of its own.
func (r *pipeRun) fresh(name string) (*child, error) {
	d := filepath.Join(r.dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "bench: pipeline: %s: starting leadstream run (store %s)\n", name, d)
	return startPipeline(r.ctx, r.o, d, r.load, r.signer)
}

// printf prints a line of the report.
func (r *pipeRun) printf(format string, a ...any) { fmt.Fprintf(r.o.out, format+"\n", a...) }

// steady loads a fresh `leadstream run` at o.steadyRate, and then, when
// o.findMax asks, finds the highest rate whose backlog stays flat.
func (r *pipeRun) steady() error {
	ctx, o, p := r.ctx, r.o, r.printf
	pl, err := r.fresh("steady")
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: pipeline: %.0f/s for %s\n", o.steadyRate, o.steadyDuration)
	res, err := runSteady(ctx, pl, o.steadyRate, o.workers, 5*time.Second, o.steadyDuration)
	if err != nil {
		pl.stop()
		return err
	}
	p("")
	p("steady load, %s after 5s warmup (backlog: accepted by the edge, not yet at the LMS, sampled every 250ms):", o.steadyDuration)
	res.row(steadyTable(o.out))
	dups := pl.track.dups.Load()
	pl.stop()
	if o.findMax {
		p("")
		// Up 25% a step from a flat steady rate until the backlog grows;
		// down 20% a step from a growing one until it stays flat. Each
		// step starts a fresh leadstream run: one that fell behind would
		// still be digesting its backlog in the next step.
		up := res.flat && !res.late
		dir, factor := "up", 1.25
		if !up {
			dir, factor = "down", 0.8
		}
		p("highest steady rate: %s steps of %s after 3s warmup, each on a fresh leadstream run, %s %.0f%% each, until the backlog %s:",
			o.stepDuration, o.stepDuration, dir, math.Abs(factor-1)*100, map[bool]string{true: "grows", false: "stays flat"}[up])
		t := steadyTable(o.out)
		best, worst := 0.0, o.steadyRate // the highest flat, the lowest growing
		if up {
			best, worst = o.steadyRate, math.Inf(1)
		}
		for rate := o.steadyRate * factor; ctx.Err() == nil && rate >= 10; rate *= factor {
			spl, err := r.fresh(fmt.Sprintf("step-%.0f", rate))
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "bench: pipeline: step %.0f/s\n", rate)
			res, err := runSteady(ctx, spl, rate, o.workers, 3*time.Second, o.stepDuration)
			dups += spl.track.dups.Load()
			spl.stop()
			if err != nil {
				return err
			}
			res.row(t)
			flat := res.flat && !res.late
			if flat {
				best = max(best, rate)
			} else {
				worst = min(worst, rate)
			}
			if flat != up {
				break
			}
		}
		switch {
		case best > 0 && !math.IsInf(worst, 1):
			p("highest rate with a flat backlog: %.0f/s (it grows at %.0f/s)", best, worst)
		case best > 0:
			p("highest rate with a flat backlog: %.0f/s", best)
		default:
			p("highest rate with a flat backlog: below %.0f/s", worst)
		}
	}
	if dups > 0 {
		p("WARNING: the LMS received %d events twice", dups)
	}
	return nil
}
