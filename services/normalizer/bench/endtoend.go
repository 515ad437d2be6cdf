package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/normalizer"
)

// runEndToEnd runs the normalizer for every kind and the caller's edge on
// the same JetStream, sends events at a fixed rate, and times each from the
// edge's 2xx to its arrival in EVENTS.
func runEndToEnd(ctx context.Context, o *Options, cfg *config.Config, j *benchkit.JetStream) (*EndToEnd, error) {
	js := j.JS
	reg := prometheus.NewRegistry()
	if err := normalizer.Provision(ctx, js, cfg, nil); err != nil {
		return nil, err
	}
	svc, err := normalizer.New(ctx, normalizer.Options{Config: cfg, URL: j.URL, JetStream: js, Logger: o.Logger, Registry: reg})
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
	events, err := benchkit.StreamState(ctx, js, streams.EVENTS)
	if err != nil {
		return nil, err
	}
	arr := &arrivals{at: map[string]time.Time{}}
	cons, err := js.OrderedConsumer(ctx, streams.EVENTS, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"events.>"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    events.LastSeq + 1,
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

	paced, err := benchkit.PaceEdge[string](ctx, &o.Options, "normalizer", o.Edge, j.URL)
	if err != nil {
		return nil, err
	}

	res := &EndToEnd{Load: paced.Load}
	o.Step("normalizer: end to end: waiting up to %s for %d accepted events to arrive in EVENTS", o.Drain, len(paced.OK))
	ids := make([]string, len(paced.OK))
	for i, s := range paced.OK {
		ids[i] = s.Result
	}
	if err := benchkit.Drained(ctx, ids, o.Drain, arr.arrived); err != nil {
		return nil, err
	}
	lat, answer := benchkit.NewLatency(), benchkit.NewLatency()
	arr.mu.Lock()
	for _, s := range paced.OK {
		answer.Record(s.End.Sub(s.Begin))
		at, ok := arr.at[s.Result]
		if !ok {
			continue
		}
		// The 2xx was read at s.End.
		d := at.Sub(s.End)
		// Not clock noise (both times come from this process's monotonic
		// clock): RAW pushes a message to the normalizer as it stores it,
		// while the PubAck is still on its way to the edge and the 2xx to
		// the sender, so a fast normalizer can win.
		if d < 0 {
			res.Early++
		}
		lat.Record(d)
	}
	res.DuplicateArrivals = arr.dups
	arr.mu.Unlock()
	res.Arrived = lat.Count()
	res.Latency, res.Answer = lat.Summary(), answer.Summary()

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

// arrived says id has arrived in EVENTS.
func (a *arrivals) arrived(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.at[id]
	return ok
}
