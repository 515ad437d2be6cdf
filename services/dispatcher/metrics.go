package dispatcher

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	deliveries   *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	attempts     *prometheus.CounterVec
	retryBacklog *prometheus.GaugeVec
	parked       *prometheus.GaugeVec
	oldestParked *prometheus.GaugeVec
	endToEnd     *prometheus.HistogramVec
	projected    *prometheus.CounterVec
	breaker      *prometheus.GaugeVec
	dlqDepth     *prometheus.GaugeVec
	// consumerErrors counts what nats.go reports while consuming, by
	// durable: missed heartbeats, a deleted consumer, leader changes.
	consumerErrors *prometheus.CounterVec
	// partitions is how many of an adapter's partitions this process owns.
	partitions *prometheus.GaugeVec
	// groupBacklog is how many events wait in an adapter's group stream.
	groupBacklog *prometheus.GaugeVec
	// refilled counts the events read back from EVENTS into the queues of
	// aggregates in overflow (overflow.go).
	refilled *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_dispatcher_deliveries_total",
			Help: "Delivery outcomes by adapter: delivered, delivered_orphan, retry, dead_lettered.",
		}, []string{"adapter", "outcome"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_dispatcher_dead_letters_total",
			Help: "Events dead-lettered by adapter and reason (terminal, retries_exhausted, event_missing, undecodable).",
		}, []string{"adapter", "reason"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_dispatcher_attempts_total",
			Help: "Delivery attempts by adapter.",
		}, []string{"adapter"}),
		retryBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_dispatcher_retry_backlog",
			Help: "Aggregates whose next delivery is waiting for a retry, by adapter.",
		}, []string{"adapter"}),
		parked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_dispatcher_parked",
			Help: "Events parked until their causal prerequisite is delivered, by adapter.",
		}, []string{"adapter"}),
		oldestParked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_dispatcher_oldest_parked_seconds",
			Help: "Age of the oldest parked event, by adapter.",
		}, []string{"adapter"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "leadstream_dispatcher_end_to_end_seconds",
			Help:    "From the edge receiving a webhook to the LMS answering 2xx, by adapter.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}, []string{"adapter"}),
		projected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_dispatcher_projected_total",
			Help: "Events merged into the leads projection, by outcome.",
		}, []string{"outcome"}),
		breaker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_dispatcher_breaker_state",
			Help: "Circuit breaker of an adapter's LMS: 0 closed, 1 half-open (one probe), 2 open (deliveries fail fast).",
		}, []string{"adapter"}),
		dlqDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_dispatcher_dlq_depth",
			Help: "Dead letters of an adapter waiting in DLQ (dlq.deliver.<adapter>) for a replay or drop.",
		}, []string{"adapter"}),
		consumerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_dispatcher_consumer_errors_total",
			Help: "Errors reported while consuming, by consumer (dispatch-<adapter>: this member's consumer in the adapter's group was missing and it joined again; projection-leads: missed heartbeats, a deleted consumer, leader changes).",
		}, []string{"consumer"}),
		partitions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_dispatcher_partitions",
			Help: "Partitions of an adapter's consumer group this process delivers (summed over the replicas: dispatcher.partitions).",
		}, []string{"adapter"}),
		groupBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "leadstream_dispatcher_group_backlog",
			Help: "Events waiting in an adapter's consumer group stream (EVENTS-dispatch-<adapter>) to be taken by a member: the group's lag, which KEDA scales the adapter's dispatchers on.",
		}, []string{"adapter"}),
		refilled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_dispatcher_overflow_refilled_total",
			Help: "Events read back from EVENTS into the queue of an aggregate whose queue was full (more than 256 events waiting): its later events wait in EVENTS, not in its ordering state.",
		}, []string{"adapter"}),
	}
	reg.MustRegister(m.deliveries, m.deadLetters, m.attempts, m.retryBacklog, m.parked, m.oldestParked, m.endToEnd, m.projected, m.breaker, m.dlqDepth, m.consumerErrors, m.partitions, m.groupBacklog, m.refilled)
	return m
}

// deadLetterReasons are the reason labels of dead_letters_total, and
// deliveryOutcomes the outcome labels of deliveries_total: both are created
// at 0 for every adapter, so that an alert sees the first increment.
var (
	deadLetterReasons = []string{"terminal", "retries_exhausted", "event_missing", "undecodable", "no_aggregate", "invalid_key", "too_large"}
	deliveryOutcomes  = []string{"delivered", "delivered_orphan", "retry", "dead_lettered"}
)

// initAdapter creates adapter's series at 0.
func (m *metrics) initAdapter(adapter string) {
	for _, r := range deadLetterReasons {
		m.deadLetters.WithLabelValues(adapter, r)
	}
	for _, o := range deliveryOutcomes {
		m.deliveries.WithLabelValues(adapter, o)
	}
	m.attempts.WithLabelValues(adapter)
	m.breaker.WithLabelValues(adapter)
	m.dlqDepth.WithLabelValues(adapter)
	m.partitions.WithLabelValues(adapter)
	m.groupBacklog.WithLabelValues(adapter)
	m.refilled.WithLabelValues(adapter)
}

// initConsumer creates consumer's error counter at 0.
func (m *metrics) initConsumer(consumer string) {
	m.consumerErrors.WithLabelValues(consumer)
}
