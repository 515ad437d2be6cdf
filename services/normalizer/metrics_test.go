package normalizer

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// TestDLQDepthGauge: a message that cannot be mapped is a dead letter of its
// kind, and the kind's DLQ depth gauge counts it; the other kinds stay 0.
func TestDLQDepthGauge(t *testing.T) {
	f := newFixture(t, nil)
	s := f.start()
	doc := rawOf(t, samples[7], "")
	f.publishRaw(doc, "")
	f.waitCount(streams.DLQ, 1)
	natstest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		if got := testutil.ToFloat64(s.metrics.dlqDepth.WithLabelValues(doc.Kind)); got != 1 {
			return fmt.Errorf("dlq_depth{kind=%s} = %v, want 1", doc.Kind, got)
		}
		return nil
	})
	for _, kind := range envelope.Kinds {
		if got := testutil.ToFloat64(s.metrics.dlqDepth.WithLabelValues(kind)); kind != doc.Kind && got != 0 {
			t.Errorf("dlq_depth{kind=%s} = %v, want 0", kind, got)
		}
	}
}

// TestFailureCountersStartAtZero: every dead-letter reason of every kind is
// exposed at 0 once the consumers run.
func TestFailureCountersStartAtZero(t *testing.T) {
	f := newFixture(t, nil)
	s := f.start()
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := testutil.CollectAndCount(s.metrics.deadLetters); n != len(envelope.Kinds)*len(deadLetterReasons) {
			return fmt.Errorf("%d dead-letter series, want %d", n, len(envelope.Kinds)*len(deadLetterReasons))
		}
		return nil
	})
}
