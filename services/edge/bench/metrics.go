package bench

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// histogram is a Prometheus histogram's count and sum: enough for a mean.
type histogram struct {
	count uint64
	sum   float64
}

// gather reads the histogram name from reg, summed over its label values,
// or over those whose labels include every pair of want (name, value, ...).
func gather(reg *prometheus.Registry, name string, want ...string) (histogram, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return histogram{}, fmt.Errorf("bench: gathering edge metrics: %w", err)
	}
	var h histogram
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m.GetLabel(), want) {
				continue
			}
			h.count += m.GetHistogram().GetSampleCount()
			h.sum += m.GetHistogram().GetSampleSum()
		}
		return h, nil
	}
	return histogram{}, fmt.Errorf("bench: edge metric %s not found", name)
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

func hasLabels(got []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		found := false
		for _, l := range got {
			if l.GetName() == want[i] && l.GetValue() == want[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// gauge reads the gauge name from reg.
func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
