package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/measure"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/normalizer"
)

// fillChunk bounds the asynchronous publishes in flight while RAW is
// filled: nats.go refuses more than its limit of pending acks, and every
// message waits for its own fsync.
const fillChunk = 512

// pollEvery is how often a kind's progress is read. The figures do not
// depend on it (the end is the time EVENTS stored its last event); it only
// has to cost the one core little.
const pollEvery = 25 * time.Millisecond

// errStalled ends a kind's measurement that stopped moving.
var errStalled = errors.New("no progress")

// runKind fills RAW with o.KindEvents envelopes of kind, then runs a
// normalizer for that kind alone with GOMAXPROCS 1 until its consumer has
// acked every one, timed from the normalizer's start to the last event
// EVENTS stored. profile, when set, receives a CPU profile of that run.
func runKind(ctx context.Context, o *Options, cfg *config.Config, url string, js jetstream.JetStream, kind string, samples []Sample, profile io.Writer) (KindResult, error) {
	res := KindResult{Kind: kind, Samples: len(samples), Stored: o.KindEvents}
	progress(o.Progress, "%s: storing %d RAW envelopes, round robin over %d sample payload(s), before the clock starts", kind, o.KindEvents, len(samples))
	if err := fill(ctx, js, kind, samples, o.KindEvents); err != nil {
		return res, err
	}
	reg := prometheus.NewRegistry()
	if err := normalizer.Provision(ctx, js, cfg, []string{kind}); err != nil {
		return res, err
	}
	svc, err := normalizer.New(ctx, normalizer.Options{Config: cfg, URL: url, JetStream: js, Logger: o.Logger, Registry: reg, Kinds: []string{kind}})
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	// Closed after Run has returned: the deferred calls run last first.
	defer svc.Close()
	cons, err := js.PushConsumer(ctx, streams.RAW, normalizer.Durable(kind))
	if err != nil {
		return res, fmt.Errorf("bench: consumer %s: %w", normalizer.Durable(kind), err)
	}
	base, _, err := streamState(ctx, js, streams.EVENTS)
	if err != nil {
		return res, err
	}

	progress(o.Progress, "%s: normalizing them on one core (GOMAXPROCS 1)", kind)
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
	cpu0 := measure.ReadCPU()
	start := time.Now()
	go func() { ran <- svc.Run(runCtx) }()
	events, last, err := awaitKind(ctx, o.Stall, js, cons, base, ran)
	seen := time.Now()
	cpu1 := measure.ReadCPU()
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
	switch {
	case errors.Is(err, errStalled):
		res.Complete = false
	case err != nil:
		return res, err
	default:
		res.Complete = true
	}

	res.Events = int(events)
	res.Elapsed = seen.Sub(start)
	if events > 0 && last.After(start) {
		res.Elapsed = last.Sub(start)
	}
	res.Busy, res.Others = cpu0.Use(cpu1, runtime.NumCPU())
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
	mfs, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("bench: gathering normalizer metrics: %w", err)
	}
	out := map[string]Commits{}
	for _, mf := range mfs {
		if mf.GetName() != "leadstream_normalizer_commit_batch_size" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var stream, mode string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "stream":
					stream = l.GetValue()
				case "mode":
					mode = l.GetValue()
				}
			}
			c := out[stream]
			h := m.GetHistogram()
			c.Commits += int(h.GetSampleCount())
			c.Writes += int(h.GetSampleSum())
			if mode == "atomic" {
				c.Atomic += int(h.GetSampleCount())
			}
			out[stream] = c
		}
	}
	return out, nil
}

// errRunEnded reports a normalizer that stopped before its work was done.
var errRunEnded = errors.New("bench: normalizer stopped")

// awaitKind polls until cons has no message left to deliver or to ack, and
// returns how many events EVENTS gained over base and when it stored the
// last one. It gives up with errStalled when nothing moved for stall.
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
		n, lastTime, err := streamState(ctx, js, streams.EVENTS)
		if err != nil {
			return gained, last, err
		}
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
			return gained, last, fmt.Errorf("%w for %s: %d pending, %d unacked", errStalled, stall, info.NumPending, info.NumAckPending)
		}
	}
}

// fill publishes n envelopes of kind to RAW, round robin over samples,
// each with its own provider event id.
func fill(ctx context.Context, js jetstream.JetStream, kind string, samples []Sample, n int) error {
	futures := make([]jetstream.PubAckFuture, 0, fillChunk)
	for i := 0; i < n; {
		futures = futures[:0]
		for ; i < n && len(futures) < fillChunk; i++ {
			s := samples[i%len(samples)]
			raw := s.Raw(fmt.Sprintf("nbench-%s-%d", kind, i))
			if raw.Kind != kind {
				return fmt.Errorf("bench: sample %s makes an envelope of kind %q, not %s", s.Name, raw.Kind, kind)
			}
			f, err := js.PublishMsgAsync(raw.Msg())
			if err != nil {
				return fmt.Errorf("bench: storing sample %s in RAW: %w", s.Name, err)
			}
			futures = append(futures, f)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					return fmt.Errorf("bench: RAW took %s as a duplicate: the sample's envelopes are not unique", f.Msg().Header.Get(jetstream.MsgIDHeader))
				}
			case err := <-f.Err():
				return fmt.Errorf("bench: storing in RAW: %w", err)
			}
		}
	}
	return nil
}

// outcomes reads the normalizer's message counter for kind, by outcome.
func outcomes(reg *prometheus.Registry, kind string) (map[string]int, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("bench: gathering normalizer metrics: %w", err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "leadstream_normalizer_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var k, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "kind":
					k = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			if kind == "" || k == kind {
				out[outcome] += int(m.GetCounter().GetValue())
			}
		}
	}
	return out, nil
}
