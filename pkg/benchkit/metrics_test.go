package benchkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestGather(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_messages_total", Help: "h"}, []string{"kind", "outcome"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_threshold", Help: "h"})
	reg.MustRegister(c, g)
	c.WithLabelValues("lead", "normalized").Add(3)
	c.WithLabelValues("chat", "failed").Inc()
	g.Set(8)

	got, err := Gather(reg, "test_messages_total")
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, s := range got {
		counts[s.Labels["kind"]+"/"+s.Labels["outcome"]] = s.GetCounter().GetValue()
	}
	if len(got) != 2 || counts["lead/normalized"] != 3 || counts["chat/failed"] != 1 {
		t.Errorf("series %v", counts)
	}
	if got, _ := Gather(reg, "test_threshold"); len(got) != 1 || got[0].GetGauge().GetValue() != 8 {
		t.Errorf("gauge series %+v", got)
	}
	if got, err := Gather(reg, "test_missing"); err != nil || len(got) != 0 {
		t.Errorf("a missing metric: %v, %v", got, err)
	}
}
