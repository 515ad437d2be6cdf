package dispatcher

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("leadstream-test-secret-0123456789"))

// received is one request the fake LMS accepted.
type received struct {
	id, typ, subject string
	orphan           bool
	missing          string // leadstreammissing
}

// fakeLMS is an LMS as an httptest server: it verifies the Standard
// Webhooks signature, records what it accepts in order (and duplicates),
// and answers what respond says.
type fakeLMS struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	seen    map[string]int // webhook-id -> times accepted
	tries   map[string]int // webhook-id -> requests, failed ones too
	respond func(r received) int
}

func newFakeLMS(t *testing.T) *fakeLMS {
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeLMS{t: t, seen: map[string]int{}, tries: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("fake LMS: signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ce struct {
			ID, Type, Subject string
			Orphan            bool   `json:"leadstreamorphan"`
			Missing           string `json:"leadstreammissing"`
		}
		if err := json.Unmarshal(body, &ce); err != nil || r.Header.Get("webhook-id") != ce.ID {
			t.Errorf("fake LMS: body %s / webhook-id %q: %v", body, r.Header.Get("webhook-id"), err)
		}
		rec := received{id: ce.ID, typ: ce.Type, subject: ce.Subject, orphan: ce.Orphan, missing: ce.Missing}
		f.mu.Lock()
		respond := f.respond
		f.tries[rec.id]++
		f.mu.Unlock()
		status := http.StatusNoContent
		if respond != nil {
			status = respond(rec)
		}
		if status/100 == 2 {
			f.mu.Lock()
			f.got = append(f.got, rec)
			f.seen[rec.id]++
			f.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLMS) setRespond(fn func(received) int) {
	f.mu.Lock()
	f.respond = fn
	f.mu.Unlock()
}

func (f *fakeLMS) received() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

func (f *fakeLMS) ids(subject string) []string {
	var out []string
	for _, r := range f.received() {
		if subject == "" || r.subject == subject {
			out = append(out, r.id)
		}
	}
	return out
}

// acceptedOnceEach fails the test for every event the LMS accepted more
// than once.
func (f *fakeLMS) acceptedOnceEach() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, n := range f.seen {
		if n != 1 {
			f.t.Errorf("%s accepted %d times", id, n)
		}
	}
}

// waitFor waits until the LMS has accepted n distinct events.
func (f *fakeLMS) waitFor(n int) {
	f.t.Helper()
	natstest.CheckFor(f.t, 20*time.Second, 10*time.Millisecond, func() error {
		f.mu.Lock()
		got := len(f.seen)
		f.mu.Unlock()
		if got != n {
			return fmt.Errorf("LMS accepted %d distinct events, want %d", got, n)
		}
		return nil
	})
}

type fixture struct {
	t   *testing.T
	cfg *config.Config
	nc  *nats.Conn
	js  jetstream.JetStream
	ns  interface{ ClientURL() string }
}

func newFixture(t *testing.T, adapters string) *fixture {
	t.Helper()
	cfg, err := config.Parse([]byte(`
log: {format: console, level: error}
sources:
  - {name: api, provider: marktplaats-api, tenant: t1, secrets: [x]}
dispatcher: {max_park: 2m, workers: 4}
adapters:
`+adapters), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Shorter than the ack waits, which a config may not be; these tests
	// crash nothing, so nothing is redelivered for max_park to wait for.
	cfg.Dispatcher.MaxPark = config.Dur(time.Second)
	ns := natstest.RunServer(t)
	nc, js := natstest.Connect(t, ns)
	if err := streams.Ensure(context.Background(), js, streams.EventsConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, cfg: cfg, nc: nc, js: js, ns: ns}
}

func adapterYAML(name, url, overrides string) string {
	fields := map[string]string{"backoff_initial": "20ms", "backoff_max": "200ms", "breaker_cooldown": "100ms", "max_attempts": "3", "max_age": "300ms"}
	for _, kv := range strings.Split(overrides, ",") {
		if k, v, ok := strings.Cut(kv, ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	var extra string
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		extra += ", " + k + ": " + fields[k]
	}
	return fmt.Sprintf("  - {name: %s, type: webhook, url: %q, secret: %q%s}\n", name, url, testSecret, extra)
}

// provision makes the topology the fixture's config needs, as `leadstream
// provision` does (New only binds).
func (f *fixture) provision() {
	f.t.Helper()
	if err := Provision(context.Background(), f.js, f.cfg); err != nil {
		f.t.Fatal(err)
	}
}

// start runs a dispatcher until the returned stop is called (or the test ends).
func (f *fixture) start() (*Service, func()) {
	f.t.Helper()
	f.provision()
	s, err := New(context.Background(), Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop(), Projection: true})
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				f.t.Errorf("dispatcher Run: %v", err)
			}
		})
	}
	f.t.Cleanup(stop)
	return s, stop
}

// publish stores an event in EVENTS as the normalizer does.
func (f *fixture) publish(ev *leadstreamv1.Event) {
	f.t.Helper()
	kind, action, _ := strings.Cut(ev.Type, ".")
	data, err := proto.Marshal(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	msg := envelope.EventMsg(streams.EventsSubject(kind, action, ev.Tenant, ev.AggregateId), ev, data)
	if _, err := f.js.PublishMsg(context.Background(), msg); err != nil {
		f.t.Fatal(err)
	}
}

func event(id, typ, agg string, at time.Time) *leadstreamv1.Event {
	ev := &leadstreamv1.Event{Id: id, Type: typ, Tenant: "t1", Source: "src", Provider: "test", AggregateId: agg,
		OccurredAt: timestamppb.New(at), ReceivedAt: timestamppb.New(time.Now())}
	switch typ {
	case "lead.created":
		ev.Data = &leadstreamv1.Event_Lead{Lead: &leadstreamv1.Lead{LeadId: agg, Buyer: &leadstreamv1.Person{Name: "Jan"}}}
	case "chat.message":
		ev.Data = &leadstreamv1.Event_ChatMessage{ChatMessage: &leadstreamv1.ChatMessage{MessageId: id, Text: "hallo"}}
	case "lead.sold", "lead.paid":
		ev.Data = &leadstreamv1.Event_LeadStatus{LeadStatus: &leadstreamv1.LeadStatusChange{LeadId: agg}}
	case "bid.placed":
		ev.Data = &leadstreamv1.Event_Bid{Bid: &leadstreamv1.Bid{BidId: id}}
	}
	return ev
}

func transaction(id, agg string, from, to leadstreamv1.TransactionStatus, at time.Time) *leadstreamv1.Event {
	ev := event(id, "transaction.status_changed", agg, at)
	ev.Data = &leadstreamv1.Event_Transaction{Transaction: &leadstreamv1.TransactionStatusChange{TransactionId: agg, OldStatus: from, NewStatus: to}}
	return ev
}

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// TestCausalOrder: a chat message sent before its lead reaches the LMS after
// it; transaction status changes sent in reverse go out in chain order.
func TestCausalOrder(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.start()
	f.publish(event("chat-1", "chat.message", "conv/1", t0.Add(time.Minute)))
	f.publish(event("chat-2", "chat.message", "conv/1", t0.Add(2*time.Minute)))
	f.publish(event("sold-1", "lead.sold", "conv/1", t0.Add(3*time.Minute)))
	f.publish(event("lead-1", "lead.created", "conv/1", t0))
	const (
		created   = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CREATED
		pending   = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING
		completed = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_COMPLETED
		refunded  = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_REFUNDED
	)
	f.publish(transaction("tx-3", "tx/9", completed, refunded, t0.Add(3*time.Hour)))
	f.publish(transaction("tx-2", "tx/9", pending, completed, t0.Add(2*time.Hour)))
	f.publish(transaction("tx-1", "tx/9", created, pending, t0.Add(time.Hour)))
	lms.waitFor(7)
	if got := lms.ids("conv/1"); got[0] != "lead-1" || !slices.Contains(got, "chat-1") || len(got) != 4 {
		t.Fatalf("conversation delivered as %v, want lead-1 first", got)
	}
	if got := lms.ids("tx/9"); !slices.Equal(got, []string{"tx-1", "tx-2", "tx-3"}) {
		t.Fatalf("transaction delivered as %v, want chain order tx-1 tx-2 tx-3", got)
	}
	for _, r := range lms.received() {
		if r.orphan {
			t.Fatalf("%s delivered as an orphan", r.id)
		}
	}
}

// TestOrphan: a dependent whose prerequisite never comes is delivered after
// max_park, marked as an orphan.
func TestOrphan(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.start()
	start := time.Now()
	f.publish(event("chat-9", "chat.message", "conv/9", t0))
	lms.waitFor(1)
	r := lms.received()[0]
	if r.id != "chat-9" || !r.orphan {
		t.Fatalf("got %+v, want chat-9 as orphan", r)
	}
	if waited := time.Since(start); waited < f.cfg.Dispatcher.MaxPark.Duration {
		t.Fatalf("delivered after %s, before max_park %s", waited, f.cfg.Dispatcher.MaxPark.Duration)
	}
}

// TestRetryHoldsOnlyItsAggregate: one LMS failing for an aggregate for a
// while gets that aggregate's events in order afterwards; other aggregates
// flow meanwhile, and a second LMS got everything at once.
func TestRetryHoldsOnlyItsAggregate(t *testing.T) {
	lmsA, lmsB := newFakeLMS(t), newFakeLMS(t)
	f := newFixture(t, adapterYAML("a", lmsA.srv.URL, "max_attempts: 1000, max_age: 1h")+adapterYAML("b", lmsB.srv.URL, ""))
	var failing sync.Mutex
	down := true
	lmsA.setRespond(func(r received) int {
		failing.Lock()
		defer failing.Unlock()
		if down && r.subject == "lead/1" {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	f.start()
	f.publish(event("l1", "lead.created", "lead/1", t0))
	f.publish(event("l1-sold", "lead.sold", "lead/1", t0.Add(time.Minute)))
	f.publish(event("l1-paid", "lead.paid", "lead/1", t0.Add(2*time.Minute)))
	for i := range 5 {
		f.publish(event(fmt.Sprint("bid-", i), "bid.placed", fmt.Sprint("ad/", i), t0))
	}
	lmsB.waitFor(8)
	lmsA.waitFor(5) // the other aggregates, while lead/1 keeps failing
	if got := lmsA.ids("lead/1"); len(got) != 0 {
		t.Fatalf("lead/1 delivered while failing: %v", got)
	}
	failing.Lock()
	down = false
	failing.Unlock()
	lmsA.waitFor(8)
	if got := lmsA.ids("lead/1"); !slices.Equal(got, []string{"l1", "l1-sold", "l1-paid"}) {
		t.Fatalf("lead/1 delivered as %v after recovery, want in order", got)
	}
	// The retried lead was requested several times, always as webhook-id
	// l1, and accepted once; what waited behind it was requested only once.
	lmsA.mu.Lock()
	defer lmsA.mu.Unlock()
	if lmsA.tries["l1"] < 2 || lmsA.seen["l1"] != 1 || lmsA.tries["l1-sold"] != 1 {
		t.Fatalf("requests per webhook-id: l1 %d (accepted %d), l1-sold %d", lmsA.tries["l1"], lmsA.seen["l1"], lmsA.tries["l1-sold"])
	}
}

// TestTerminalDeadLetterAndReplay: a 4xx goes to DLQ at once with its
// attempts; dlq replay delivers it with the same id and releases what was
// parked behind it.
func TestTerminalDeadLetterAndReplay(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.cfg.Dispatcher.MaxPark = config.Dur(time.Hour)
	var mu sync.Mutex
	reject := true
	lms.setRespond(func(r received) int {
		mu.Lock()
		defer mu.Unlock()
		if reject && r.id == "lead-x" {
			return http.StatusUnprocessableEntity
		}
		return http.StatusOK
	})
	s, _ := f.start()
	f.publish(event("lead-x", "lead.created", "conv/x", t0))
	f.publish(event("chat-x", "chat.message", "conv/x", t0.Add(time.Minute)))
	var letters []*dlq.Letter
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() (err error) {
		letters, err = dlq.List(context.Background(), f.js, dlq.Filter{Stage: dlq.StageDeliver, Name: "crm"})
		if err == nil && len(letters) != 1 {
			err = fmt.Errorf("%d dead letters", len(letters))
		}
		return err
	})
	l := letters[0]
	if l.Reason != "terminal" || l.Attempts != 1 || len(l.Log) != 1 || !strings.Contains(l.Log[0], "422") {
		t.Fatalf("dead letter %+v", l)
	}
	if got := lms.received(); len(got) != 0 {
		t.Fatalf("LMS received %v, want nothing (chat waits for its lead)", got)
	}
	mu.Lock()
	reject = false
	mu.Unlock()
	if err := s.ReplayDeadLetter(context.Background(), l.Seq); err != nil {
		t.Fatal(err)
	}
	lms.waitFor(2)
	if got := lms.ids(""); !slices.Equal(got, []string{"lead-x", "chat-x"}) {
		t.Fatalf("after replay: %v", got)
	}
	if _, err := dlq.Get(context.Background(), f.js, l.Seq); err == nil {
		t.Fatal("replayed letter still in DLQ")
	}
}

// TestRetriesExhausted: a delivery is given up only when both max_attempts
// and max_age are passed, then dead-lettered with every attempt's outcome.
func TestRetriesExhausted(t *testing.T) {
	lms := newFakeLMS(t)
	lms.setRespond(func(received) int { return http.StatusServiceUnavailable })
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, "breaker_failures: 100"))
	f.start()
	start := time.Now()
	f.publish(event("bid-1", "bid.placed", "ad/1", t0))
	var letters []*dlq.Letter
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() (err error) {
		letters, err = dlq.List(context.Background(), f.js, dlq.Filter{Stage: dlq.StageDeliver})
		if err == nil && len(letters) != 1 {
			err = fmt.Errorf("%d dead letters", len(letters))
		}
		return err
	})
	l := letters[0]
	if l.Reason != "retries_exhausted" || l.Attempts < 3 || len(l.Log) != l.Attempts || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("dead letter after %s: %+v", time.Since(start), l)
	}
	for _, line := range l.Log {
		if !strings.Contains(line, "503") {
			t.Fatalf("attempt log line %q lacks the status", line)
		}
	}
}

// TestRestartMidFlight: a dispatcher stopped while events are parked and
// retrying, then started again, loses nothing: parked events stay parked
// until their prerequisite, retries resume, and every event arrives once.
func TestRestartMidFlight(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, "max_attempts: 1000, max_age: 1h"))
	f.cfg.Dispatcher.MaxPark = config.Dur(time.Hour)
	var mu sync.Mutex
	down := true
	lms.setRespond(func(r received) int {
		mu.Lock()
		defer mu.Unlock()
		if down && r.subject == "ad/0" {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	_, stop := f.start()
	f.publish(event("chat-r", "chat.message", "conv/r", t0)) // parked: its lead is not there
	for i := range 20 {
		f.publish(event(fmt.Sprint("bid-", i), "bid.placed", fmt.Sprint("ad/", i%4), t0.Add(time.Duration(i)*time.Second)))
	}
	lms.waitFor(15) // ad/1..3; ad/0 keeps failing
	stop()

	mu.Lock()
	down = false
	mu.Unlock()
	f.start()
	lms.waitFor(20)
	if got := lms.ids("ad/0"); !slices.Equal(got, []string{"bid-0", "bid-4", "bid-8", "bid-12", "bid-16"}) {
		t.Fatalf("ad/0 after restart: %v", got)
	}
	if slices.Contains(lms.ids(""), "chat-r") {
		t.Fatal("parked chat delivered without its lead")
	}
	f.publish(event("lead-r", "lead.created", "conv/r", t0))
	lms.waitFor(22)
	if got := lms.ids("conv/r"); !slices.Equal(got, []string{"lead-r", "chat-r"}) {
		t.Fatalf("conv/r: %v", got)
	}
	lms.acceptedOnceEach()
}

// TestFilters: an adapter gets only the types and tenants it subscribes to,
// and does not wait for a prerequisite of a type it never receives.
func TestFilters(t *testing.T) {
	all, chats := newFakeLMS(t), newFakeLMS(t)
	f := newFixture(t, adapterYAML("all", all.srv.URL, "")+adapterYAML("chats", chats.srv.URL, `types: ["chat.*"], tenants: [t2]`))
	f.cfg.Dispatcher.MaxPark = config.Dur(time.Hour)
	f.start()
	chat := event("chat-t2", "chat.message", "conv/t2", t0)
	chat.Tenant = "t2"
	f.publish(chat)
	f.publish(event("chat-t1", "chat.message", "conv/t1", t0))
	f.publish(event("lead-t1", "lead.created", "conv/t1", t0))
	f.publish(event("bid-t1", "bid.placed", "ad/1", t0))
	// "chats" never receives leads: its chat goes out at once, not as an orphan.
	chats.waitFor(1)
	if r := chats.received()[0]; r.id != "chat-t2" || r.orphan {
		t.Fatalf("chats adapter got %+v", r)
	}
	// "all" receives everything; chat-t2 waits for a lead of conv/t2 that never comes.
	all.waitFor(3)
	if got := all.ids(""); !slices.Contains(got, "lead-t1") || !slices.Contains(got, "chat-t1") || !slices.Contains(got, "bid-t1") {
		t.Fatalf("all adapter got %v", got)
	}
	if got := chats.ids(""); len(got) != 1 {
		t.Fatalf("chats adapter got %v, want only chat-t2", got)
	}
}

func TestFilterSubjects(t *testing.T) {
	for _, c := range []struct {
		types, tenants []string
		want           []string
	}{
		{nil, nil, []string{"events.*.*.*.*"}},
		{[]string{"*"}, []string{"a"}, []string{"events.*.*.a.*"}},
		{[]string{"lead.*", "lead.created", "chat.message"}, nil, []string{"events.chat.message.*.*", "events.lead.*.*.*"}},
		{[]string{"lead.created"}, []string{"a", "b"}, []string{"events.lead.created.a.*", "events.lead.created.b.*"}},
	} {
		got := filterSubjects(&config.Adapter{Types: c.types, Tenants: c.tenants})
		if !slices.Equal(got, c.want) {
			t.Errorf("types %v tenants %v: %v, want %v", c.types, c.tenants, got, c.want)
		}
	}
}
