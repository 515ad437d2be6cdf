package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// buildLeadstream builds the product binary the pipeline measurements run
// as a child into a temporary directory.
func buildLeadstream(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "leadstream")
	out, err := exec.Command("go", "build", "-o", bin, "../leadstream").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestPipeline keeps the pipeline measurements from rotting: a short
// steady load, a short LMS outage and a small memory run against the real
// `leadstream run`. It asserts what the figures must mean (every event at
// the LMS once, the outage's backlog drained), never a timing.
func TestPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts leadstream run three times")
	}
	bin := buildLeadstream(t)
	cfgPath := benchkit.DemoConfigPath(t)
	signer, err := simulate.NewSigner(benchkit.DemoConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	samples, err := loadSamples(ctx, signer)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o := &pipeOptions{
		bin: bin, out: &out, configPath: cfgPath, storeDir: t.TempDir(), workers: 16,
		steadyRate: 40, steadyDuration: 2 * time.Second,
		catchupRate: 40, catchupDown: 2 * time.Second,
		memoryWebhooks: 300, memoryRate: 150,
		// The breaker's default 30s cooldown would be most of the test.
		adjust: func(m map[string]any) { m["adapters"].([]any)[0].(map[string]any)["breaker_cooldown"] = "1s" },
	}
	if err := runPipeline(ctx, o, signer, samples); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	t.Log("\n" + got)
	if !regexp.MustCompile(`\n\s+40/s\s+40/s\s+80 .*\(flat\)\s+0 `).MatchString(got) {
		t.Errorf("no flat steady row of 80 events at 40/s without errors")
	}
	for _, want := range []string{"backlog when the LMS came back", "caught up (backlog within one second of intake)", "(all delivered)"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(got, "twice") || strings.Contains(got, "WARNING") || strings.Contains(got, "requests failed") {
		t.Errorf("report has duplicates, warnings or failures")
	}
	if m := regexp.MustCompile(`(\d+) deliveries refused while it was down`).FindStringSubmatch(got); m == nil || m[1] == "0" {
		t.Errorf("the LMS refused nothing while down: the outage was not felt")
	}
}
