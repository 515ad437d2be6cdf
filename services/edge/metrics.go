package edge

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/jsbatch"
)

// Request outcomes, the `outcome` label of leadstream_edge_requests_total.
const (
	outcomeAccepted     = "accepted"
	outcomeDuplicate    = "duplicate"
	outcomeUnauthorized = "unauthorized"
	outcomeNotFound     = "not_found"
	outcomeTooLarge     = "too_large"
	outcomeBadRequest   = "bad_request"
	outcomeUnavailable  = "unavailable"
	outcomeOverloaded   = "overloaded"
	// outcomeReadingOverloaded: the reading budget was taken (429).
	outcomeReadingOverloaded = "reading_overloaded"
	// outcomeReadTimeout: the body did not arrive within body_read_timeout (408).
	outcomeReadTimeout = "read_timeout"
	// outcomeURITooLong: the request target is over its bound (414).
	outcomeURITooLong = "uri_too_long"
)

// outcomes lists every outcome a known source can have, so that its series
// exist at 0 and an alert sees the first increment.
var outcomes = []string{outcomeAccepted, outcomeDuplicate, outcomeUnauthorized, outcomeTooLarge, outcomeBadRequest,
	outcomeUnavailable, outcomeOverloaded, outcomeReadingOverloaded, outcomeReadTimeout, outcomeURITooLong}

type metrics struct {
	requests    *prometheus.CounterVec
	verifyFails *prometheus.CounterVec
	publish     prometheus.Histogram
	batch       *prometheus.HistogramVec
	commit      *prometheus.HistogramVec
	threshold   prometheus.Gauge
	logDropped  prometheus.Counter
}

// newMetrics registers the edge's metrics with reg. The gauges of what the
// edge holds read its counters when scraped: inFlight (requests holding a
// slot), readers (bodies being read) and readingBytes (their reservation).
func newMetrics(reg prometheus.Registerer, inFlight, readers, readingBytes *atomic.Int64) *metrics {
	load := func(v *atomic.Int64) func() float64 { return func() float64 { return float64(v.Load()) } }
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_edge_requests_total",
			Help: "Webhook requests by source and outcome.",
		}, []string{"source", "outcome"}),
		verifyFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leadstream_edge_verify_failures_total",
			Help: "Requests that failed authenticity checks, by source and reason.",
		}, []string{"source", "reason"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "leadstream_edge_publish_seconds",
			Help:    "Time from handing a request to JetStream until its PubAck (or failure).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "leadstream_edge_commit_batch_size",
			Help:    "Requests committed to RAW together (group commit), by mode: one atomic batch, or individual publishes in flight together.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000},
		}, []string{"mode"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "leadstream_edge_commit_seconds",
			Help:    "Time from a group commit's first publish to its last acknowledgement, by mode.",
			Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
		}, []string{"mode"}),
		threshold: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "leadstream_edge_commit_atomic_threshold",
			Help: "Smallest group of requests the edge now commits as one atomic batch, from its measured costs (0: none).",
		}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "leadstream_edge_rejection_log_lines_dropped_total",
			Help: "Log lines about refused requests left out by sampling (the request counters count every one).",
		}),
	}
	reg.MustRegister(m.requests, m.verifyFails, m.publish, m.batch, m.commit, m.threshold, m.logDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "leadstream_edge_in_flight",
			Help: "Webhook requests being verified or committed to RAW now (at most max_in_flight).",
		}, load(inFlight)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "leadstream_edge_reading",
			Help: "Webhook requests whose body is being read now.",
		}, load(readers)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "leadstream_edge_reading_bytes",
			Help: "Bytes of the reading budget (max_reading_bytes) reserved by bodies being read now.",
		}, load(readingBytes)))
	return m
}

// observeCommit records one group commit of the edge's publisher.
func (m *metrics) observeCommit(c jsbatch.Commit) {
	mode := "individual"
	if c.Atomic {
		mode = "atomic"
	}
	m.batch.WithLabelValues(mode).Observe(float64(c.Size))
	m.commit.WithLabelValues(mode).Observe(c.Took.Seconds())
	m.threshold.Set(float64(c.Threshold))
}
