package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/cmd/leadstream/pipeline"
	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	dbench "github.com/leadstream/leadstream/services/dispatcher/bench"
	"github.com/leadstream/leadstream/services/edge/simulate"
	"github.com/leadstream/leadstream/services/normalizer"
	nbench "github.com/leadstream/leadstream/services/normalizer/bench"
)

// runNormalizer measures and prints the normalizer's section: each kind's
// consumer alone, kindsEvents envelopes each, and the pipeline end to end
// at rate, each part skipped when its figure is not positive.
func runNormalizer(ctx context.Context, kit benchkit.Options, signer *simulate.Signer, samples []sample, kindsEvents int, rate float64) error {
	kit.Rate = rate
	o := nbench.Options{
		Options:    kit,
		Samples:    normalizerSamples(samples),
		KindEvents: max(kindsEvents, -1),
		// Each kind alone, as a normalizer process per kind runs with the
		// default; the end-to-end part runs every kind in one process with
		// the config's settings, as `leadstream run` does.
		KindMaxAckPending: config.DefaultNormalizerMaxAckPending,
	}
	if rate > 0 {
		o.Edge = edgeFor(kit, signer, samples, false, func(e *servedEdge) nbench.Edge { return normalizerEdge{e} })
	}
	rep, err := nbench.Run(ctx, o)
	return printSection(ctx, rep, err)
}

// runDispatcher measures and prints the dispatcher's section: deliveries
// of events filled beforehand, and the pipeline end to end at rate, each
// part skipped when its figure is not positive. The end-to-end load leaves
// out the samples the dispatcher could only hold back: see
// dispatchSamples.
func runDispatcher(ctx context.Context, kit benchkit.Options, signer *simulate.Signer, samples []sample, events int, rate float64) error {
	kit.Rate = rate
	o := dbench.Options{Options: kit, Events: max(events, -1)}
	if rate > 0 {
		load, left := dispatchSamples(samples)
		if len(load) == 0 {
			return errors.New("no sample left for the dispatcher's end-to-end load")
		}
		// With the causal aggregates spread over the rounds of the load:
		// see spreadAggregates.
		o.Edge = edgeFor(kit, signer, load, true, func(e *servedEdge) dbench.Edge { return dispatcherEdge{e} })
		o.Normalizer = startNormalizer(kit.Logger)
		o.Samples = describeDispatchLoad(load, left, kit.Config.Dispatcher.MaxPark.Duration)
	}
	rep, err := dbench.Run(ctx, o)
	return printSection(ctx, rep, err)
}

// printSection prints a section's report rep, which its Run returned with
// err, after a blank line.
func printSection(ctx context.Context, rep interface{ Print(io.Writer) }, err error) error {
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil:
		return errInterrupted
	}
	fmt.Println()
	rep.Print(os.Stdout)
	return nil
}

// startNormalizer starts a normalizer for every kind, as `leadstream run`
// does, on the dispatcher bench's JetStream.
func startNormalizer(log *zap.Logger) dbench.StartNormalizer {
	return func(ctx context.Context, cfg *config.Config, url string, js jetstream.JetStream) (dbench.Service, error) {
		if err := normalizer.Provision(ctx, js, cfg, nil); err != nil {
			return nil, err
		}
		p, err := pipeline.New(ctx, pipeline.Options{Config: cfg, Services: pipeline.Services{Normalizer: true},
			Conn: pipeline.Conn{URL: url, JetStream: js}, Logger: log})
		if err != nil {
			return nil, err
		}
		return consumers{p}, nil
	}
}

// consumers runs a pipeline without an edge: Run closes what it ran.
type consumers struct{ p *pipeline.Pipeline }

func (c consumers) Run(ctx context.Context) error { return c.p.Run(ctx, nil) }
