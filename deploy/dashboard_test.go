package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/leadstream/leadstream/deploy/grafana"
)

// TestDashboard: the committed dashboard JSON is what the code builds (run
// `make dashboards` after changing deploy/grafana), every query names only
// series leadstream exports, and the panels cover what operators watch:
// intake, verification failures, lag, backlog, DLQ depth, parked events,
// retries, end-to-end latency and breakers.
func TestDashboard(t *testing.T) {
	d, err := grafana.Dashboard()
	if err != nil {
		t.Fatal(err)
	}
	built, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(repo, "deploy", "grafana", "dashboards", "leadstream.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(committed)) != string(built) {
		t.Fatal("deploy/grafana/dashboards/leadstream.json is stale: run `make dashboards`")
	}

	exported := map[string]bool{}
	name := regexp.MustCompile(`Name:\s+"(leadstream_[a-z_]+)"`)
	for _, glob := range []string{"services/*/*.go", "cmd/leadstream/*.go"} {
		files, _ := filepath.Glob(filepath.Join(repo, glob))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, _ := os.ReadFile(f)
			for _, m := range name.FindAllStringSubmatch(string(src), -1) {
				exported[m[1]] = true
			}
		}
	}
	var panels struct {
		Panels []struct {
			Type    string
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(built, &panels); err != nil {
		t.Fatal(err)
	}
	series := regexp.MustCompile(`leadstream_[a-z_]+`)
	var used []string
	for _, p := range panels.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, q := range p.Targets {
			for _, s := range series.FindAllString(q.Expr, -1) {
				base := strings.TrimSuffix(s, "_bucket")
				if !exported[base] {
					t.Errorf("panel %q: %s is not a series leadstream exports", p.Title, s)
				}
				used = append(used, base)
			}
		}
	}
	for _, want := range []string{"leadstream_edge_requests_total", "leadstream_edge_verify_failures_total", "leadstream_normalizer_consumer_pending",
		"leadstream_dispatcher_group_backlog", "leadstream_dispatcher_dlq_depth", "leadstream_normalizer_dlq_depth", "leadstream_dispatcher_parked",
		"leadstream_dispatcher_oldest_parked_seconds", "leadstream_dispatcher_retry_backlog", "leadstream_dispatcher_end_to_end_seconds",
		"leadstream_dispatcher_breaker_state"} {
		if !slices.Contains(used, want) {
			t.Errorf("no panel shows %s", want)
		}
	}
}
