package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/services/edge/extract"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// TestRun keeps the harness from rotting: a short run must answer every
// request 202, store exactly the fresh ones, and publish the ceiling. It
// asserts no timings.
func TestRun(t *testing.T) {
	const presign = 8 // small, so that the run also signs during the load
	rep, err := Run(context.Background(), Options{
		Options: benchkit.Options{
			Config:      benchkit.DemoConfig(t),
			Duration:    300 * time.Millisecond,
			Warmup:      50 * time.Millisecond,
			Concurrency: 4,
			StoreDir:    t.TempDir(),
		},
		Presign: presign,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := benchkit.Printed(t, rep)

	if rep.Edge.Requests == 0 {
		t.Error("no edge request was answered 202 in the window")
	}
	if rep.Edge.Errors != 0 || len(rep.Edge.Statuses) != 0 {
		t.Errorf("edge: %d errors, answers other than 202: %v, first error: %q", rep.Edge.Errors, rep.Edge.Statuses, rep.Edge.FirstError)
	}
	if rep.Edge.Duplicates != 0 {
		t.Errorf("edge answered %d requests as duplicates: the load is not unique", rep.Edge.Duplicates)
	}
	if rep.RawStored != uint64(rep.Edge.Fresh) {
		t.Errorf("RAW gained %d messages, the edge answered %d requests 202 with duplicate=false", rep.RawStored, rep.Edge.Fresh)
	}
	if rep.Presigned != presign {
		t.Errorf("presigned %d requests, want %d", rep.Presigned, presign)
	}
	if rep.Commits[0].Commits+rep.Commits[1].Commits == 0 {
		t.Error("the edge's commit batch histogram saw no commit in the window")
	}
	if rep.Ceiling.Requests == 0 {
		t.Error("no ceiling publish was acknowledged in the window")
	}
	if rep.Ceiling.Errors != 0 || rep.Ceiling.Duplicates != 0 {
		t.Errorf("ceiling: %d errors (first %q), %d duplicates", rep.Ceiling.Errors, rep.Ceiling.FirstError, rep.Ceiling.Duplicates)
	}
	if rep.CeilingStored != uint64(rep.Ceiling.Fresh) {
		t.Errorf("CEILING gained %d messages, %d publishes were acknowledged", rep.CeilingStored, rep.Ceiling.Fresh)
	}
	for _, p := range config.Providers {
		if rep.Mix[p] == 0 {
			t.Errorf("the load has no sample of %s", p)
		}
	}
	for _, want := range []string{"edge/baseline", "atomic batches:", "individual publishes:"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := rep.Commits[0].Messages + rep.Commits[1].Messages; n == 0 || n > rep.Edge.Requests+rep.Edge.Errors+4 {
		t.Errorf("commits in the window held %d requests; %d were answered", n, rep.Edge.Requests)
	}
}

// TestTemplatesMakeUniqueEventIDs checks what the edge deduplicates on: two
// counters of one sample must give two event ids, and the body must stay
// JSON, or the load would measure duplicates or dead letters.
func TestTemplatesMakeUniqueEventIDs(t *testing.T) {
	signer, err := simulate.NewSigner(benchkit.DemoConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	tpls, err := newTemplates(signer, "benchtest")
	if err != nil {
		t.Fatal(err)
	}
	if len(tpls) != len(simulate.Samples()) {
		t.Fatalf("%d templates of %d samples", len(tpls), len(simulate.Samples()))
	}
	seen := map[string]string{}
	for i := range tpls {
		tp := &tpls[i]
		for _, n := range []uint64{0, 1, 9999999999999999} {
			body := tp.bodyFor(n)
			if !json.Valid(body) {
				t.Fatalf("%s counter %d: body is not JSON: %s", tp.name, n, body)
			}
			id := tp.src.Name + ":" + extract.Extract(tp.provider, "", body).ProviderEventID
			if prev, ok := seen[id]; ok {
				t.Fatalf("%s counter %d: event id %s already made by %s", tp.name, n, id, prev)
			}
			seen[id] = tp.name
		}
	}
	if got := string(tpls[0].body); !strings.Contains(got, "benchtest0000000000000000") {
		t.Fatalf("template body lacks its counter: %s", got)
	}
}

// BenchmarkEdgeHTTP is a short `make bench` as a Go benchmark: one fixed-time
// run, whatever b.N asks, reported as rates instead of ns/op.
func BenchmarkEdgeHTTP(b *testing.B) {
	cfg := benchkit.DemoConfig(b)
	var rep *Report
	for b.Loop() {
		var err error
		rep, err = Run(context.Background(), Options{
			Options: benchkit.Options{Config: cfg, Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, StoreDir: b.TempDir()},
			Presign: 4000,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rep.Edge.Rate(), "edge-req/s")
	b.ReportMetric(float64(rep.Edge.P99)/float64(time.Millisecond), "edge-p99-ms")
	b.ReportMetric(rep.Ceiling.Rate(), "ceiling-pub/s")
	b.ReportMetric(rep.Ratio(), "edge/baseline")
}

// BenchmarkRAWLeaderOnCluster measures what one RAW stream leader takes on
// a 3-node JetStream cluster in this process (routed on loopback, fsync
// before every ack, replicas 3): the edge's signed requests/s next to plain
// js.PublishMsg into a stream with RAW's settings, at 64 and at 256
// requests in flight. The figures are printed; the README's Scaling
// section quotes them.
//
//	go test -run '^$' -bench RAWLeaderOnCluster -benchtime 1x ./services/edge/bench
func BenchmarkRAWLeaderOnCluster(b *testing.B) {
	cfg := benchkit.DemoConfig(b)
	for _, conc := range []int{64, 256} {
		b.Run(fmt.Sprint("concurrency=", conc), func(b *testing.B) {
			cl := natstest.RunCluster(b, 3)
			var rep *Report
			for b.Loop() {
				var err error
				rep, err = Run(context.Background(), Options{
					Options:  benchkit.Options{Config: cfg, Duration: 5 * time.Second, Warmup: time.Second, Concurrency: conc},
					URL:      cl.URLs(),
					Replicas: 3,
					Presign:  8000,
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			rep.Print(os.Stdout)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(rep.Edge.Rate(), "edge-req/s")
			b.ReportMetric(float64(rep.Edge.P99)/float64(time.Millisecond), "edge-p99-ms")
			b.ReportMetric(rep.Ceiling.Rate(), "ceiling-pub/s")
		})
	}
}
