package normalizer

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	messages    *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	pending     *prometheus.GaugeVec
	ackPending  *prometheus.GaugeVec
	dlqDepth    *prometheus.GaugeVec
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
	}
	reg.MustRegister(m.messages, m.deadLetters, m.pending, m.ackPending, m.dlqDepth)
	return m
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
