// Package pipeline wires leadstream's services: the edge, the normalizer
// and the dispatcher, on connections to one JetStream. `leadstream run` and
// the single-service commands, the bench harness and the component tests
// all build the pipeline with New, so what they run is wired alike.
//
// What belongs to a process (the embedded server, the connection,
// provisioning, signals, the admin port, the demo LMS) stays with its
// caller.
package pipeline

import (
	"context"
	"errors"
	"net"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/services/dispatcher"
	"github.com/leadstream/leadstream/services/edge"
	"github.com/leadstream/leadstream/services/normalizer"
)

// Service names, as Options.Conn is asked for them.
const (
	Edge       = "edge"
	Normalizer = "normalizer"
	Dispatcher = "dispatcher"
)

// Services says which parts of the pipeline to build.
type Services struct {
	Edge       bool
	Normalizer bool
	Dispatcher bool
	// Kinds limits the normalizer; empty is all.
	Kinds []string
	// Adapters limits the dispatcher; empty is all, and the leads
	// projection with them.
	Adapters []string
	// ProjectionOnly runs the dispatcher's leads projection and no adapter.
	ProjectionOnly bool
}

// All is the whole pipeline, as `leadstream run` has it.
var All = Services{Edge: true, Normalizer: true, Dispatcher: true}

// Conn is how one service reaches NATS: URL is the normalizer's, for the
// connection watermill makes of its own.
type Conn struct {
	URL       string
	JetStream jetstream.JetStream
}

// Options configure New.
type Options struct {
	Config   *config.Config
	Services Services
	// Conn is the connection of every service, unless ConnOf is set.
	Conn Conn
	// ConnOf, when set, gives each service its own connection (its own
	// NATS user, as a deployment has them); it is asked for Edge,
	// Normalizer or Dispatcher.
	ConnOf func(service string) Conn
	// Logger is named per service; nil logs nothing.
	Logger *zap.Logger
	// Registry takes the services' metrics (the edge serves it on its
	// /metrics); nil makes a private one.
	Registry *prometheus.Registry
}

// Pipeline is the services New built; the ones not asked for are nil.
type Pipeline struct {
	Edge       *edge.Server
	Normalizer *normalizer.Service
	Dispatcher *dispatcher.Service
}

// New builds the services o asks for. ctx bounds what they set up
// (consumers, buckets), not their run.
func New(ctx context.Context, o Options) (*Pipeline, error) {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	conn := func(service string) Conn {
		if o.ConnOf != nil {
			return o.ConnOf(service)
		}
		return o.Conn
	}
	s, p := o.Services, &Pipeline{}
	if s.Normalizer {
		c := conn(Normalizer)
		n, err := normalizer.New(ctx, normalizer.Options{Config: o.Config, URL: c.URL, JetStream: c.JetStream,
			Logger: log.Named(Normalizer), Registry: o.Registry, Kinds: s.Kinds})
		if err != nil {
			return nil, err
		}
		p.Normalizer = n
	}
	if s.Dispatcher {
		d, err := dispatcher.New(ctx, dispatcher.Options{Config: o.Config, JetStream: conn(Dispatcher).JetStream,
			Logger: log.Named(Dispatcher), Registry: o.Registry,
			Adapters: s.Adapters, NoAdapters: s.ProjectionOnly, Projection: len(s.Adapters) == 0})
		if err != nil {
			p.Close()
			return nil, err
		}
		p.Dispatcher = d
	}
	if s.Edge {
		e, err := edge.New(edge.Options{Config: o.Config, JetStream: conn(Edge).JetStream, Logger: log.Named(Edge), Registry: o.Registry})
		if err != nil {
			p.Close()
			return nil, err
		}
		p.Edge = e
	}
	return p, nil
}

// Run runs the services until ctx ends or one of them fails, then stops
// them all: the edge answers what it is reading and takes no more, the
// consumers finish what they hold. The edge serves on ln; with ln nil it
// is only a handler (a test serves it with httptest). Run closes what it
// runs.
func (p *Pipeline) Run(ctx context.Context, ln net.Listener) error {
	var g run.Group
	add := func(f func(context.Context) error) {
		ctx, cancel := context.WithCancel(ctx)
		g.Add(func() error { return f(ctx) }, func(error) { cancel() })
	}
	if p.Normalizer != nil {
		add(func(ctx context.Context) error { defer p.Normalizer.Close(); return p.Normalizer.Run(ctx) })
	}
	if p.Dispatcher != nil {
		add(p.Dispatcher.Run)
	}
	if p.Edge != nil && ln != nil {
		add(func(ctx context.Context) error { return p.Edge.Serve(ctx, ln) })
	}
	// The group ends when its first actor does: this one, when ctx ends.
	add(func(ctx context.Context) error { <-ctx.Done(); return nil })
	err := g.Run()
	if p.Edge != nil && ln == nil {
		p.Edge.Close()
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// Close releases what New made, for a Pipeline that is not run.
func (p *Pipeline) Close() {
	if p.Normalizer != nil {
		p.Normalizer.Close()
	}
	if p.Dispatcher != nil {
		p.Dispatcher.Close()
	}
	if p.Edge != nil {
		p.Edge.Close()
	}
}
