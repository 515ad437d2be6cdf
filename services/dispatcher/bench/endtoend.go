package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/measure"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/dispatcher"
)

// Receipt is the edge's acceptance of one event of the load.
type Receipt struct {
	// EventID is the event id of the edge's 2xx: the LMS's webhook-id.
	EventID string
	// Sent is when the request was handed to the network, after signing
	// it: on loopback, the edge's receipt.
	Sent time.Time
	// Label names what was sent, e.g. its sample; the report shows the
	// labels with the slowest deliveries.
	Label string
}

// Edge is the front of the pipeline that the end-to-end load goes to.
type Edge interface {
	// Send posts one new provider event to the edge, signed as its provider
	// signs it, and returns its Receipt once the edge answered 2xx, i.e.
	// once the event is durably in RAW. Any other answer, and a duplicate,
	// is an error. Send is called from several goroutines at once.
	Send(ctx context.Context) (Receipt, error)
	// Close stops the edge. It is called once, after the last Send returned.
	Close() error
}

// StartEdge starts an Edge that stores into RAW on the JetStream server at
// natsURL. RAW exists when it is called.
type StartEdge func(ctx context.Context, natsURL string) (Edge, error)

// Service is a pipeline service the bench runs until it is done with it.
type Service interface {
	// Run works until ctx ends and returns nil then.
	Run(ctx context.Context) error
}

// StartNormalizer prepares a normalizer for every kind against the
// JetStream server at natsURL, which js is connected to, with cfg: the
// bench's copy of the config, with one replica. RAW, EVENTS and DLQ exist
// when it is called.
type StartNormalizer func(ctx context.Context, cfg *config.Config, natsURL string, js jetstream.JetStream) (Service, error)

// runEndToEnd runs the caller's edge and normalizer and a dispatcher with
// the bench adapter on one JetStream, sends events at a fixed rate, and
// times each from the edge's receipt (and from its 2xx) to the fake LMS
// accepting it.
func runEndToEnd(ctx context.Context, o *Options, cfg *config.Config, secret string) (*EndToEnd, error) {
	j, err := startJetStream(o, "e2e", "end to end")
	if err != nil {
		return nil, err
	}
	defer j.close()
	l, err := startLMS(verifySecret(o, secret))
	if err != nil {
		return nil, fmt.Errorf("bench: fake LMS: %w", err)
	}
	defer l.close()
	cfg = withLMS(cfg, l)
	if err := ensureStreams(ctx, j.js, cfg, true); err != nil {
		return nil, err
	}

	norm, err := o.Normalizer(ctx, cfg, j.url(), j.js)
	if err != nil {
		return nil, fmt.Errorf("bench: starting the normalizer: %w", err)
	}
	reg := prometheus.NewRegistry()
	if err := dispatcher.Provision(ctx, j.js, cfg); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	disp, err := dispatcher.New(ctx, dispatcher.Options{Config: cfg, JetStream: j.js, Logger: o.Logger, Registry: reg, Projection: !o.NoProjection})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	nran, dran := make(chan error, 1), make(chan error, 1)
	go func() { nran <- norm.Run(runCtx) }()
	go func() { dran <- disp.Run(runCtx) }()
	stopServices := sync.OnceValue(func() error {
		cancel()
		nerr, derr := <-nran, <-dran
		if nerr != nil {
			nerr = fmt.Errorf("normalizer: %w", nerr)
		}
		if derr != nil {
			derr = fmt.Errorf("dispatcher: %w", derr)
		}
		return errors.Join(nerr, derr)
	})
	defer stopServices()

	edge, err := o.Edge(ctx, j.url())
	if err != nil {
		return nil, fmt.Errorf("bench: starting the edge: %w", err)
	}
	progress(o.Progress, "end to end: %g events/s from %d workers, %s warmup, then %s measured", o.Rate, o.Workers, o.Warmup, o.Duration)
	sends, cpu := pace(ctx, edge, o.Rate, o.Workers, o.Warmup, o.Duration)
	if err := edge.Close(); err != nil {
		return nil, fmt.Errorf("bench: stopping the edge: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &EndToEnd{Rate: o.Rate, Workers: o.Workers, Warmup: o.Warmup, Duration: o.Duration, Load: o.Load, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	res.Busy, res.Others = cpu[0].Use(cpu[1], runtime.NumCPU())
	var accepted []sent
	var answer []time.Duration
	for _, s := range sends {
		res.MaxLag = max(res.MaxLag, s.lag)
		if !s.measured {
			continue
		}
		if s.err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = s.err.Error()
			}
			continue
		}
		accepted = append(accepted, s)
		answer = append(answer, s.accepted.Sub(s.sent))
	}
	res.Accepted = len(accepted)

	progress(o.Progress, "end to end: waiting up to %s for %d accepted events to reach the LMS", o.Drain, len(accepted))
	if err := awaitDelivered(ctx, l, accepted, o.Drain); err != nil {
		return nil, err
	}
	var fromSend, from202 []time.Duration
	byLabel := map[string][]time.Duration{}
	for _, s := range accepted {
		at, ok := l.accepted(s.id)
		if !ok {
			continue
		}
		fromSend = append(fromSend, at.Sub(s.sent))
		byLabel[s.label] = append(byLabel[s.label], at.Sub(s.sent))
		d := at.Sub(s.accepted)
		// Not clock noise (one process, one monotonic clock): the edge's
		// answer can lose the race with the whole pipeline when the
		// sender's goroutine waits for a core.
		if d < 0 {
			res.Early++
			d = 0
		}
		from202 = append(from202, d)
	}
	res.Delivered = len(fromSend)
	fs := measure.Summarize(fromSend)
	res.P50, res.P99, res.Max = fs.P50, fs.P99, fs.Max
	fa := measure.Summarize(from202)
	res.AcceptedP50, res.AcceptedP99, res.AcceptedMax = fa.P50, fa.P99, fa.Max
	an := measure.Summarize(answer)
	res.AnswerP50, res.AnswerP99 = an.P50, an.P99
	for label, ds := range byLabel {
		s := measure.Summarize(ds)
		res.Labels = append(res.Labels, LabelLatency{Label: label, Events: len(ds), P50: s.P50, P99: s.P99})
	}
	// Slowest first: they explain the overall p99.
	slices.SortFunc(res.Labels, func(a, b LabelLatency) int {
		if c := cmp.Compare(b.P99, a.P99); c != 0 {
			return c
		}
		return strings.Compare(a.Label, b.Label)
	})
	res.Duplicates = l.duplicates()
	res.BadSignatures = int(l.bad.Load())

	out, err := readOutcomes(reg)
	if err != nil {
		return nil, err
	}
	res.Orphans, res.Retries = out.orphans, out.retries
	dl, err := streamMsgs(ctx, j.js, streams.DLQ)
	if err != nil {
		return nil, err
	}
	res.DeadLetters = int(dl)
	if !o.NoProjection {
		if _, err := awaitConsumer(ctx, j.js, projectionDurable, o.Drain); err != nil {
			return nil, err
		}
	}
	if err := stopServices(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return res, nil
}

// sent is one send of the end-to-end load.
type sent struct {
	id, label string
	// sent is when the request went out; accepted when its 2xx was read.
	sent, accepted time.Time
	// lag is how late the send started after its place in the schedule.
	lag time.Duration
	// measured says the send was scheduled in the measurement window, not
	// the warmup.
	measured bool
	err      error
}

// pace sends to edge at rate from workers goroutines for warmup and then
// dur, on measure.Pace's fixed schedule, each send timed from its
// Receipt's Sent or, where the edge gives none, from the call. It also
// returns CPU snapshots from the window's opening and closing.
func pace(ctx context.Context, edge Edge, rate float64, workers int, warmup, dur time.Duration) ([]sent, [2]measure.CPU) {
	calls, cpu := measure.Pace(ctx, rate, workers, warmup, dur, edge.Send)
	all := make([]sent, len(calls))
	for i, c := range calls {
		r := c.Result
		if r.Sent.IsZero() {
			r.Sent = c.Begin
		}
		all[i] = sent{
			id: r.EventID, label: r.Label, sent: r.Sent, accepted: c.End, lag: c.Lag,
			measured: c.Measured, err: c.Err,
		}
	}
	return all, cpu
}

// awaitDelivered polls until the LMS has accepted every accepted event or
// drain has passed.
func awaitDelivered(ctx context.Context, l *lms, accepted []sent, drain time.Duration) error {
	missing := make([]string, len(accepted))
	for i, s := range accepted {
		missing[i] = s.id
	}
	deadline := time.Now().Add(drain)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		missing = slices.DeleteFunc(missing, func(id string) bool { _, ok := l.accepted(id); return ok })
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
