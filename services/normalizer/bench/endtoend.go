package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/measure"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/normalizer"
)

// runEndToEnd runs the normalizer for every kind and the caller's edge on
// the same JetStream, sends events at a fixed rate, and times each from the
// edge's 2xx to its arrival in EVENTS.
func runEndToEnd(ctx context.Context, o *Options, cfg *config.Config, url string, js jetstream.JetStream) (*EndToEnd, error) {
	reg := prometheus.NewRegistry()
	if err := normalizer.Provision(ctx, js, cfg, nil); err != nil {
		return nil, err
	}
	svc, err := normalizer.New(ctx, normalizer.Options{Config: cfg, URL: url, JetStream: js, Logger: o.Logger, Registry: reg})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(runCtx) }()
	stopNormalizer := sync.OnceValue(func() error {
		cancel()
		err := <-ran
		svc.Close()
		return err
	})
	defer stopNormalizer()

	// Arrival is taken from an ordered consumer on EVENTS, as a downstream
	// subscriber sees it: a core subscription on events.> would see each
	// event as it is published, before JetStream has stored it. Headers
	// carry the event id; the payload would only cost decoding.
	last, err := lastSeq(ctx, js)
	if err != nil {
		return nil, err
	}
	arr := &arrivals{at: map[string]time.Time{}}
	cons, err := js.OrderedConsumer(ctx, streams.EVENTS, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"events.>"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    last + 1,
		HeadersOnly:    true,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: ordered consumer on EVENTS: %w", err)
	}
	cc, err := cons.Consume(arr.record)
	if err != nil {
		return nil, fmt.Errorf("bench: consuming EVENTS: %w", err)
	}
	defer cc.Stop()

	edge, err := o.Edge(ctx, url)
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

	res := &EndToEnd{Rate: o.Rate, Workers: o.Workers, Warmup: o.Warmup, Duration: o.Duration, GOMAXPROCS: runtime.GOMAXPROCS(0)}
	res.Busy, res.Others = cpu[0].Use(cpu[1], runtime.NumCPU())
	var accepted []sent
	var answer []time.Duration
	for _, s := range sends {
		if s.lag > res.MaxLag {
			res.MaxLag = s.lag
		}
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
		answer = append(answer, s.answered)
	}
	res.Accepted = len(accepted)

	progress(o.Progress, "end to end: waiting up to %s for %d accepted events to arrive in EVENTS", o.Drain, len(accepted))
	if err := arr.await(ctx, accepted, o.Drain); err != nil {
		return nil, err
	}
	var lat []time.Duration
	arr.mu.Lock()
	for _, s := range accepted {
		at, ok := arr.at[s.id]
		if !ok {
			continue
		}
		d := at.Sub(s.accepted)
		// Not clock noise (both times come from this process's monotonic
		// clock): RAW pushes a message to the normalizer as it stores it,
		// while the PubAck is still on its way to the edge and the 2xx to
		// the sender, so a fast normalizer can win.
		if d < 0 {
			res.Early++
			d = 0
		}
		lat = append(lat, d)
	}
	res.DuplicateArrivals = arr.dups
	arr.mu.Unlock()
	res.Arrived = len(lat)
	l, a := measure.Summarize(lat), measure.Summarize(answer)
	res.P50, res.P99, res.Max = l.P50, l.P99, l.Max
	res.AnswerP50, res.AnswerP99 = a.P50, a.P99

	out, err := outcomes(reg, "")
	if err != nil {
		return nil, err
	}
	res.DeadLettered, res.Failed = out["dead_lettered"], out["failed"]
	if err := stopNormalizer(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return res, nil
}

// lastSeq is EVENTS' last sequence.
func lastSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(ctx, streams.EVENTS)
	if err != nil {
		return 0, fmt.Errorf("bench: stream %s: %w", streams.EVENTS, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: stream %s: %w", streams.EVENTS, err)
	}
	return info.State.LastSeq, nil
}

// sent is one send of the end-to-end load.
type sent struct {
	id string
	// accepted is when the edge's 2xx was read.
	accepted time.Time
	// answered is how long the edge took to answer.
	answered time.Duration
	// lag is how late the send started after its place in the schedule.
	lag time.Duration
	// measured says the send was scheduled in the measurement window, not
	// the warmup.
	measured bool
	err      error
}

// pace sends to edge at rate from workers goroutines for warmup and then
// dur, on measure.Pace's fixed schedule. It also returns CPU snapshots from
// the window's opening and closing.
func pace(ctx context.Context, edge Edge, rate float64, workers int, warmup, dur time.Duration) ([]sent, [2]measure.CPU) {
	calls, cpu := measure.Pace(ctx, rate, workers, warmup, dur, edge.Send)
	all := make([]sent, len(calls))
	for i, c := range calls {
		all[i] = sent{
			id: c.Result, accepted: c.End, answered: c.End.Sub(c.Begin), lag: c.Lag,
			measured: c.Measured, err: c.Err,
		}
	}
	return all, cpu
}

// arrivals records when each event id arrived in EVENTS.
type arrivals struct {
	mu   sync.Mutex
	at   map[string]time.Time
	dups int
}

func (a *arrivals) record(m jetstream.Msg) {
	now := time.Now()
	id, _ := envelope.HeaderValue(m.Headers(), envelope.HdrCEID)
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.at[id]; ok {
		a.dups++
		return
	}
	a.at[id] = now
}

// await polls until every accepted event has arrived or drain has passed.
func (a *arrivals) await(ctx context.Context, accepted []sent, drain time.Duration) error {
	missing := make([]string, len(accepted))
	for i, s := range accepted {
		missing[i] = s.id
	}
	deadline := time.Now().Add(drain)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		a.mu.Lock()
		missing = slices.DeleteFunc(missing, func(id string) bool { _, ok := a.at[id]; return ok })
		a.mu.Unlock()
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
