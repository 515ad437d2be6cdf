package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/normalizer"
)

// pollEvery is how often a kind's progress is read. The figures do not
// depend on it (the end is the time EVENTS stored its last event); it only
// has to cost the one core little.
const pollEvery = 25 * time.Millisecond

// runKind fills RAW with o.KindEvents envelopes of kind, then runs a
// normalizer for that kind alone with GOMAXPROCS 1 until its consumer has
// acked every one, timed from the normalizer's start to the last event
// EVENTS stored. profile, when set, receives a CPU profile of that run.
func runKind(ctx context.Context, o *Options, cfg *config.Config, j *benchkit.JetStream, kind string, samples []Sample, profile io.Writer) (KindResult, error) {
	res := KindResult{Kind: kind, Samples: len(samples), Stored: o.KindEvents}
	js := j.JS
	o.Step("normalizer: %s: storing %d RAW envelopes, round robin over %d sample payload(s), before the clock starts", kind, o.KindEvents, len(samples))
	err := benchkit.Fill(ctx, js, o.KindEvents, func(i int) (*nats.Msg, error) {
		s := samples[i%len(samples)]
		raw := s.Raw(fmt.Sprintf("nbench-%s-%d", kind, i))
		if raw.Kind != kind {
			return nil, fmt.Errorf("bench: sample %s makes an envelope of kind %q, not %s", s.Name, raw.Kind, kind)
		}
		return raw.Msg(), nil
	})
	if err != nil {
		return res, err
	}
	reg := prometheus.NewRegistry()
	if err := normalizer.Provision(ctx, js, cfg, []string{kind}); err != nil {
		return res, err
	}
	svc, err := normalizer.New(ctx, normalizer.Options{Config: cfg, URL: j.URL, JetStream: js, Logger: o.Logger, Registry: reg, Kinds: []string{kind}})
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	// Closed after Run has returned: the deferred calls run last first.
	defer svc.Close()
	cons, err := js.PushConsumer(ctx, streams.RAW, normalizer.Durable(kind))
	if err != nil {
		return res, fmt.Errorf("bench: consumer %s: %w", normalizer.Durable(kind), err)
	}
	base, err := benchkit.StreamState(ctx, js, streams.EVENTS)
	if err != nil {
		return res, err
	}

	o.Step("normalizer: %s: normalizing them on one core (GOMAXPROCS 1)", kind)
	// The fill's garbage is collected now rather than on the clock.
	runtime.GC()
	prev := runtime.GOMAXPROCS(1)
	restored := false
	restore := func() {
		if !restored {
			runtime.GOMAXPROCS(prev)
			restored = true
		}
	}
	defer restore()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return res, fmt.Errorf("bench: CPU profile: %w", err)
		}
	}
	cpu0 := benchkit.ReadCPU()
	start := time.Now()
	go func() { ran <- svc.Run(runCtx) }()
	events, last, err := awaitKind(ctx, o.Stall, js, cons, base.Msgs, ran)
	seen := time.Now()
	res.CPU = cpu0.Until(benchkit.ReadCPU())
	if profile != nil {
		pprof.StopCPUProfile()
	}
	stop()
	if !errors.Is(err, errRunEnded) {
		if runErr := <-ran; runErr != nil && err == nil {
			err = runErr
		}
	}
	restore()
	if res.Complete, err = benchkit.Completed(err); err != nil {
		return res, err
	}

	res.Events = int(events)
	res.Elapsed = seen.Sub(start)
	if events > 0 && last.After(start) {
		res.Elapsed = last.Sub(start)
	}
	out, err := outcomes(reg, kind)
	if err != nil {
		return res, err
	}
	res.Normalized, res.Deduplicated = out["normalized"], out["deduplicated"]
	res.DeadLettered, res.Failed = out["dead_lettered"], out["failed"]
	if res.Commits, err = commits(reg); err != nil {
		return res, err
	}
	return res, nil
}

// commits reads the normalizer's group commits: how many per stream, and
// how many writes they held.
func commits(reg *prometheus.Registry) (map[string]Commits, error) {
	series, err := benchkit.Gather(reg, "leadstream_normalizer_commit_batch_size")
	if err != nil {
		return nil, err
	}
	out := map[string]Commits{}
	for _, s := range series {
		c := out[s.Labels["stream"]]
		h := s.GetHistogram()
		c.Commits += int(h.GetSampleCount())
		c.Writes += int(h.GetSampleSum())
		if s.Labels["mode"] == "atomic" {
			c.Atomic += int(h.GetSampleCount())
		}
		out[s.Labels["stream"]] = c
	}
	return out, nil
}

// errRunEnded reports a normalizer that stopped before its work was done.
var errRunEnded = errors.New("bench: normalizer stopped")

// awaitKind polls until cons has no message left to deliver or to ack, and
// returns how many events EVENTS gained over base and when it stored the
// last one. It gives up with benchkit.ErrStalled when nothing moved for
// stall.
func awaitKind(ctx context.Context, stall time.Duration, js jetstream.JetStream, cons jetstream.PushConsumer, base uint64, ran <-chan error) (uint64, time.Time, error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	var (
		gained, ackFloor uint64
		last             time.Time
		moved            = time.Now()
	)
	for {
		select {
		case <-ctx.Done():
			return gained, last, ctx.Err()
		case err := <-ran:
			return gained, last, fmt.Errorf("%w: %v", errRunEnded, err)
		case <-t.C:
		}
		st, err := benchkit.StreamState(ctx, js, streams.EVENTS)
		if err != nil {
			return gained, last, err
		}
		n, lastTime := st.Msgs, st.LastTime
		info, err := cons.Info(ctx)
		if err != nil {
			return gained, last, fmt.Errorf("bench: consumer info: %w", err)
		}
		if n-base != gained || info.AckFloor.Stream != ackFloor {
			gained, ackFloor, last, moved = n-base, info.AckFloor.Stream, lastTime, time.Now()
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return gained, last, nil
		}
		if time.Since(moved) > stall {
			return gained, last, fmt.Errorf("%w for %s: %d pending, %d unacked", benchkit.ErrStalled, stall, info.NumPending, info.NumAckPending)
		}
	}
}

// outcomes reads the normalizer's message counter for kind, by outcome;
// every kind's where kind is empty.
func outcomes(reg *prometheus.Registry, kind string) (map[string]int, error) {
	series, err := benchkit.Gather(reg, "leadstream_normalizer_messages_total")
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range series {
		if kind == "" || s.Labels["kind"] == kind {
			out[s.Labels["outcome"]] += int(s.GetCounter().GetValue())
		}
	}
	return out, nil
}
