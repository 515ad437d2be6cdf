package benchkit

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Series is one series of a metric that a bench reads from the registry of
// the service it runs: the service's own counts of what it did.
type Series struct {
	// Labels are the series' label values by name.
	Labels map[string]string
	// Metric holds the value: GetCounter, GetGauge, GetHistogram.
	*dto.Metric
}

// Gather returns the series of the metric name in g, none when g has no
// such metric (yet: a counter with labels has no series before its first
// count).
func Gather(g prometheus.Gatherer, name string) ([]Series, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("bench: gathering metrics: %w", err)
	}
	var out []Series
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out = append(out, Series{Labels: labels, Metric: m})
		}
	}
	return out, nil
}
