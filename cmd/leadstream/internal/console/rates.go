package console

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The counters and gauges the console reads from the process's registry,
// with the labels it reads them by (the edge's and the dispatcher's
// metrics.go name them).
const (
	mRequests     = "leadstream_edge_requests_total"         // source, outcome
	mVerifyFails  = "leadstream_edge_verify_failures_total"  // source, reason
	mDeliveries   = "leadstream_dispatcher_deliveries_total" // adapter, outcome
	mParked       = "leadstream_dispatcher_parked"           // adapter
	mOldestParked = "leadstream_dispatcher_oldest_parked_seconds"
	mRetrying     = "leadstream_dispatcher_retry_backlog"
	mBreaker      = "leadstream_dispatcher_breaker_state"
)

// counterLabels are the counters kept in the ring, with their two labels.
var counterLabels = map[string][2]string{
	mRequests:    {"source", "outcome"},
	mVerifyFails: {"source", "reason"},
	mDeliveries:  {"adapter", "outcome"},
}

// series is one counter series: its family and its two label values.
type series struct{ family, a, b string }

type snapshot struct {
	at     time.Time
	values map[series]float64
}

// window is how far back "the last hour" looks.
const window = time.Hour

// rates keeps a per-minute ring of the process's counters, so that the
// console can tell what happened in the last hour: the difference between
// now and the newest snapshot an hour old. Before the process is an hour
// old, the counters themselves are the last hour's (they start at 0 with
// the process: the edge and the dispatcher create their series at 0).
type rates struct {
	g     prometheus.Gatherer
	now   func() time.Time
	start time.Time

	mu        sync.Mutex
	snapshots []snapshot // oldest first; at most one older than window
}

func newRates(g prometheus.Gatherer, now func() time.Time) *rates {
	return &rates{g: g, now: now, start: now()}
}

// gather reads the watched counters and every gauge by the adapter label.
func (r *rates) gather() (map[series]float64, map[string]map[string]float64, error) {
	fams, err := r.g.Gather()
	if err != nil {
		return nil, nil, fmt.Errorf("gathering metrics: %w", err)
	}
	counters := map[series]float64{}
	gauges := map[string]map[string]float64{}
	for _, f := range fams {
		name := f.GetName()
		labels, isCounter := counterLabels[name]
		for _, m := range f.GetMetric() {
			switch {
			case isCounter && m.GetCounter() != nil:
				counters[series{name, label(m, labels[0]), label(m, labels[1])}] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				if gauges[name] == nil {
					gauges[name] = map[string]float64{}
				}
				gauges[name][label(m, "adapter")] = m.GetGauge().GetValue()
			}
		}
	}
	return counters, gauges, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// sample records the counters now, and forgets what the last hour no
// longer needs.
func (r *rates) sample() error {
	values, _, err := r.gather()
	if err != nil {
		return err
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snapshots = append(r.snapshots, snapshot{at: now, values: values})
	for len(r.snapshots) > 1 && !r.snapshots[1].at.After(now.Add(-window)) {
		r.snapshots = r.snapshots[1:]
	}
	return nil
}

// lastHour is what each counter counted in the last hour (or since the
// process started, when that is less than an hour ago: since says when it
// counts from), and the gauges now.
func (r *rates) lastHour() (delta map[series]float64, since time.Time, gauges map[string]map[string]float64, err error) {
	cur, gauges, err := r.gather()
	if err != nil {
		return nil, time.Time{}, nil, err
	}
	now := r.now()
	since = r.start
	var base map[series]float64
	r.mu.Lock()
	for _, s := range r.snapshots {
		if s.at.After(now.Add(-window)) {
			break
		}
		base, since = s.values, s.at
	}
	r.mu.Unlock()
	delta = make(map[series]float64, len(cur))
	for k, v := range cur {
		delta[k] = max(v-base[k], 0)
	}
	return delta, since, gauges, nil
}
