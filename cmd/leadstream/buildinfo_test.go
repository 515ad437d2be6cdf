package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildInfo())
	n, err := testutil.GatherAndCount(reg, "leadstream_build_info")
	if err != nil || n != 1 {
		t.Fatalf("leadstream_build_info: %d series, %v; want 1", n, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	m := mfs[0].GetMetric()[0]
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if m.GetGauge().GetValue() != 1 || !strings.HasPrefix(labels["goversion"], "go") || labels["version"] == "" || labels["revision"] == "" {
		t.Fatalf("leadstream_build_info = %v %v, want 1 with version, revision and goversion", m.GetGauge().GetValue(), labels)
	}
}
