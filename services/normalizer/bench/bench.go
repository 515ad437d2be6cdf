// Package bench measures the normalizer, in two parts: how many events a
// second one kind's consumer normalizes on one core, from a RAW stream
// filled beforehand; and, with the whole pipeline in this process, how long
// an event takes from the edge's 2xx to its arrival in EVENTS at a steady
// load. Every stream is a file stream fsynced before every ack, as in
// production. It prints figures and asserts none: timings depend on the
// machine.
//
// The normalizer module does not depend on the edge module, so the caller
// supplies what only the edge knows: the sample payloads as the edge stores
// them (Sample), and the edge itself for the end-to-end measurement
// (StartEdge). `leadstream bench` passes the real ones.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/embedded"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/streams"
)

// Sample is one provider payload of one kind, as the edge stores it in RAW.
type Sample struct {
	// Name identifies the sample in errors, e.g. "marktplaats-api/bid-placed".
	Name string
	// Kind is the kind the edge files the payload under (envelope.Kinds).
	Kind string
	// Raw returns the RAW envelope the edge would store for the payload with
	// its provider event id made unique by suffix: every new suffix is a new
	// provider event, so that the load is not all duplicates. It is called
	// from one goroutine at a time.
	Raw func(suffix string) *envelope.Raw
}

// Edge is the front of the pipeline that the end-to-end measurement loads.
type Edge interface {
	// Send delivers one new provider event and returns its event id once the
	// edge has answered 2xx, i.e. once the event is durably in RAW. Any other
	// answer, and a duplicate, is an error. Send is called from several
	// goroutines at once.
	Send(ctx context.Context) (eventID string, err error)
	// Close stops the edge. It is called once, after the last Send returned.
	Close() error
}

// StartEdge starts an Edge that stores into RAW on the JetStream server at
// natsURL. RAW exists when it is called.
type StartEdge func(ctx context.Context, natsURL string) (Edge, error)

// Options configures Run.
type Options struct {
	// Config supplies the normalizer's consumer settings and the streams'
	// limits. Its NATS settings are not used: the bench runs its own
	// JetStream in this process. Required.
	Config *config.Config

	// Samples are the payloads the per-kind measurement fills RAW with,
	// round robin within each kind. Every kind in Kinds needs one.
	Samples []Sample
	// Kinds are measured one after the other. Default: every kind but
	// "unknown", which has no events to make.
	Kinds []string
	// KindEvents is how many RAW envelopes of each kind are normalized.
	// Default 2000; negative skips the per-kind measurement.
	KindEvents int
	// KindMaxAckPending, when positive, replaces the config's
	// normalizer.max_ack_pending and subscribers in the per-kind
	// measurement: a normalizer process of one kind, as deployed per kind,
	// rather than `leadstream run`'s settings for all kinds in one process.
	KindMaxAckPending int
	// Stall ends a kind's measurement, as incomplete, when neither EVENTS
	// nor the consumer moved for this long. Default 30s.
	Stall time.Duration

	// Edge starts the edge for the end-to-end measurement; nil skips it.
	Edge StartEdge
	// Rate is how many events a second the end-to-end load sends, on a
	// fixed schedule. Default 500.
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
	// events to arrive in EVENTS. Default 30s.
	Drain time.Duration

	// StoreDir is where the JetStream store is made, in a fresh directory
	// removed afterwards. Default: the system's temporary directory.
	StoreDir string
	// CPUProfile, when set, receives a CPU profile (pprof) of the first
	// kind's measurement alone: from the normalizer's start to its last
	// ack, without the fill before it.
	CPUProfile io.Writer
	// Progress, when set, gets a line as each step starts.
	Progress io.Writer
	// Logger receives the normalizer's and nats-server's log lines.
	// Default: none.
	Logger *zap.Logger
}

// measuredKinds is every kind that has events: "unknown" is only ever
// dead-lettered.
var measuredKinds = slices.DeleteFunc(slices.Clone(envelope.Kinds), func(k string) bool { return k == envelope.KindUnknown })

func (o *Options) setDefaults() {
	if len(o.Kinds) == 0 {
		o.Kinds = measuredKinds
	}
	if o.KindEvents == 0 {
		o.KindEvents = 2000
	}
	if o.Stall == 0 {
		o.Stall = 30 * time.Second
	}
	if o.Rate == 0 {
		o.Rate = 500
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
	case o.Rate < 0:
		return fmt.Errorf("bench: Rate %g is negative", o.Rate)
	case o.Workers < 0:
		return fmt.Errorf("bench: Workers %d is negative", o.Workers)
	case o.Duration < 0:
		return fmt.Errorf("bench: Duration %s is negative", o.Duration)
	}
	if o.KindEvents < 0 {
		return nil
	}
	for _, k := range o.Kinds {
		if !slices.Contains(measuredKinds, k) {
			return fmt.Errorf("bench: kind %q cannot be measured (want some of %v)", k, measuredKinds)
		}
		if !slices.ContainsFunc(o.Samples, func(s Sample) bool { return s.Kind == k }) {
			return fmt.Errorf("bench: no sample of kind %s", k)
		}
	}
	return nil
}

// Run starts JetStream in this process, measures each kind's consumer on
// one core, then the pipeline end to end, and returns the figures. The
// store and the server are gone when it returns.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// A copy: one embedded server holds one replica, whatever production uses.
	cfg := *o.Config
	cfg.NATS.Replicas = 1

	// Always a fresh store: a reused one could hold an interrupted run's
	// backlog, which the next run would measure as its own.
	dir, err := os.MkdirTemp(o.StoreDir, "leadstream-bench-normalizer-")
	if err != nil {
		return nil, fmt.Errorf("bench: store dir: %w", err)
	}
	defer os.RemoveAll(dir)
	progress(o.Progress, "starting JetStream (file store %s, fsync before every ack)", dir)
	ns, err := embedded.Start(embedded.Options{Listen: "127.0.0.1:0", StoreDir: dir, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	url := ns.ClientURL()

	nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "leadstream-bench-normalizer", Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer nc.Close()
	if err := streams.Ensure(ctx, js, streams.RawConfig(&cfg)); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}

	kcfg := cfg
	if o.KindMaxAckPending > 0 {
		kcfg.Normalizer.MaxAckPending, kcfg.Normalizer.Subscribers = o.KindMaxAckPending, o.KindMaxAckPending
	}
	rep := &Report{
		CPUs:          runtime.NumCPU(),
		GOMAXPROCS:    runtime.GOMAXPROCS(0),
		Subscribers:   kcfg.Normalizer.Subscribers,
		MaxAckPending: kcfg.Normalizer.MaxAckPending,
	}
	if o.KindEvents > 0 {
		for i, kind := range o.Kinds {
			var samples []Sample
			for _, s := range o.Samples {
				if s.Kind == kind {
					samples = append(samples, s)
				}
			}
			var profile io.Writer
			if i == 0 {
				profile = o.CPUProfile
			}
			res, err := runKind(ctx, &o, &kcfg, url, js, kind, samples, profile)
			if err != nil {
				return nil, err
			}
			rep.Kinds = append(rep.Kinds, res)
		}
	}
	if o.Edge != nil {
		e2e, err := runEndToEnd(ctx, &o, &cfg, url, js)
		if err != nil {
			return nil, err
		}
		rep.EndToEnd = e2e
	}
	return rep, nil
}

// streamState is a stream's message count and the time of its last message.
func streamState(ctx context.Context, js jetstream.JetStream, name string) (uint64, time.Time, error) {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("bench: stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("bench: stream %s: %w", name, err)
	}
	return info.State.Msgs, info.State.LastTime, nil
}

func progress(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "bench: normalizer: "+format+"\n", a...)
}
