package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/dispatcher"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// TestThroughput keeps the harness from rotting: a tiny run must get every
// event to the LMS once, correctly signed, each conversation's lead before
// its chat messages although the first chat was stored before the lead. It
// asserts no timings.
func TestThroughput(t *testing.T) {
	const events, aggs = 200, 20
	rep, err := Run(context.Background(), Options{
		Options:    benchkit.Options{Config: benchkit.DemoConfig(t), StoreDir: t.TempDir()},
		Events:     events,
		Aggregates: aggs,
		EarlyChats: true,
		Verify:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := benchkit.Printed(t, rep)

	tp := rep.Throughput
	if tp == nil {
		t.Fatal("no throughput result")
	}
	if rep.EndToEnd != nil {
		t.Error("end to end measured without an edge")
	}
	if !tp.Complete || tp.Delivered != events || tp.Duplicates != 0 {
		t.Errorf("complete %v, delivered %d, duplicates %d; want all %d once", tp.Complete, tp.Delivered, tp.Duplicates, events)
	}
	if tp.OutOfOrder != 0 {
		t.Errorf("%d conversations got a chat before their lead", tp.OutOfOrder)
	}
	// max_park is 20s in the demo config: a chat delivered as an orphan
	// was not released by its lead.
	if tp.Orphans+tp.DeadLettered+tp.BadSignatures != 0 {
		t.Errorf("orphans %d, dead-lettered %d, bad signatures %d", tp.Orphans, tp.DeadLettered, tp.BadSignatures)
	}
	if tp.Elapsed <= 0 || tp.Projection <= 0 {
		t.Errorf("elapsed %s, projection caught up after %s", tp.Elapsed, tp.Projection)
	}
	for _, want := range []string{"deliveries/s", "duplicates", "checking each Standard Webhooks signature"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// eventsEdge stands for edge and normalizer together: it stores each event
// in EVENTS itself, as the normalizer would, in conversations of a lead and
// then four chat messages.
type eventsEdge struct {
	nc *nats.Conn
	js jetstream.JetStream
	n  atomic.Int64
}

func (e *eventsEdge) Send(ctx context.Context) (Receipt, error) {
	n := int(e.n.Add(1) - 1)
	p := planned{agg: n / 5, k: n % 5, lead: n%5 == 0}
	p.id = fmt.Sprintf("e2e-%d-%d", p.agg, p.k)
	msg, err := eventMsg(p, time.Now())
	if err != nil {
		return Receipt{}, err
	}
	r := Receipt{Sent: time.Now(), Label: "chat"}
	if p.lead {
		r.Label = "lead"
	}
	ack, err := e.js.PublishMsg(ctx, msg)
	if err != nil {
		return r, err
	}
	if ack.Duplicate {
		return r, fmt.Errorf("%s stored as a duplicate", p.id)
	}
	r.EventID = p.id
	return r, nil
}

func (e *eventsEdge) Close() error { e.nc.Close(); return nil }

// idle is a normalizer with nothing to do: eventsEdge does its work.
type idle struct{}

func (idle) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// TestEndToEnd: at a fixed rate, every accepted event reaches the LMS once,
// and the latencies come out in order. It asserts no timings.
func TestEndToEnd(t *testing.T) {
	const rate = 50
	rep, err := Run(context.Background(), Options{
		Options: benchkit.Options{Config: benchkit.DemoConfig(t), Concurrency: 2, Rate: rate, Duration: time.Second, Warmup: -1, StoreDir: t.TempDir()},
		Events:  -1,
		Edge: func(ctx context.Context, url string) (Edge, error) {
			nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "bench-test-edge"})
			if err != nil {
				return nil, err
			}
			return &eventsEdge{nc: nc, js: js}, nil
		},
		Normalizer: func(context.Context, *config.Config, string, jetstream.JetStream) (Service, error) {
			return idle{}, nil
		},
		Samples: "lead then four chats per conversation, straight into EVENTS",
		Verify:  true,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := benchkit.Printed(t, rep)

	if rep.Throughput != nil {
		t.Error("throughput measured with Events -1")
	}
	e := rep.EndToEnd
	if e == nil {
		t.Fatal("no end-to-end result")
	}
	// The schedule is fixed: one send every 1/rate for the duration.
	benchkit.CheckSchedule(t, e.Load, rate)
	if e.Delivered != e.Accepted || e.Duplicates != 0 {
		t.Errorf("delivered %d of %d accepted, %d duplicates", e.Delivered, e.Accepted, e.Duplicates)
	}
	if e.Orphans+e.DeadLetters+e.BadSignatures != 0 {
		t.Errorf("orphans %d, dead letters %d, bad signatures %d", e.Orphans, e.DeadLetters, e.BadSignatures)
	}
	l, a := e.Latency, e.FromAccepted
	if l.Max < l.P99 || l.P99 < l.P50 || a.Max < a.P99 || a.P99 < a.P50 {
		t.Errorf("latencies out of order: %s; from the 2xx %s", l, a)
	}
	// Sent before it was accepted, so never less from the send.
	if l.P50 < a.P50 || l.Max < a.Max {
		t.Errorf("from the send %s; from the 2xx %s", l, a)
	}
	if len(e.Labels) != 2 || e.Labels[0].Events+e.Labels[1].Events != e.Delivered {
		t.Errorf("latencies by label %+v, want lead and chat covering all %d", e.Labels, e.Delivered)
	}
	for _, want := range []string{"end to end", "from the edge's 202", "load: lead then four chats", "slowest from the request"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestOutOfOrder: the causal check behind TestThroughput finds a chat
// accepted before its lead, and one accepted without it.
func TestOutOfOrder(t *testing.T) {
	events := plan(6, 2, false) // conversation 0: lead, chat, chat; 1 likewise
	ids := func(order ...int) map[string]int {
		pos := map[string]int{}
		for i, e := range order {
			pos[events[e].id] = i
		}
		return pos
	}
	tests := []struct {
		name  string
		order []int // indices into events, in the order the LMS accepted them
		want  int
	}{
		{"stream order", []int{0, 1, 2, 3, 4, 5}, 0},
		{"leads first, then the rest in any order", []int{1, 0, 5, 3, 2, 4}, 0},
		{"a chat before its lead", []int{2, 0, 1, 3, 4, 5}, 1},
		{"chats without their leads", []int{2, 3, 4, 5}, 2},
		{"nothing delivered", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outOfOrder(events, ids(tt.order...)); got != tt.want {
				t.Fatalf("outOfOrder = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestPlan: every conversation has exactly one lead; with early chats its
// first event is a chat, where it has more than one.
func TestPlan(t *testing.T) {
	for _, tt := range []struct {
		events, aggs int
		early        bool
	}{{10, 3, false}, {10, 3, true}, {5, 5, true}, {7, 5, true}} {
		t.Run(fmt.Sprint(tt.events, "/", tt.aggs, "/", tt.early), func(t *testing.T) {
			events := plan(tt.events, tt.aggs, tt.early)
			leads, first, count := map[int]int{}, map[int]planned{}, map[int]int{}
			ids := map[string]bool{}
			for _, e := range events {
				if ids[e.id] {
					t.Fatalf("id %s twice", e.id)
				}
				ids[e.id] = true
				if e.lead {
					leads[e.agg]++
				}
				if _, ok := first[e.agg]; !ok {
					first[e.agg] = e
				}
				count[e.agg]++
			}
			for a := range tt.aggs {
				if leads[a] != 1 {
					t.Errorf("conversation %d has %d leads", a, leads[a])
				}
				if wantLead := !tt.early || count[a] == 1; first[a].lead != wantLead {
					t.Errorf("conversation %d (%d events) starts with lead %v, want %v", a, count[a], first[a].lead, wantLead)
				}
			}
		})
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
		{"more aggregates than events", with(Options{Events: 10, Aggregates: 11}), "11 aggregates for 10 events"},
		{"aggregates do not matter without throughput", with(Options{Events: -1, Aggregates: 11}), ""},
		{"negative rate", with(Options{Options: benchkit.Options{Rate: -1}}), "Rate -1 is negative"},
		{"defaults", with(Options{}), ""},
		{"few events get fewer aggregates", with(Options{Events: 5}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.setDefaults()
			benchkit.CheckErr(t, o.Validate(), tt.want)
		})
	}
}

// TestBenchAdapter: the bench adapter keeps the config's delivery settings
// but delivers every event to the LMS, whatever the config filters.
func TestBenchAdapter(t *testing.T) {
	cfg := benchkit.DemoConfig(t)
	cfg.Adapters[0].Types = []string{"lead.*"}
	cfg.Adapters[0].Tenants = []string{"demo-dealer"}
	cfg.Adapters[0].MaxAttempts = 7
	a := benchAdapter(cfg, "whsec_x")
	if a.Name != adapterName || a.Secret != "whsec_x" || len(a.Secrets) != 0 || a.Types != nil || a.Tenants != nil || a.MaxAttempts != 7 {
		t.Fatalf("bench adapter %+v", a)
	}
	if cfg.Adapters[0].Name != "crm" || len(cfg.Adapters[0].Types) != 1 {
		t.Fatalf("the config's adapter changed: %+v", cfg.Adapters[0])
	}
	cfg.Adapters = nil
	if a := benchAdapter(cfg, "whsec_x"); a.Timeout.Duration <= 0 || a.MaxAttempts <= 0 || a.BackoffMax.Duration <= 0 {
		t.Fatalf("bench adapter without a template %+v", a)
	}
}

// BenchmarkThroughput runs the throughput measurement of `leadstream
// bench` (5,000 events over 500 conversations, the demo config, leads
// projection on) once per iteration, and reports its deliveries/s and the
// process's CPU time per delivery. -args -throughput.cpuprofile=FILE
// writes a CPU profile of the measurement alone (without the fill);
// -args -throughput.noprojection leaves the projection out.
func BenchmarkThroughput(b *testing.B) {
	for b.Loop() {
		o := Options{Options: benchkit.Options{Config: benchkit.DemoConfig(b), StoreDir: b.TempDir()}, NoProjection: *noProjection}
		var profile *os.File
		if *cpuProfile != "" {
			var err error
			if profile, err = os.Create(*cpuProfile); err != nil {
				b.Fatal(err)
			}
			o.CPUProfile = profile
		}
		rep, err := Run(context.Background(), o)
		if profile != nil {
			if cerr := profile.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
		if err != nil {
			b.Fatal(err)
		}
		tp := rep.Throughput
		if !tp.Complete || tp.Duplicates != 0 || tp.OutOfOrder != 0 {
			b.Fatalf("complete %v, duplicates %d, out of order %d", tp.Complete, tp.Duplicates, tp.OutOfOrder)
		}
		b.ReportMetric(tp.Rate(), "deliveries/s")
		if tp.CPU.Known() {
			b.ReportMetric(tp.CPU.Self*tp.Elapsed.Seconds()/float64(tp.Delivered)*1e3, "cpu-ms/delivery")
			b.ReportMetric(tp.CPU.Others, "other-cpus")
		}
	}
}

// BenchmarkGroupStream measures what BenchmarkThroughput cannot exceed:
// the adapter's consumer group alone, on the same 5,000 events and the same
// JetStream (fsync before every ack). Provision makes the group, whose
// stream sources EVENTS as the dispatcher starts; one member consumes it,
// pinned and filtered on its partitions, and acks each message at once,
// which removes it from the work queue: two synced writes of the group's
// stream per event (the sourced copy and the removal), serialized with the
// consumer's reads. Nothing is admitted, delivered, recorded or projected.
func BenchmarkGroupStream(b *testing.B) {
	for b.Loop() {
		cfg := benchkit.DemoConfig(b)
		cfg.NATS.Replicas = 1
		cfg.Adapters = []config.Adapter{benchAdapter(cfg, webhook.GenerateSecret())}
		ctx := context.Background()
		j, err := benchkit.StartJetStream(&benchkit.Options{StoreDir: b.TempDir()}, "dispatcher-group")
		if err != nil {
			b.Fatal(err)
		}
		if err := ensureStreams(ctx, j.JS, cfg, false); err != nil {
			b.Fatal(err)
		}
		const events = 5000
		if err := fill(ctx, j.JS, plan(events, 500, false)); err != nil {
			b.Fatal(err)
		}
		if err := dispatcher.Provision(ctx, j.JS, cfg); err != nil {
			b.Fatal(err)
		}
		group := "dispatch-" + adapterName
		if _, err := pcgroups.AddMembers(ctx, j.JS, streams.EVENTS, group, []string{"bench"}); err != nil {
			b.Fatal(err)
		}
		var acked atomic.Int64
		cpu0, start := benchkit.ReadCPU(), time.Now()
		cc, err := pcgroups.ElasticConsume(ctx, j.JS, streams.EVENTS, group, "bench", func(m jetstream.Msg) {
			if m.Ack() == nil {
				acked.Add(1)
			}
		}, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.Dispatcher.AckWait.Duration,
			MaxDeliver: -1, MaxAckPending: cfg.Dispatcher.MaxAckPending})
		if err != nil {
			b.Fatal(err)
		}
		natstest.CheckFor(b, time.Minute, pollEvery, func() error {
			if n := acked.Load(); n < events {
				return fmt.Errorf("%d of %d acked", n, events)
			}
			return nil
		})
		elapsed, cpu := time.Since(start), cpu0.Until(benchkit.ReadCPU())
		cc.Stop()
		j.Close()
		b.ReportMetric(events/elapsed.Seconds(), "msgs/s")
		if cpu.Known() {
			b.ReportMetric(cpu.Self*elapsed.Seconds()/events*1e3, "cpu-ms/msg")
			b.ReportMetric(cpu.Others, "other-cpus")
		}
	}
}

var (
	cpuProfile   = flag.String("throughput.cpuprofile", "", "BenchmarkThroughput: write a CPU profile of the measurement to this file")
	noProjection = flag.Bool("throughput.noprojection", false, "BenchmarkThroughput: leave the leads projection out")
)
