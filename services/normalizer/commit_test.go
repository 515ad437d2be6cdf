package normalizer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/jsbatch"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// service provisions kinds and builds a Service that does not run: the
// tests call Process themselves, as its handlers do, many at once.
func (f *fixture) service(kinds ...string) *Service {
	f.t.Helper()
	if err := Provision(context.Background(), f.js, f.cfg, kinds); err != nil {
		f.t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Config: f.cfg, URL: f.ns.ClientURL(), JetStream: f.js, Logger: zap.NewNop(), Kinds: kinds})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(s.Close)
	return s
}

// atomicCommits makes s commit every group of two or more writes as one
// atomic batch, whatever its cost model would say.
func atomicCommits(t *testing.T, s *Service) {
	t.Helper()
	s.events.Close()
	s.records.Close()
	if err := s.startCommits(context.Background(), jsbatch.Atomic); err != nil {
		t.Fatal(err)
	}
}

// inAtomicBatches is how many writes into stream ("events" or "dedupe")
// went in atomic batches (of two or more, by construction).
func inAtomicBatches(t *testing.T, s *Service, stream string) int {
	t.Helper()
	var m dto.Metric
	if err := s.metrics.batch.WithLabelValues(stream, "atomic").(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return int(m.GetHistogram().GetSampleSum())
}

// processed is what Process did with one RAW envelope.
type processed struct {
	raw     *envelope.Raw
	outcome Outcome
	err     error
}

// together processes raws at once, as concurrent handlers do. With hold,
// each waits just before its event joins the group commit until all have
// come that far (bounded), so that they are committed together.
func together(t *testing.T, s *Service, raws []*envelope.Raw, stored time.Time, redelivered, hold bool) []processed {
	t.Helper()
	release := make(chan struct{})
	var arrived atomic.Int32
	if hold {
		s.beforePublish = func(string) {
			if int(arrived.Add(1)) == len(raws) {
				close(release)
			}
			select {
			case <-release:
			case <-time.After(30 * time.Second):
			}
		}
		defer func() { s.beforePublish = nil }()
	}
	out := make([]processed, len(raws))
	var wg sync.WaitGroup
	for i, r := range raws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ref := &leadstreamv1.RawRef{Stream: streams.RAW, Sequence: uint64(i + 1), Subject: r.Subject()}
			o, err := s.Process(context.Background(), r, ref, stored, redelivered)
			out[i] = processed{r, o, err}
		}()
	}
	wg.Wait()
	if hold && int(arrived.Load()) != len(raws) {
		t.Fatalf("%d of %d reached the EVENTS publish", arrived.Load(), len(raws))
	}
	return out
}

// recorded checks that the dedupe bucket holds r's event id, with the TTL
// of dedupe_ttl, and that it leads to the event's place in EVENTS.
// refuseAtomicBatches turns atomic batches off in EVENTS and the dedupe
// bucket, as an earlier version provisioned them or a bucket update leaves
// them.
func (f *fixture) refuseAtomicBatches() {
	f.t.Helper()
	ctx := context.Background()
	for _, name := range []string{streams.EVENTS, dedupeStream} {
		st, err := f.js.Stream(ctx, name)
		if err != nil {
			f.t.Fatal(err)
		}
		sc := st.CachedInfo().Config
		sc.AllowAtomicPublish = false
		if _, err := f.js.UpdateStream(ctx, sc); err != nil {
			f.t.Fatal(err)
		}
	}
}

// allRecorded checks that EVENTS holds exactly the events of raws, once
// each, and that each has its dedupe record.
func (f *fixture) allRecorded(raws ...*envelope.Raw) {
	f.t.Helper()
	events := f.events()
	if len(events) != len(raws) {
		f.t.Fatalf("EVENTS holds %d events, want %d", len(events), len(raws))
	}
	for _, r := range raws {
		f.recorded(r, events)
	}
}

func (f *fixture) recorded(r *envelope.Raw, events map[string]*jetstream.RawStreamMsg) {
	f.t.Helper()
	ctx := context.Background()
	st, err := f.js.Stream(ctx, dedupeStream)
	if err != nil {
		f.t.Fatal(err)
	}
	rec, err := st.GetLastMsgForSubject(ctx, dedupePrefix+dedupeKey(r.Source, r.EventID))
	if err != nil {
		f.t.Fatalf("event %s: no dedupe record: %v", r.EventID, err)
	}
	if got, want := rec.Header.Get(jetstream.MsgTTLHeader), f.cfg.DedupeTTL.Duration.String(); got != want {
		f.t.Errorf("event %s: record's TTL %q, want %q", r.EventID, got, want)
	}
	ev, ok := events[r.EventID]
	if !ok {
		f.t.Fatalf("event %s is not in EVENTS", r.EventID)
	}
	if _, subject := parseRecord(rec.Data); subject != ev.Subject {
		f.t.Errorf("event %s: record %q names subject %q, want %q", r.EventID, rec.Data, subject, ev.Subject)
	}
	seq, normalized, err := EventSequence(ctx, f.js, r.Source, r.EventID)
	if err != nil || !normalized || seq != ev.Sequence {
		f.t.Errorf("EventSequence(%s) = %d, %v, %v; want %d (record %q)", r.EventID, seq, normalized, err, ev.Sequence, rec.Data)
	}
}

// bids makes n new bid events.
func bids(t *testing.T, prefix string, n int) []*envelope.Raw {
	raws := make([]*envelope.Raw, n)
	for i := range raws {
		raws[i] = rawOf(t, samples[2+i%2], fmt.Sprintf("-%s-%d", prefix, i))
	}
	return raws
}

// TestBatchHoldingARedelivery: events committed together in one atomic
// batch, among them an event EVENTS already holds (an earlier attempt
// crashed before its dedupe record) and two deliveries of one new event.
// JetStream refuses a batch with a duplicate as a whole; each event still
// ends up in EVENTS exactly once, each delivery learns whether it was the
// one that stored it, and every event is recorded in the dedupe set.
func TestBatchHoldingARedelivery(t *testing.T) {
	f := newFixture(t, nil)
	s := f.service(envelope.KindBid)
	atomicCommits(t, s)
	ctx := context.Background()

	stored := rawOf(t, samples[2], "-stored")
	s.afterPublish = func(string) error { return errors.New("injected crash") }
	ref := &leadstreamv1.RawRef{Stream: streams.RAW, Sequence: 1, Subject: stored.Subject()}
	if _, err := s.Process(ctx, stored, ref, time.Now(), false); err == nil {
		t.Fatal("the crashing attempt succeeded")
	}
	s.afterPublish = nil
	if n := f.count(streams.EVENTS); n != 1 {
		t.Fatalf("EVENTS holds %d after the crashed attempt, want 1", n)
	}

	twice := rawOf(t, samples[3], "-twice")
	fresh := bids(t, "fresh", 12)
	raws := append([]*envelope.Raw{stored, twice, twice}, fresh...)
	// A provider's redelivery is a new RAW message, delivered for the first
	// time: only the duplicate window and the dedupe set know it.
	out := together(t, s, raws, time.Now(), false, true)
	if n := inAtomicBatches(t, s, "events"); n < 2 {
		t.Fatalf("%d events went in atomic batches: nothing was committed together", n)
	}

	outcomes := map[string][]Outcome{}
	for _, p := range out {
		if p.err != nil {
			t.Fatalf("event %s: %v", p.raw.EventID, p.err)
		}
		outcomes[p.raw.EventID] = append(outcomes[p.raw.EventID], p.outcome)
	}
	if o := outcomes[stored.EventID]; len(o) != 1 || o[0] != Deduplicated {
		t.Errorf("the stored event: outcomes %v, want [Deduplicated]", o)
	}
	if o := outcomes[twice.EventID]; len(o) != 2 || o[0] == o[1] {
		t.Errorf("the event delivered twice: outcomes %v, want one Normalized, one Deduplicated", o)
	}
	for _, r := range fresh {
		if o := outcomes[r.EventID]; len(o) != 1 || o[0] != Normalized {
			t.Errorf("event %s: outcomes %v, want [Normalized]", r.EventID, o)
		}
	}
	f.allRecorded(append([]*envelope.Raw{stored, twice}, fresh...)...) // fails on an event held twice
}

// TestBatchCrashBetweenCommits: a batch of events is committed to EVENTS,
// and the process dies before their dedupe records are committed (the
// fault after the EVENTS publish stands for that: nothing is recorded,
// nothing acked). The redeliveries, also committed together, yield no
// second event: within EVENTS' duplicate window JetStream refuses them,
// past it the look into EVENTS finds them. Either way every event is then
// recorded with its place in EVENTS.
func TestBatchCrashBetweenCommits(t *testing.T) {
	for _, c := range []struct {
		name   string
		window time.Duration
		// age is how long before the first attempt RAW stored the
		// messages: past EVENTS' duplicate window, the redelivery looks
		// into EVENTS.
		age time.Duration
	}{
		{"within the duplicate window", 2 * time.Hour, 0},
		{"past the duplicate window", time.Second, time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(cfg *config.Config) { cfg.Streams.EventsDuplicateWindow = config.Dur(c.window) })
			s := f.service(envelope.KindBid)
			atomicCommits(t, s)
			raws := bids(t, "crash", 16)
			stored := time.Now().Add(-c.age)

			s.afterPublish = func(string) error { return errors.New("injected crash") }
			for _, p := range together(t, s, raws, stored, false, true) {
				if p.err == nil {
					t.Fatalf("event %s: the crashing attempt succeeded", p.raw.EventID)
				}
			}
			s.afterPublish = nil
			if n := inAtomicBatches(t, s, "events"); n < 2 {
				t.Fatalf("%d events went in atomic batches: nothing was committed together", n)
			}
			if n := f.count(streams.EVENTS); n != uint64(len(raws)) {
				t.Fatalf("EVENTS holds %d after the crash, want %d", n, len(raws))
			}
			if n := f.count(dedupeStream); n != 0 {
				t.Fatalf("the dedupe bucket holds %d records after the crash, want none", n)
			}

			// Within the window every redelivery publishes again, so they
			// are held to go together; past it they find their events
			// before publishing.
			out := together(t, s, raws, stored, true, c.age == 0)
			for _, p := range out {
				if p.err != nil || p.outcome != Deduplicated {
					t.Errorf("redelivery of %s: %v, %v; want Deduplicated", p.raw.EventID, p.outcome, p.err)
				}
			}
			f.allRecorded(raws...)
		})
	}
}

// TestBatchWithAnEventTooLarge: EVENTS refuses an atomic batch as a whole
// when one event exceeds its max_msg_size. Only that event is dead-lettered
// as too_large; the others in the batch are stored.
func TestBatchWithAnEventTooLarge(t *testing.T) {
	f := newFixture(t, nil)
	s := f.service(envelope.KindBid)
	atomicCommits(t, s)
	ec := streams.EventsConfig(f.cfg)
	ec.MaxMsgSize = 32 << 10 // well above a sample bid's event, well below the big one's
	if _, err := f.js.UpdateStream(context.Background(), ec); err != nil {
		t.Fatal(err)
	}
	big := rawOf(t, samples[2], "-big")
	big.Body = []byte(`{"padding": "` + strings.Repeat("p", 40<<10) + `", ` + strings.TrimPrefix(string(big.Body), "{"))
	small := bids(t, "small", 8)

	out := together(t, s, append([]*envelope.Raw{big}, small...), time.Now(), false, true)
	if n := inAtomicBatches(t, s, "events"); n < 2 {
		t.Fatalf("%d events went in atomic batches: nothing was committed together", n)
	}
	for _, p := range out {
		var dl *deadLetter
		switch {
		case p.raw == big && (!errors.As(p.err, &dl) || dl.reason != "too_large"):
			t.Errorf("the big event: %v, %v; want a too_large dead letter", p.outcome, p.err)
		case p.raw != big && (p.err != nil || p.outcome != Normalized):
			t.Errorf("event %s: %v, %v; want Normalized", p.raw.EventID, p.outcome, p.err)
		}
	}
	events := f.events()
	if _, ok := events[big.EventID]; ok || len(events) != len(small) {
		t.Fatalf("EVENTS holds %d events (the big one: %v), want the %d small ones", len(events), ok, len(small))
	}
}

// TestProvisionAllowsAtomicBatches: Provision lets EVENTS and the dedupe
// bucket take atomic batches, and keeps it so when it runs again (a bucket
// update alone would turn it off). A normalizer bound to streams that do
// not take them publishes one by one, and normalizes all the same.
func TestProvisionAllowsAtomicBatches(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	allowed := func(name string) bool {
		t.Helper()
		st, err := f.js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().Config.AllowAtomicPublish
	}
	for range 2 {
		if err := Provision(ctx, f.js, f.cfg, []string{envelope.KindBid}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{streams.EVENTS, dedupeStream} {
			if !allowed(name) {
				t.Fatalf("stream %s takes no atomic batches after Provision", name)
			}
		}
	}

	// As provisioned by an earlier version.
	f.refuseAtomicBatches()
	s, err := New(ctx, Options{Config: f.cfg, URL: f.ns.ClientURL(), JetStream: f.js, Logger: zap.NewNop(), Kinds: []string{envelope.KindBid}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	raws := bids(t, "old", 8)
	for _, p := range together(t, s, raws, time.Now(), false, true) {
		if p.err != nil || p.outcome != Normalized {
			t.Errorf("event %s: %v, %v; want Normalized", p.raw.EventID, p.outcome, p.err)
		}
	}
	if n := inAtomicBatches(t, s, "events") + inAtomicBatches(t, s, "dedupe"); n != 0 {
		t.Errorf("%d writes went in atomic batches to streams that take none", n)
	}
	f.allRecorded(raws...)
}

// TestAtomicBatchesTurnedOff: streams that stop taking atomic batches while
// a normalizer runs (a bucket update turns it off until Provision turns it
// on again) refuse its batches; every event is then published on its own
// and normalized all the same.
func TestAtomicBatchesTurnedOff(t *testing.T) {
	f := newFixture(t, nil)
	s := f.service(envelope.KindBid)
	atomicCommits(t, s)
	f.refuseAtomicBatches()
	raws := bids(t, "off", 8)
	for _, p := range together(t, s, raws, time.Now(), false, true) {
		if p.err != nil || p.outcome != Normalized {
			t.Errorf("event %s: %v, %v; want Normalized", p.raw.EventID, p.outcome, p.err)
		}
	}
	if n := inAtomicBatches(t, s, "events"); n < 2 {
		t.Fatalf("%d events went in atomic batches: nothing was committed together", n)
	}
	f.allRecorded(raws...)
}
