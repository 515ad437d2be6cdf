// Package bench measures the dispatcher, in two parts: how many deliveries a
// second it makes to a local fake LMS from an EVENTS stream filled
// beforehand; and, with the whole pipeline in this process, how long an
// event takes from the edge receiving it to the LMS answering 2xx, at a
// steady load. Each part runs on a fresh JetStream whose file streams are
// fsynced before every ack, as in production. It prints figures and asserts
// none: timings depend on the machine.
//
// The dispatcher module depends on neither the edge nor the normalizer
// module, so the caller starts those for the end-to-end part (StartEdge,
// StartNormalizer). The harness, cmd/bench, passes the real ones.
package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/dispatcher"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// adapterName is the one adapter the bench configures, pointing at its
// fake LMS.
const adapterName = "bench"

// projectionDurable is the dispatcher's leads projection consumer on
// EVENTS, by its durable name: the bench waits for it to catch up before
// it stops the dispatcher, which would otherwise log a failed merge for
// every event in flight.
const projectionDurable = "projection-leads"

// Options configures Run.
type Options struct {
	// Options are the settings every bench takes. Config supplies the
	// dispatcher's settings (workers, max_ack_pending, max_park), the
	// streams' limits, and the delivery settings (timeout, retries,
	// breaker) of its first webhook adapter, which the bench copies with
	// the fake LMS's URL and a fresh secret, for every type and tenant.
	// Duration, Warmup, Concurrency (the sends in flight at most, default
	// 8), Rate (default 200 a second) and Drain (until the LMS has the
	// events) are the end-to-end load's; Stall is the throughput
	// measurement's, when the LMS got nothing new. Each part's JetStream
	// store is made in a fresh directory under StoreDir. The CPUProfile is
	// of the throughput measurement alone: from the dispatcher's start to
	// the LMS accepting the last event, without the fill before it.
	benchkit.Options

	// Events is how many events EVENTS is filled with before the
	// throughput measurement. Default 5000; negative skips it.
	Events int
	// Aggregates is how many conversations the events are spread over,
	// round robin: each gets a lead.created first, then chat messages,
	// which need the lead delivered first. Default: one per ten events, at
	// most 500.
	Aggregates int
	// EarlyChats stores each conversation's first chat message before its
	// lead.created, as providers sometimes deliver: it parks until the lead
	// is delivered. Default false: leads first, nothing parks.
	EarlyChats bool
	// Verify makes the fake LMS check every Standard Webhooks signature and
	// refuse bad ones. Default false: an HMAC per request is the LMS's work,
	// not the dispatcher's, and would share the cores with it.
	Verify bool
	// NoProjection leaves out the leads projection, which `leadstream run`
	// (and `leadstream dispatcher` without --adapters) runs beside the
	// adapters' lanes, on the same events and the same disk.
	NoProjection bool

	// Edge and Normalizer start the front of the pipeline for the
	// end-to-end measurement; it is skipped when either is nil.
	Edge       StartEdge
	Normalizer StartNormalizer
	// Samples describes what Edge sends, for the report, e.g. which
	// samples it leaves out and why.
	Samples string
}

func (o *Options) setDefaults() {
	if o.Rate == 0 {
		o.Rate = 200
	}
	o.Options.SetDefaults()
	if o.Events == 0 {
		o.Events = 5000
	}
	if o.Aggregates == 0 {
		o.Aggregates = max(1, min(500, o.Events/10))
	}
}

// Validate reports the first option Run cannot work with.
func (o *Options) Validate() error {
	if err := o.Options.Validate(); err != nil {
		return err
	}
	switch {
	case o.Events > 0 && o.Aggregates <= 0:
		return fmt.Errorf("bench: Aggregates %d is not positive", o.Aggregates)
	case o.Events > 0 && o.Aggregates > o.Events:
		return fmt.Errorf("bench: %d aggregates for %d events: each needs at least its lead", o.Aggregates, o.Events)
	}
	return nil
}

// Run measures the dispatcher's throughput, then the pipeline end to end,
// each on a JetStream of its own in this process, and returns the figures.
// The stores and servers are gone when it returns.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// The one adapter is the bench's.
	cfg := o.LocalConfig()
	secret := webhook.GenerateSecret()
	cfg.Adapters = []config.Adapter{benchAdapter(o.Config, secret)}

	rep := &Report{
		Workers:       cfg.Dispatcher.Workers,
		MaxAckPending: cfg.Dispatcher.MaxAckPending,
		MaxPark:       cfg.Dispatcher.MaxPark.Duration,
		Projection:    !o.NoProjection,
		Verified:      o.Verify,
	}
	if o.Events > 0 {
		res, err := runThroughput(ctx, &o, &cfg, secret)
		if err != nil {
			return nil, err
		}
		rep.Throughput = res
	}
	if o.Edge != nil && o.Normalizer != nil {
		res, err := runEndToEnd(ctx, &o, &cfg, secret)
		if err != nil {
			return nil, err
		}
		rep.EndToEnd = res
	}
	return rep, nil
}

// benchAdapter is the adapter the bench delivers through: the config's
// first webhook adapter's delivery settings, the fake LMS's URL (set once it
// listens), a fresh secret, and no type or tenant filter, so that every
// event of the load is delivered. A config without a webhook adapter gets
// the documented defaults.
func benchAdapter(cfg *config.Config, secret string) config.Adapter {
	a := config.Adapter{
		Timeout: config.Dur(10 * time.Second), MaxAttempts: 10, MaxAge: config.Dur(time.Hour),
		BackoffInitial: config.Dur(time.Second), BackoffMax: config.Dur(5 * time.Minute),
		BreakerFailures: 5, BreakerCooldown: config.Dur(30 * time.Second),
	}
	if i := slices.IndexFunc(cfg.Adapters, func(a config.Adapter) bool { return a.Type == webhook.Type }); i >= 0 {
		a = cfg.Adapters[i]
	}
	a.Name, a.Type = adapterName, webhook.Type
	a.Secret, a.Secrets = secret, nil
	a.Types, a.Tenants = nil, nil
	return a
}

// outcomes are the dispatcher's delivery counts, by outcome.
type outcomes struct {
	delivered, orphans, retries, deadLettered int
}

// readOutcomes reads the dispatcher's delivery counter from its registry.
func readOutcomes(reg *prometheus.Registry) (outcomes, error) {
	series, err := benchkit.Gather(reg, "leadstream_dispatcher_deliveries_total")
	if err != nil {
		return outcomes{}, err
	}
	var out outcomes
	for _, s := range series {
		n := int(s.GetCounter().GetValue())
		switch s.Labels["outcome"] {
		case "delivered":
			out.delivered += n
		case "delivered_orphan":
			out.delivered += n
			out.orphans += n
		case "retry":
			out.retries += n
		case "dead_lettered":
			out.deadLettered += n
		}
	}
	return out, nil
}

// awaitConsumer polls until the durable consumer on EVENTS has nothing left
// to deliver or to ack, and returns when it saw that. It gives up with
// benchkit.ErrStalled when the consumer's ack floor did not move for stall.
func awaitConsumer(ctx context.Context, js jetstream.JetStream, durable string, stall time.Duration) (time.Time, error) {
	cons, err := js.Consumer(ctx, streams.EVENTS, durable)
	if err != nil {
		return time.Time{}, fmt.Errorf("bench: consumer %s: %w", durable, err)
	}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	var floor uint64
	moved := time.Now()
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return time.Time{}, fmt.Errorf("bench: consumer %s: %w", durable, err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return time.Now(), nil
		}
		if info.AckFloor.Stream != floor {
			floor, moved = info.AckFloor.Stream, time.Now()
		}
		if time.Since(moved) > stall {
			return time.Time{}, fmt.Errorf("%w for %s: consumer %s has %d pending, %d unacked", benchkit.ErrStalled, stall, durable, info.NumPending, info.NumAckPending)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}

// ensureStreams makes the streams the services expect to exist, with the
// bench's single replica.
func ensureStreams(ctx context.Context, js jetstream.JetStream, cfg *config.Config, raw bool) error {
	cfgs := []jetstream.StreamConfig{streams.EventsConfig(cfg), streams.DLQConfig(cfg)}
	if raw {
		cfgs = append(cfgs, streams.RawConfig(cfg))
	}
	if err := streams.Ensure(ctx, js, cfgs...); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// part is what each part of the bench measures on: a fresh JetStream with
// the streams, and a fake LMS that cfg's adapter delivers to.
type part struct {
	j   *benchkit.JetStream
	lms *lms
	cfg *config.Config
}

// startPart starts a part named name; raw says the part needs RAW too.
func startPart(ctx context.Context, o *Options, cfg *config.Config, secret, name string, raw bool) (*part, error) {
	j, err := benchkit.StartJetStream(&o.Options, "dispatcher-"+name)
	if err != nil {
		return nil, err
	}
	l, err := startLMS(verifySecret(o, secret))
	if err != nil {
		j.Close()
		return nil, fmt.Errorf("bench: fake LMS: %w", err)
	}
	p := &part{j: j, lms: l, cfg: withLMS(cfg, l)}
	if err := ensureStreams(ctx, j.JS, p.cfg, raw); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// newDispatcher provisions a dispatcher with the bench adapter on the
// part's JetStream and makes it, with a registry of its own.
func (p *part) newDispatcher(ctx context.Context, o *Options) (*dispatcher.Service, *prometheus.Registry, error) {
	if err := dispatcher.Provision(ctx, p.j.JS, p.cfg); err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	reg := prometheus.NewRegistry()
	svc, err := dispatcher.New(ctx, dispatcher.Options{Config: p.cfg, JetStream: p.j.JS, Logger: o.Logger, Registry: reg, Projection: !o.NoProjection})
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	return svc, reg, nil
}

func (p *part) close() {
	p.lms.close()
	p.j.Close()
}
