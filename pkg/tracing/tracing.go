// Package tracing carries a webhook's trace (W3C Trace Context) from the
// edge through RAW, the normalizer and EVENTS to the dispatcher and the LMS
// request. The trace travels in NATS message headers under the W3C's own
// lowercase names, traceparent and tracestate, so that consumers in any
// language find them; nothing is traced, and nothing costs, until a tracer
// provider is installed (Setup, from the config's tracing section).
package tracing

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of leadstream's spans.
const Name = "github.com/leadstream/leadstream"

// Header adapts nats.Header to OpenTelemetry's TextMapCarrier, keeping
// keys as given (the W3C propagator's are lowercase). propagation's
// HeaderCarrier would canonicalize them to Traceparent.
type Header nats.Header

// Get returns the first value of key.
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key.
func (h Header) Set(key, value string) { h[key] = []string{value} }

// Keys lists the keys.
func (h Header) Keys() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, k)
	}
	return out
}

// propagator is W3C Trace Context, whatever the global one is.
var propagator = propagation.TraceContext{}

// Inject writes the span context of ctx into h (nothing without one).
func Inject(ctx context.Context, h nats.Header) { propagator.Inject(ctx, Header(h)) }

// Extract returns ctx with the remote span context h carries, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return propagator.Extract(ctx, Header(h))
}

// Tracer is leadstream's tracer from the global provider: a no-op until
// Setup (or a test) installs one.
func Tracer() trace.Tracer { return otel.Tracer(Name) }

// Remote is the span context h carries (invalid when none).
func Remote(h nats.Header) trace.SpanContext {
	return trace.SpanContextFromContext(Extract(context.Background(), h))
}

// Start starts a span for work on a message whose headers h carry the
// trace of the webhook: a child of it the first time, and linked to it
// (a new trace of its own) when redelivered or replayed, which is not
// part of the original request's work.
func Start(ctx context.Context, name string, h nats.Header, again bool, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	remote := Remote(h)
	if remote.IsValid() {
		if again {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: remote}), trace.WithNewRoot())
		} else {
			ctx = trace.ContextWithRemoteSpanContext(ctx, remote)
		}
	}
	return Tracer().Start(ctx, name, opts...)
}
