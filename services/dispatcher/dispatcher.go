// Package dispatcher hands normalized events to the downstream LMS
// adapters: one durable consumer per adapter (an LMS that is down never
// slows another), causal order per aggregate with parked events kept in
// JetStream, retries with backoff, dead letters with every attempt's
// outcome, and the order-independent leads projection.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/leads"
)

// Options are the dispatcher's dependencies.
type Options struct {
	// Config is the validated configuration; its adapters are dispatched to.
	Config *config.Config
	// JetStream is where EVENTS, the timers and the buckets live.
	JetStream jetstream.JetStream
	// Logger is required.
	Logger *zap.Logger
	// Registry receives metrics; nil makes a private one.
	Registry prometheus.Registerer
	// Adapters limits the dispatcher to these adapter names; empty is all.
	Adapters []string
	// NoAdapters runs no adapter at all (a process for the leads projection
	// alone); it overrides Adapters.
	NoAdapters bool
	// Projection runs the leads projection consumer too. Default false.
	Projection bool
	// newAdapter builds an adapter from its config; nil is New (the
	// built-in types). Tests use it to wrap or replace adapters.
	newAdapter func(*config.Adapter, *zap.Logger) (adapter.Adapter, error)
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Service is a running dispatcher.
type Service struct {
	cfg        *config.Config
	js         jetstream.JetStream
	log        *zap.Logger
	m          *metrics
	lanes      []*lane
	projection *leads.Writer
	now        func() time.Time
}

// New binds to the topology `leadstream provision` made (Provision): EVENTS,
// DLQ, the dispatch bucket, each adapter's consumer group and, with the
// projection, the leads bucket and its consumer; what is missing is named
// in an error wrapping streams.ErrNotProvisioned. It connects the adapters;
// the process joins the groups in Run.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Config == nil || o.JetStream == nil || o.Logger == nil {
		return nil, errors.New("dispatcher: Config, JetStream and Logger are required")
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.newAdapter == nil {
		o.newAdapter = newAdapter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Service{cfg: o.Config, js: o.JetStream, log: o.Logger, m: newMetrics(o.Registry), now: o.Now}
	cfg := o.Config
	if err := need(cfg, o.Adapters, o.NoAdapters, o.Projection).Check(ctx, s.js); err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	kv, err := s.js.KeyValue(ctx, streams.DispatchBucket)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	events, err := s.js.Stream(ctx, streams.EVENTS)
	if err != nil {
		return nil, fmt.Errorf("dispatcher: %w", err)
	}
	for _, name := range o.Adapters {
		if !slices.ContainsFunc(cfg.Adapters, func(a config.Adapter) bool { return a.Name == name }) {
			return nil, fmt.Errorf("dispatcher: no adapter named %q in the config", name)
		}
	}
	for i := range cfg.Adapters {
		ac := &cfg.Adapters[i]
		if o.NoAdapters || (len(o.Adapters) > 0 && !slices.Contains(o.Adapters, ac.Name)) {
			continue
		}
		ad, err := o.newAdapter(ac, s.log.Named(ac.Name))
		if err != nil {
			return nil, fmt.Errorf("dispatcher: adapters[%d] (%s): %w", i, ac.Name, err)
		}
		if err := ad.Connect(ctx); err != nil {
			return nil, fmt.Errorf("dispatcher: connecting adapter %s: %w", ac.Name, err)
		}
		member := cfg.Dispatcher.Member
		if member == "" {
			member = defaultMember()
		}
		l := &lane{cfg: ac, ad: ad, js: s.js, events: events, st: states{kv: kv}, log: s.log, m: s.m,
			maxPark: cfg.Dispatcher.MaxPark.Duration, subscribed: subscribedFunc(ac), now: s.now,
			member: member, partitions: cfg.Dispatcher.Partitions, ackWait: cfg.Dispatcher.AckWait.Duration,
			holdFor: holdFor(cfg.Dispatcher.AckWait.Duration)}
		l.own = newOwnership(member, l.partitions, l.handoverGrace(), s.now)
		if err := checkGroup(ctx, s.js, ac, l.partitions); err != nil {
			return nil, fmt.Errorf("dispatcher: adapter %s: %w", ac.Name, err)
		}
		s.m.initAdapter(ac.Name)
		s.m.initConsumer(l.durable())
		s.lanes = append(s.lanes, l)
	}
	if o.Projection {
		lkv, err := s.js.KeyValue(ctx, leads.Bucket)
		if err != nil {
			return nil, fmt.Errorf("dispatcher: %w", err)
		}
		st, err := s.js.Stream(ctx, leadsStream)
		if err != nil {
			return nil, fmt.Errorf("dispatcher: %w", err)
		}
		atomic := st.CachedInfo().Config.AllowAtomicPublish
		if !atomic {
			s.log.Warn("stream takes no atomic batches, the projection writes one by one: run leadstream provision", zap.String("stream", leadsStream))
		}
		s.projection = leads.NewWriter(s.js, lkv, atomic)
		s.m.initConsumer(projectionConsumer.Durable)
	}
	return s, nil
}

// need is what a dispatcher of adapters (all when empty, none with
// noAdapters) and, with projection, the leads projection binds to.
func need(cfg *config.Config, adapters []string, noAdapters, projection bool) streams.Need {
	n := streams.Need{Streams: []string{streams.EVENTS, streams.DLQ}, Buckets: []string{streams.DispatchBucket}}
	for _, a := range cfg.Adapters {
		if noAdapters || (len(adapters) > 0 && !slices.Contains(adapters, a.Name)) {
			continue
		}
		n.Streams = append(n.Streams, GroupStream(a.Name))
	}
	if projection {
		n.Buckets = append(n.Buckets, leads.Bucket)
		n.Consumers = append(n.Consumers, [2]string{streams.EVENTS, projectionConsumer.Durable})
	}
	return n
}

// Provision creates or updates what dispatchers of cfg's adapters and the
// leads projection use: EVENTS, DLQ, the dispatch bucket (read from its
// leader), each adapter's consumer group, the leads bucket and the
// projection's consumer. `leadstream provision` calls it; the services only
// bind. (A nats adapter's ordered stream is its own output, possibly on
// another server: the adapter makes it when it connects.)
func Provision(ctx context.Context, js jetstream.JetStream, cfg *config.Config) error {
	if err := streams.Ensure(ctx, js, streams.EventsConfig(cfg), streams.DLQConfig(cfg)); err != nil {
		return err
	}
	if _, err := streams.EnsureKVLeaderReads(ctx, js, streams.DispatchConfig(cfg)); err != nil {
		return err
	}
	for i := range cfg.Adapters {
		if err := ensureGroup(ctx, js, &cfg.Adapters[i], cfg.Dispatcher.Partitions); err != nil {
			return fmt.Errorf("dispatcher: adapter %s: %w", cfg.Adapters[i].Name, err)
		}
	}
	if _, err := streams.EnsureKV(ctx, js, leads.BucketConfig(cfg.NATS.Replicas)); err != nil {
		return err
	}
	if err := streams.AllowAtomicPublish(ctx, js, leads.Bucket); err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, streams.EVENTS, projectionConsumer); err != nil {
		return fmt.Errorf("dispatcher: projection consumer: %w", err)
	}
	return nil
}

// leadsStream is the leads bucket's stream.
const leadsStream = "KV_" + leads.Bucket

// Run dispatches until ctx ends, then closes the adapters.
func (s *Service) Run(ctx context.Context) error {
	// A process that restarts after a crash takes over what it held at once,
	// instead of waiting out ack_wait (admitting and timers are idempotent).
	// (The adapters' groups need none: a dead member's consumer lapses and
	// its messages go to the member that takes its partitions.)
	if s.projection != nil {
		s.takeOver(ctx, streams.EVENTS, projectionConsumer.Durable)
	}
	var g run.Group
	for _, l := range s.lanes {
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return l.run(ctx, s.cfg.Dispatcher.Workers, s.cfg.Dispatcher.MaxAckPending) }, func(error) { cancel() })
	}
	if s.projection != nil {
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return s.project(ctx) }, func(error) { cancel() })
	}
	{
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { s.observe(ctx); return nil }, func(error) { cancel() })
	}
	err := g.Run()
	s.Close()
	return err
}

// Close closes the adapters; Run does when it returns. A Service made only
// for its topology (leadstream provision) or a replay is closed with it.
func (s *Service) Close() {
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, l := range s.lanes {
		if cerr := l.ad.Close(closeCtx); cerr != nil {
			s.log.Warn("closing adapter", zap.String("adapter", l.cfg.Name), zap.Error(cerr))
		}
	}
}

func (s *Service) takeOver(ctx context.Context, stream, consumer string) {
	upTo, err := streams.TakeOver(ctx, s.js, stream, consumer)
	if err != nil {
		s.log.Warn("taking over unacknowledged messages failed; they come back after ack_wait", zap.String("consumer", consumer), zap.Error(err))
	} else if upTo > 0 {
		s.log.Info("took over unacknowledged messages", zap.String("consumer", consumer), zap.Uint64("sequence_up_to", upTo))
	}
}

// breakerStater is implemented by adapters with a circuit breaker.
type breakerStater interface {
	BreakerState() string
}

// observe keeps the breaker and DLQ depth gauges current until ctx ends.
func (s *Service) observe(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		for _, l := range s.lanes {
			if b, ok := l.ad.(breakerStater); ok {
				s.m.breaker.WithLabelValues(l.cfg.Name).Set(map[string]float64{"closed": 0, "half-open": 1, "open": 2}[b.BreakerState()])
			}
		}
		s.observeDLQ(ctx)
		s.observeGroups(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// observeGroups sets the backlog gauge of each adapter's consumer group.
func (s *Service) observeGroups(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, l := range s.lanes {
		st, err := s.js.Stream(ctx, GroupStream(l.cfg.Name))
		if err != nil {
			continue
		}
		if info, err := st.Info(ctx); err == nil {
			s.m.groupBacklog.WithLabelValues(l.cfg.Name).Set(float64(info.State.Msgs))
		}
	}
}

func (s *Service) observeDLQ(ctx context.Context) {
	if len(s.lanes) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, streams.DLQ)
	if err != nil {
		return
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(streams.DLQSubject(dlq.StageDeliver, "*")))
	if err != nil {
		return
	}
	for _, l := range s.lanes {
		s.m.dlqDepth.WithLabelValues(l.cfg.Name).Set(float64(info.State.Subjects[streams.DLQSubject(dlq.StageDeliver, l.cfg.Name)]))
	}
}
