package dispatcher

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/natstest"
)

// TestBreakerAndDLQDepthGauges: an LMS that answers 500 opens its adapter's
// breaker, and one that answers 400 fills its adapter's DLQ; the gauges
// say so, and the other adapter's stay at 0.
func TestBreakerAndDLQDepthGauges(t *testing.T) {
	down, rejecting := newFakeLMS(t), newFakeLMS(t)
	down.setRespond(func(received) int { return http.StatusInternalServerError })
	rejecting.setRespond(func(received) int { return http.StatusBadRequest })
	f := newFixture(t, adapterYAML("down", down.srv.URL, "breaker_failures: 1, breaker_cooldown: 1h, backoff_initial: 1h, backoff_max: 1h")+
		adapterYAML("rejecting", rejecting.srv.URL, ""))
	reg := prometheus.NewRegistry()
	f.provision()
	s, err := New(context.Background(), Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	f.publish(event("lead-1", "lead.created", "conv/1", t0))
	f.publish(event("lead-2", "lead.created", "conv/2", t0))
	gauge := func(name, adapter string) float64 {
		return testutil.ToFloat64(map[string]*prometheus.GaugeVec{"breaker": s.m.breaker, "dlq": s.m.dlqDepth}[name].WithLabelValues(adapter))
	}
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if b := gauge("breaker", "down"); b != 2 {
			return fmt.Errorf("breaker_state{adapter=down} = %v, want 2 (open)", b)
		}
		if d := gauge("dlq", "rejecting"); d != 2 {
			return fmt.Errorf("dlq_depth{adapter=rejecting} = %v, want 2", d)
		}
		return nil
	})
	if b, d := gauge("breaker", "rejecting"), gauge("dlq", "down"); b != 0 || d != 0 {
		t.Fatalf("rejecting's breaker_state = %v, down's dlq_depth = %v; want 0 and 0 (a 400 proves the LMS is up; retries are not dead letters)", b, d)
	}
}

// TestFailureCountersStartAtZero: every dead-letter reason and delivery
// outcome of a configured adapter is exposed at 0 before anything happened,
// so that a rate() alert sees the first increment.
func TestFailureCountersStartAtZero(t *testing.T) {
	f := newFixture(t, adapterYAML("crm", "http://127.0.0.1:1", ""))
	reg := prometheus.NewRegistry()
	f.provision()
	if _, err := New(context.Background(), Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop(), Registry: reg}); err != nil {
		t.Fatal(err)
	}
	n, err := testutil.GatherAndCount(reg, "leadstream_dispatcher_dead_letters_total", "leadstream_dispatcher_deliveries_total")
	if err != nil {
		t.Fatal(err)
	}
	if want := len(deadLetterReasons) + len(deliveryOutcomes); n != want {
		t.Fatalf("%d series exposed before the first event, want %d", n, want)
	}
}
