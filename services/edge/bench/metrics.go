package bench

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// histogram is a Prometheus histogram's count and sum: enough for a mean.
type histogram struct {
	count uint64
	sum   float64
}

// gather reads the histogram name from reg, summed over its label values.
func gather(reg *prometheus.Registry, name string) (histogram, error) {
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
