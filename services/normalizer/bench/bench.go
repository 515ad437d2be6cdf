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
// (StartEdge). The harness, cmd/bench, passes the real ones.
package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/envelope"
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
	// Options are the settings every bench takes. Duration, Warmup,
	// Concurrency (the sends in flight at most, default 8), Rate (default
	// 500 a second) and Drain (until the events are in EVENTS) are the
	// end-to-end load's; Stall is a kind's, when neither EVENTS nor the
	// consumer moved; the JetStream store is made in a fresh directory
	// under StoreDir; the CPUProfile is of the first kind's measurement
	// alone: from the normalizer's start to its last ack, without the fill
	// before it.
	benchkit.Options

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

	// Edge starts the edge for the end-to-end measurement; nil skips it.
	Edge StartEdge
}

// measuredKinds is every kind that has events: "unknown" is only ever
// dead-lettered.
var measuredKinds = slices.DeleteFunc(slices.Clone(envelope.Kinds), func(k string) bool { return k == envelope.KindUnknown })

func (o *Options) setDefaults() {
	if o.Rate == 0 {
		o.Rate = 500
	}
	o.Options.SetDefaults()
	if len(o.Kinds) == 0 {
		o.Kinds = measuredKinds
	}
	if o.KindEvents == 0 {
		o.KindEvents = 2000
	}
}

// Validate reports the first option Run cannot work with.
func (o *Options) Validate() error {
	if err := o.Options.Validate(); err != nil || o.KindEvents < 0 {
		return err
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
	cfg := o.LocalConfig()
	j, err := benchkit.StartJetStream(&o.Options, "normalizer")
	if err != nil {
		return nil, err
	}
	defer j.Close()
	if err := streams.Ensure(ctx, j.JS, streams.RawConfig(&cfg)); err != nil {
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
			res, err := runKind(ctx, &o, &kcfg, j, kind, samples, profile)
			if err != nil {
				return nil, err
			}
			rep.Kinds = append(rep.Kinds, res)
		}
	}
	if o.Edge != nil {
		e2e, err := runEndToEnd(ctx, &o, &cfg, j)
		if err != nil {
			return nil, err
		}
		rep.EndToEnd = e2e
	}
	return rep, nil
}
