package normalizer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/jsbatch"
)

type metrics struct {
	messages    *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	pending     *prometheus.GaugeVec
	ackPending  *prometheus.GaugeVec
	dlqDepth    *prometheus.GaugeVec
	batch       *prometheus.HistogramVec
	commit      *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_normalizer_messages_total",
			Help: "RAW messages handled, by kind and outcome (normalized, deduplicated, dead_lettered, failed).",
		}, []string{"kind", "outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_normalizer_dead_letters_total",
			Help: "RAW messages dead-lettered, by kind and reason.",
		}, []string{"kind", "reason"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_normalizer_consumer_pending",
			Help: "RAW messages not yet delivered to a kind's consumer (lag).",
		}, []string{"kind"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_normalizer_consumer_ack_pending",
			Help: "RAW messages delivered to a kind's consumer and not yet acked.",
		}, []string{"kind"}),
		dlqDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_normalizer_dlq_depth",
			Help: "Dead letters of a kind waiting in DLQ (dlq.normalize.<kind>) for a replay or drop.",
		}, []string{"kind"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "leadstream_normalizer_commit_batch_size",
			Help:    "Writes committed together (group commit), by stream (events, dedupe) and mode: one atomic batch, or individual publishes in flight together.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000},
		}, []string{"stream", "mode"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "leadstream_normalizer_commit_seconds",
			Help:    "Time from a group commit's first publish to its last acknowledgement, by stream (events, dedupe) and mode.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}, []string{"stream", "mode"}),
	}
	reg.MustRegister(m.messages, m.deadLetters, m.pending, m.ackPending, m.dlqDepth, m.batch, m.commit)
	return m
}

// observeCommit records one group commit into stream ("events" or
// "dedupe").
func (m *metrics) observeCommit(stream string, c jsbatch.Commit) {
	mode := "individual"
	if c.Atomic {
		mode = "atomic"
	}
	m.batch.WithLabelValues(stream, mode).Observe(float64(c.Size))
	m.commit.WithLabelValues(stream, mode).Observe(c.Took.Seconds())
}

// deadLetterReasons are the reason labels of dead_letters_total, and
// messageOutcomes the outcome labels of messages_total: both are created at
// 0 for every kind, so that an alert sees the first increment.
var (
	deadLetterReasons = []string{"bad_envelope", "unparseable", "unsupported_type", "missing_field", "kind_mismatch",
		"unknown", "unmarshalable", "too_large", "retries_exhausted", "panic"}
	messageOutcomes = []string{"normalized", "deduplicated", "dead_lettered", "failed"}
)

// initKind creates kind's series at 0.
func (m *metrics) initKind(kind string) {
	for _, r := range deadLetterReasons {
		m.deadLetters.WithLabelValues(kind, r)
	}
	for _, o := range messageOutcomes {
		m.messages.WithLabelValues(kind, o)
	}
}
