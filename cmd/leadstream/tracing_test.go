package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/cmd/leadstream/pipeline"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/services/edge/verify"
)

// TestOneTraceEdgeToLMS: a webhook that arrives with the provider's
// traceparent makes one trace: the edge's server span under the provider's
// span, the normalizer's span under the edge's (through RAW's headers), the
// dispatcher's delivery under the normalizer's (through EVENTS'), and the
// LMS request carries a traceparent of the same trace.
func TestOneTraceEdgeToLMS(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })

	var (
		mu      sync.Mutex
		lmsSeen []string
	)
	lms := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lmsSeen = append(lmsSeen, r.Header.Get("traceparent"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer lms.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
sources:
  - {name: api, provider: marktplaats-api, tenant: t1, secrets: [s3cr3t]}
adapters:
  - {name: crm, type: webhook, url: %q, secret: %q}
`, lms.URL, lmsSecret)), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := provision(ctx, js, cfg, zap.NewNop(), io.Discard); err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(ctx, pipeline.Options{Config: cfg, Services: pipeline.All, Conn: pipeline.Conn{URL: ns.ClientURL(), JetStream: js}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Edge)
	defer srv.Close()
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(ctx, nil) })
	defer func() { cancel(); wg.Wait() }()

	const providerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	body := `{"id":"traced-1","eventType":"BidPlacedEvent","created":"2026-11-26T10:00:00Z","eventData":{"advertisementItemId":"m1"},"_embedded":{"mp:bid":{"id":1,"amount":500}}}`
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/api", strings.NewReader(body))
	req.Header.Set(config.HeaderEcgSignature, verify.HMACHex([]byte("s3cr3t"), []byte(body)))
	req.Header.Set("traceparent", "00-"+providerTrace+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("edge answered %d", resp.StatusCode)
	}

	spans := map[string]sdktrace.ReadOnlySpan{}
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		for _, s := range rec.Ended() {
			spans[s.Name()] = s
		}
		mu.Lock()
		defer mu.Unlock()
		if len(lmsSeen) == 0 || spans["deliver crm"] == nil {
			return fmt.Errorf("spans %d, LMS requests %d", len(spans), len(lmsSeen))
		}
		return nil
	})
	edgeSpan, norm, deliver := spans["POST /hooks/{source}"], spans["normalize bid"], spans["deliver crm"]
	if edgeSpan == nil || norm == nil {
		t.Fatalf("spans %v", spans)
	}
	for _, s := range []sdktrace.ReadOnlySpan{edgeSpan, norm, deliver} {
		if s.SpanContext().TraceID().String() != providerTrace {
			t.Errorf("span %q in trace %s, want the provider's %s", s.Name(), s.SpanContext().TraceID(), providerTrace)
		}
	}
	if edgeSpan.SpanKind() != trace.SpanKindServer || edgeSpan.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("edge span: kind %v, parent %s", edgeSpan.SpanKind(), edgeSpan.Parent().SpanID())
	}
	if norm.Parent().SpanID() != edgeSpan.SpanContext().SpanID() || deliver.Parent().SpanID() != norm.SpanContext().SpanID() {
		t.Errorf("not one chain: normalize's parent %s (edge %s), deliver's parent %s (normalize %s)",
			norm.Parent().SpanID(), edgeSpan.SpanContext().SpanID(), deliver.Parent().SpanID(), norm.SpanContext().SpanID())
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(lmsSeen[0], "00-"+providerTrace+"-"+deliver.SpanContext().SpanID().String()) {
		t.Errorf("the LMS request's traceparent %q, want the delivery span's %s in trace %s", lmsSeen[0], deliver.SpanContext().SpanID(), providerTrace)
	}
}

// TestTracingExportsOverOTLP: with tracing.otlp_endpoint set, spans reach
// the collector (here a fake OTLP/HTTP one) by the time the provider is
// stopped; without it nothing is installed.
func TestTracingExportsOverOTLP(t *testing.T) {
	t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
	var got sync.Map
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.Path, true)
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	one := 1.0
	stop, err := setupTracing(context.Background(), config.Tracing{OTLPEndpoint: strings.TrimPrefix(collector.URL, "http://"), Protocol: "http", Insecure: true, SampleRatio: &one}, "leadstream-test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := otel.Tracer("test").Start(context.Background(), "one")
	span.End()
	stop()
	if _, ok := got.Load("/v1/traces"); !ok {
		t.Fatal("no OTLP export reached the collector")
	}

	otel.SetTracerProvider(noop.NewTracerProvider())
	stop, err = setupTracing(context.Background(), config.Tracing{}, "leadstream-test")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if _, ok := otel.GetTracerProvider().(noop.TracerProvider); !ok {
		t.Fatalf("without an endpoint a provider was installed: %T", otel.GetTracerProvider())
	}
}
