package bench

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/benchkit"
)

// histogram is a Prometheus histogram's count and sum: enough for a mean.
type histogram struct {
	count uint64
	sum   float64
}

// gather reads the histogram name from reg, summed over its label values,
// or over those whose labels include every pair of want (name, value, ...).
func gather(reg *prometheus.Registry, name string, want ...string) (histogram, error) {
	series, err := benchkit.Gather(reg, name)
	if err != nil {
		return histogram{}, err
	}
	if len(series) == 0 {
		return histogram{}, fmt.Errorf("bench: edge metric %s not found", name)
	}
	var h histogram
	for _, s := range series {
		if !hasLabels(s.Labels, want) {
			continue
		}
		h.count += s.GetHistogram().GetSampleCount()
		h.sum += s.GetHistogram().GetSampleSum()
	}
	return h, nil
}

// hasLabels says labels has every pair of want (name, value, ...).
func hasLabels(labels map[string]string, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if labels[want[i]] != want[i+1] {
			return false
		}
	}
	return true
}

// sub is what h observed since earlier.
func (h histogram) sub(earlier histogram) histogram {
	return histogram{count: h.count - earlier.count, sum: h.sum - earlier.sum}
}

func (h histogram) mean() float64 {
	if h.count == 0 {
		return 0
	}
	return h.sum / float64(h.count)
}

// gauge reads the gauge name from reg.
func gauge(reg *prometheus.Registry, name string) float64 {
	series, _ := benchkit.Gather(reg, name)
	if len(series) == 0 {
		return 0
	}
	return series[0].GetGauge().GetValue()
}
