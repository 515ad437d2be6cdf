package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/testvectors"
)

// apiSample is a shared Marktplaats API payload of kind as the edge stores
// it from source mp-api: its "id" is the provider event id, made unique by
// the suffix.
func apiSample(tb testing.TB, file, kind string) Sample {
	tb.Helper()
	body, err := os.ReadFile(filepath.Join(testvectors.Dir(tb), "payloads", "marktplaats-api", file))
	if err != nil {
		tb.Fatal(err)
	}
	return Sample{Name: file, Kind: kind, Raw: func(suffix string) *envelope.Raw {
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			panic(err)
		}
		pid := fmt.Sprint(m["id"], "-", suffix)
		m["id"] = pid
		b, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		return &envelope.Raw{
			Source: "mp-api", Provider: config.ProviderMarktplaatsAPI, Tenant: "demo-dealer", Kind: kind,
			EventID: eventid.New("mp-api", pid), ProviderEventID: pid, ReceivedAt: time.Now().UTC(),
			Method: "POST", Path: "/hooks/mp-api", KeyID: "secret#0", ContentType: "application/json", Body: b,
		}
	}}
}

// rawEdge stands for the edge: it stores each event in RAW itself and
// "answers" with the PubAck, as the real edge does after verifying.
type rawEdge struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	samples []Sample
	n       atomic.Uint64
}

func startRawEdge(samples []Sample) StartEdge {
	return func(ctx context.Context, url string) (Edge, error) {
		nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "bench-test-edge"})
		if err != nil {
			return nil, err
		}
		return &rawEdge{nc: nc, js: js, samples: samples}, nil
	}
}

func (e *rawEdge) Send(ctx context.Context) (string, error) {
	n := e.n.Add(1) - 1
	raw := e.samples[n%uint64(len(e.samples))].Raw(fmt.Sprintf("e2e-%d", n))
	ack, err := e.js.PublishMsg(ctx, raw.Msg())
	if err != nil {
		return "", err
	}
	if ack.Duplicate {
		return "", fmt.Errorf("event %s stored as a duplicate", raw.EventID)
	}
	return raw.EventID, nil
}

func (e *rawEdge) Close() error { e.nc.Close(); return nil }

// TestRun keeps the harness from rotting: a tiny run of both parts must
// normalize every envelope of each kind once, restore GOMAXPROCS, and see
// every event accepted at a fixed rate arrive in EVENTS. It asserts no
// timings.
func TestRun(t *testing.T) {
	const (
		perKind = 50
		rate    = 50
	)
	samples := []Sample{
		apiSample(t, "bid-placed.json", envelope.KindBid),
		apiSample(t, "bid-closed.json", envelope.KindBid),
		apiSample(t, "asq-created.json", envelope.KindASQ),
	}
	procs := runtime.GOMAXPROCS(0)
	rep, err := Run(context.Background(), Options{
		Options:    benchkit.Options{Config: benchkit.DemoConfig(t), Concurrency: 2, Rate: rate, Duration: time.Second, Warmup: -1, StoreDir: t.TempDir()},
		Samples:    samples,
		Kinds:      []string{envelope.KindBid, envelope.KindASQ},
		KindEvents: perKind,
		Edge:       startRawEdge(samples),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := benchkit.Printed(t, rep)

	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS is %d after the run, was %d", got, procs)
	}
	if len(rep.Kinds) != 2 {
		t.Fatalf("%d kind results, want 2", len(rep.Kinds))
	}
	for _, k := range rep.Kinds {
		if !k.Complete || k.Stored != perKind || k.Events != perKind || k.Normalized != perKind {
			t.Errorf("%s: complete %v, stored %d, events %d, normalized %d; want all %d", k.Kind, k.Complete, k.Stored, k.Events, k.Normalized, perKind)
		}
		if k.Deduplicated+k.DeadLettered+k.Failed != 0 {
			t.Errorf("%s: deduplicated %d, dead-lettered %d, failed %d", k.Kind, k.Deduplicated, k.DeadLettered, k.Failed)
		}
		if k.Elapsed <= 0 {
			t.Errorf("%s: elapsed %s", k.Kind, k.Elapsed)
		}
		// Each event, and then its dedupe record, went through its group
		// commit once.
		if ev, dd := k.Commits["events"], k.Commits["dedupe"]; ev.Writes != perKind || dd.Writes != perKind || ev.Commits == 0 || dd.Commits == 0 {
			t.Errorf("%s: commits %+v, want %d events and %d dedupe records written", k.Kind, k.Commits, perKind, perKind)
		}
	}
	e := rep.EndToEnd
	if e == nil {
		t.Fatal("no end-to-end result")
	}
	// The schedule is fixed: one send every 1/rate for the duration.
	benchkit.CheckSchedule(t, e.Load, rate)
	if e.Arrived != e.Accepted || e.DuplicateArrivals != 0 {
		t.Errorf("arrived %d of %d accepted, %d twice", e.Arrived, e.Accepted, e.DuplicateArrivals)
	}
	if e.DeadLettered+e.Failed != 0 {
		t.Errorf("normalizer: %d dead-lettered, %d failed", e.DeadLettered, e.Failed)
	}
	if l := e.Latency; l.Max < l.P99 || l.P99 < l.P50 {
		t.Errorf("latencies out of order: %s", l)
	}
	for _, want := range []string{"events/s", "CPU/event", "per commit", "end to end", "GOMAXPROCS 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestValidate(t *testing.T) {
	with := func(o Options) Options { o.Config = benchkit.DemoConfig(t); return o }
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no config", Options{}, "Config is required"},
		{"kind without sample", with(Options{Kinds: []string{envelope.KindChat}}), "no sample of kind chat"},
		{"unknown is not measured", with(Options{Kinds: []string{envelope.KindUnknown}}), "cannot be measured"},
		{"no samples needed without the per-kind part", with(Options{KindEvents: -1}), ""},
		{"negative rate", with(Options{Options: benchkit.Options{Rate: -1}, KindEvents: -1}), "Rate -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.setDefaults()
			benchkit.CheckErr(t, o.Validate(), tt.want)
		})
	}
}
