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
// StartNormalizer). `leadstream bench` passes the real ones.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/embedded"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/streams"
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
	// Config supplies the dispatcher's settings (workers, max_ack_pending,
	// max_park), the streams' limits, and the delivery settings (timeout,
	// retries, breaker) of its first webhook adapter, which the bench copies
	// with the fake LMS's URL and a fresh secret, for every type and tenant.
	// Its NATS settings are not used: the bench runs its own JetStream in
	// this process. Required.
	Config *config.Config

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
	// Stall ends the throughput measurement, as incomplete, when the LMS got
	// nothing new for this long. Default 30s.
	Stall time.Duration
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
	// Load describes what Edge sends, for the report, e.g. which samples it
	// leaves out and why.
	Load string
	// Rate is how many events a second the end-to-end load sends, on a
	// fixed schedule. Default 200.
	Rate float64
	// Workers is how many sends may be in flight at once. Default 8.
	Workers int
	// Duration is how long the end-to-end load is measured. Default 10s.
	Duration time.Duration
	// Warmup is load at the same rate before the measurement, not counted:
	// connections, consumers and the store get warm. Default 1s; negative
	// for none.
	Warmup time.Duration
	// Drain is how long to wait, after the load, for the last accepted
	// events to reach the LMS. Default 30s.
	Drain time.Duration

	// StoreDir is where the JetStream stores are made, each in a fresh
	// directory removed afterwards. Default: the system's temporary
	// directory.
	StoreDir string
	// CPUProfile, when set, receives a CPU profile (pprof) of the
	// throughput measurement alone: from the dispatcher's start to the LMS
	// accepting the last event, without the fill before it.
	CPUProfile io.Writer
	// Progress, when set, gets a line as each step starts.
	Progress io.Writer
	// Logger receives the services' and nats-server's log lines. Default:
	// none.
	Logger *zap.Logger
}

func (o *Options) setDefaults() {
	if o.Events == 0 {
		o.Events = 5000
	}
	if o.Aggregates == 0 {
		o.Aggregates = max(1, min(500, o.Events/10))
	}
	if o.Stall == 0 {
		o.Stall = 30 * time.Second
	}
	if o.Rate == 0 {
		o.Rate = 200
	}
	if o.Workers == 0 {
		o.Workers = 8
	}
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.Drain == 0 {
		o.Drain = 30 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Validate reports the first option Run cannot work with.
func (o *Options) Validate() error {
	switch {
	case o.Config == nil:
		return errors.New("bench: Config is required")
	case o.Events > 0 && o.Aggregates <= 0:
		return fmt.Errorf("bench: Aggregates %d is not positive", o.Aggregates)
	case o.Events > 0 && o.Aggregates > o.Events:
		return fmt.Errorf("bench: %d aggregates for %d events: each needs at least its lead", o.Aggregates, o.Events)
	case o.Rate < 0:
		return fmt.Errorf("bench: Rate %g is negative", o.Rate)
	case o.Workers < 0:
		return fmt.Errorf("bench: Workers %d is negative", o.Workers)
	case o.Duration < 0:
		return fmt.Errorf("bench: Duration %s is negative", o.Duration)
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
	// A copy: one embedded server holds one replica, whatever production
	// uses, and the one adapter is the bench's.
	cfg := *o.Config
	cfg.NATS.Replicas = 1
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

// jetStream is a fresh embedded server with a client connection.
type jetStream struct {
	// ns is the *server.Server, by what the bench uses of it: the module
	// needs nats-server only indirectly, through pkg/embedded.
	ns interface {
		ClientURL() string
		Shutdown()
		WaitForShutdown()
	}
	nc  *nats.Conn
	js  jetstream.JetStream
	dir string
}

// startJetStream starts a server on loopback with its store in a new
// directory under o.StoreDir: always fresh, since a reused store could hold
// an interrupted run's backlog, which the next run would measure as its own.
func startJetStream(o *Options, part, label string) (*jetStream, error) {
	dir, err := os.MkdirTemp(o.StoreDir, "leadstream-bench-dispatcher-"+part+"-")
	if err != nil {
		return nil, fmt.Errorf("bench: store dir: %w", err)
	}
	progress(o.Progress, "%s: starting JetStream (file store %s, fsync before every ack)", label, dir)
	ns, err := embedded.Start(embedded.Options{Listen: "127.0.0.1:0", StoreDir: dir, Logger: o.Logger})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	nc, js, err := natsconn.Connect(ns.ClientURL(), natsconn.Options{Name: "leadstream-bench-dispatcher", Logger: o.Logger})
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &jetStream{ns: ns, nc: nc, js: js, dir: dir}, nil
}

func (j *jetStream) url() string { return j.ns.ClientURL() }

func (j *jetStream) close() {
	j.nc.Close()
	j.ns.Shutdown()
	j.ns.WaitForShutdown()
	os.RemoveAll(j.dir)
}

// outcomes are the dispatcher's delivery counts, by outcome.
type outcomes struct {
	delivered, orphans, retries, deadLettered int
}

// readOutcomes reads the dispatcher's delivery counter from its registry.
func readOutcomes(reg *prometheus.Registry) (outcomes, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return outcomes{}, fmt.Errorf("bench: gathering dispatcher metrics: %w", err)
	}
	var out outcomes
	for _, mf := range mfs {
		if mf.GetName() != "leadstream_dispatcher_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			n := int(m.GetCounter().GetValue())
			for _, l := range m.GetLabel() {
				if l.GetName() != "outcome" {
					continue
				}
				switch l.GetValue() {
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
		}
	}
	return out, nil
}

// awaitConsumer polls until the durable consumer on EVENTS has nothing left
// to deliver or to ack, and returns when it saw that. It gives up with
// errStalled when the consumer's ack floor did not move for stall.
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
			return time.Time{}, fmt.Errorf("%w for %s: consumer %s has %d pending, %d unacked", errStalled, stall, durable, info.NumPending, info.NumAckPending)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}

// streamMsgs is how many messages a stream holds, 0 when it does not exist.
func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) (uint64, error) {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("bench: stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: stream %s: %w", name, err)
	}
	return info.State.Msgs, nil
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

func progress(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "bench: dispatcher: "+format+"\n", a...)
}
