package normalizer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/testvectors"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// sample is one shared payload as the edge would store it.
type sample struct {
	file, source, provider, kind, keyID string
}

var samples = []sample{
	{"marktplaats-lms/lead.json", "mp-leads", config.ProviderMarktplaatsLMS, envelope.KindLead, config.KeyIDLeadDelivery},
	{"marktplaats-lms/chat.json", "mp-leads", config.ProviderMarktplaatsLMS, envelope.KindChat, config.KeyIDChatMessagePush},
	{"marktplaats-api/bid-placed.json", "mp-api", config.ProviderMarktplaatsAPI, envelope.KindBid, "secret#0"},
	{"marktplaats-api/bid-closed.json", "mp-api", config.ProviderMarktplaatsAPI, envelope.KindBid, "secret#0"},
	{"marktplaats-api/asq-created.json", "mp-api", config.ProviderMarktplaatsAPI, envelope.KindASQ, "secret#0"},
	{"marktplaats-api/transaction-status-changed.json", "mp-api", config.ProviderMarktplaatsAPI, envelope.KindTransaction, "secret#0"},
	{"marktplaats-api/call.json", "mp-api", config.ProviderMarktplaatsAPI, envelope.KindCall, "secret#0"},
	{"marktplaats-api/doc-example.json", "mp-api", config.ProviderMarktplaatsAPI, envelope.KindUnknown, "secret#0"},
	{"offerte-adviseur/lead-created.json", "offerte", config.ProviderOfferteAdviseur, envelope.KindLead, "secret#0"},
	{"offerte-adviseur/lead-sold.json", "offerte", config.ProviderOfferteAdviseur, envelope.KindLead, "secret#0"},
	{"offerte-adviseur/lead-invoiced.json", "offerte", config.ProviderOfferteAdviseur, envelope.KindLead, "secret#0"},
	{"offerte-adviseur/lead-paid.json", "offerte", config.ProviderOfferteAdviseur, envelope.KindLead, "secret#0"},
	{"offerte-adviseur/invoice-created.json", "offerte", config.ProviderOfferteAdviseur, envelope.KindInvoice, "secret#0"},
	{"offerte-adviseur/invoice-paid.json", "offerte", config.ProviderOfferteAdviseur, envelope.KindInvoice, "secret#0"},
	{"lokalebasen/enquiry-created.json", "lokalebasen", config.ProviderLokalebasen, envelope.KindEnquiry, "token#0"},
	{"lokalebasen/enquiry-created-client.json", "lokalebasen", config.ProviderLokalebasen, envelope.KindEnquiry, "token#0"},
}

// rawOf builds the RAW envelope the edge stores for smp; suffix, when set,
// makes its event id unique.
func rawOf(t *testing.T, smp sample, suffix string) *envelope.Raw {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(testvectors.Dir(t), "payloads", smp.file))
	if err != nil {
		t.Fatal(err)
	}
	var ids struct {
		ID        json.RawMessage `json:"id"`
		LeadID    string          `json:"leadId"`
		MessageID string          `json:"messageId"`
	}
	_ = json.Unmarshal(body, &ids)
	pid := ids.LeadID + ids.MessageID
	if pid == "" {
		var s string
		if json.Unmarshal(ids.ID, &s) == nil {
			pid = s
		}
	}
	if pid == "" || smp.provider == config.ProviderLokalebasen {
		pid = eventid.BodyID(body)
	}
	pid += suffix
	return &envelope.Raw{
		Source: smp.source, Provider: smp.provider, Tenant: "demo-dealer", Kind: smp.kind,
		EventID: eventid.New(smp.source, pid), ProviderEventID: pid,
		ReceivedAt: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), Method: "POST", Path: "/hooks/" + smp.source,
		KeyID: smp.keyID, ContentType: "application/json", Body: body,
	}
}

type fixture struct {
	t   *testing.T
	ns  *server.Server
	cfg *config.Config
	js  jetstream.JetStream
}

func newFixture(t *testing.T, mod func(*config.Config)) *fixture {
	t.Helper()
	return newFixtureOn(t, natstest.RunServer(t), mod)
}

// newFixtureOn is newFixture on a server of the test's own.
func newFixtureOn(t *testing.T, ns *server.Server, mod func(*config.Config)) *fixture {
	t.Helper()
	vec := testvectors.Load(t)
	cfg, err := config.Parse([]byte(vec.ConfigYAML()+`
normalizer: {ack_wait: 5s, handler_timeout: 2s, retries: 1}
`), vec.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if mod != nil {
		mod(cfg)
	}
	_, js := natstest.Connect(t, ns)
	if err := streams.Ensure(context.Background(), js, streams.RawConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ns: ns, cfg: cfg, js: js}
}

// start runs a normalizer for kinds until the test ends.
func (f *fixture) start(kinds ...string) *Service {
	f.t.Helper()
	s := f.service(kinds...) // closed after the cleanup below
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("normalizer Run: %v", err)
		}
	})
	return s
}

// publishRaw stores r in RAW under msgID (the edge uses source:provider id;
// a different id stands for a provider redelivery after RAW's window).
func (f *fixture) publishRaw(r *envelope.Raw, msgID string) uint64 {
	f.t.Helper()
	m := r.Msg()
	if msgID != "" {
		m.Header.Set(nats.MsgIdHdr, msgID)
	}
	ack, err := f.js.PublishMsg(context.Background(), m)
	if err != nil {
		f.t.Fatal(err)
	}
	return ack.Sequence
}

func (f *fixture) count(stream string) uint64 {
	f.t.Helper()
	st, err := f.js.Stream(context.Background(), stream)
	if err != nil {
		return 0
	}
	info, err := st.Info(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return info.State.Msgs
}

func (f *fixture) waitCount(stream string, want uint64) {
	f.t.Helper()
	natstest.CheckFor(f.t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := f.count(stream); n != want {
			return fmt.Errorf("%s holds %d, want %d", stream, n, want)
		}
		return nil
	})
}

// events returns EVENTS' messages by event id, failing on a second message
// with the same id.
func (f *fixture) events() map[string]*jetstream.RawStreamMsg {
	f.t.Helper()
	out := map[string]*jetstream.RawStreamMsg{}
	st, err := f.js.Stream(context.Background(), streams.EVENTS)
	if err != nil {
		f.t.Fatal(err)
	}
	info, _ := st.Info(context.Background())
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			f.t.Fatal(err)
		}
		id, err := envelope.HeaderValue(m.Header, envelope.HdrCEID)
		if err != nil {
			f.t.Fatalf("EVENTS sequence %d: %v", seq, err)
		}
		if _, dup := out[id]; dup {
			f.t.Fatalf("EVENTS holds event %s twice", id)
		}
		out[id] = m
	}
	return out
}

func TestNormalizeSamples(t *testing.T) {
	f := newFixture(t, nil)
	f.start()
	raws := map[string]*envelope.Raw{}
	var docSeq uint64
	for _, smp := range samples {
		r := rawOf(t, smp, "")
		seq := f.publishRaw(r, "")
		raws[r.EventID] = r
		if smp.kind == envelope.KindUnknown {
			docSeq = seq
		}
	}
	f.waitCount(streams.EVENTS, uint64(len(samples)-1))
	f.waitCount(streams.DLQ, 1)

	for id, m := range f.events() {
		r, ok := raws[id]
		if !ok {
			t.Fatalf("unexpected event %s", id)
		}
		var ev leadstreamv1.Event
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Id != id || ev.Source != r.Source || ev.Tenant != "demo-dealer" || string(ev.Payload) != string(r.Body) {
			t.Errorf("event %s: envelope %v", id, &ev)
		}
		if ev.RawRef.GetStream() != streams.RAW || ev.RawRef.GetSequence() == 0 {
			t.Errorf("event %s: raw ref %v", id, ev.RawRef)
		}
		// The last token is the aggregate's: every event of one lead,
		// conversation or transaction on one partition of a dispatcher.
		want := fmt.Sprintf("events.%s.demo-dealer.%s", ev.Type, streams.AggregateToken(ev.AggregateId))
		if ev.AggregateId == "" || len(streams.AggregateToken(ev.AggregateId)) != 16 {
			t.Errorf("event %s: aggregate %q, token %q", id, ev.AggregateId, streams.AggregateToken(ev.AggregateId))
		}
		if m.Subject != want {
			t.Errorf("event %s (%s) on subject %s, want %s", id, ev.Type, m.Subject, want)
		}
		ce, err := envelope.FromEventMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err != nil {
			t.Errorf("event %s: %v", id, err)
			continue
		}
		if ce.Time.IsZero() || ce.Type != ev.Type || ce.Subject != ev.AggregateId || m.Header.Get(nats.MsgIdHdr) != id {
			t.Errorf("event %s: headers %v", id, m.Header)
		}
	}

	letters, err := dlq.List(context.Background(), f.js, dlq.Filter{Stage: dlq.StageNormalize})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(letters))
	}
	l := letters[0]
	if l.Name != envelope.KindUnknown || l.Reason != "unsupported_type" || l.Sequence != docSeq ||
		l.Subject != "raw.marktplaats-api.unknown.mp-api" || l.Error == "" || l.Attempts < 1 {
		t.Fatalf("dead letter %+v", l)
	}
	if string(l.Body) != string(raws[l.Header.Get(envelope.HdrEventID)].Body) {
		t.Fatalf("dead letter body differs from RAW")
	}
	// Nothing is left unacked: every RAW message is in EVENTS or DLQ.
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		for _, k := range envelope.Kinds {
			c, err := f.js.PushConsumer(context.Background(), streams.RAW, Durable(k))
			if err != nil {
				return err
			}
			info, err := c.Info(context.Background())
			if err != nil {
				return err
			}
			if info.NumPending+uint64(info.NumAckPending) != 0 {
				return fmt.Errorf("consumer %s: %d pending, %d unacked", k, info.NumPending, info.NumAckPending)
			}
		}
		return nil
	})
}

// TestRedeliveredManyTimes: one provider event delivered many times,
// interleaved with others, some after EVENTS' duplicate window has passed,
// gives exactly one event.
func TestRedeliveredManyTimes(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.Streams.EventsDuplicateWindow = config.Dur(200 * time.Millisecond) })
	f.start()
	bid := rawOf(t, samples[2], "")
	other := 0
	publishOthers := func() {
		for range 3 {
			other++
			f.publishRaw(rawOf(t, samples[4], fmt.Sprintf("-%d", other)), "")
		}
	}
	for i := range 4 {
		f.publishRaw(bid, fmt.Sprintf("redelivery-%d", i))
		publishOthers()
	}
	f.waitCount(streams.EVENTS, uint64(1+other))
	// Past the window: the dedupe set still knows the id. (JetStream's
	// window runs on the server's clock; waiting it out is the only way.)
	past := time.Now().Add(300 * time.Millisecond)
	natstest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		if time.Now().Before(past) {
			return errors.New("window not passed yet")
		}
		return nil
	})
	for i := range 3 {
		f.publishRaw(bid, fmt.Sprintf("late-redelivery-%d", i))
		publishOthers()
	}
	f.waitCount(streams.EVENTS, uint64(1+other))
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		c, _ := f.js.PushConsumer(context.Background(), streams.RAW, Durable(envelope.KindBid))
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.AckFloor.Stream == 0 || info.NumPending+uint64(info.NumAckPending) != 0 {
			return fmt.Errorf("bid consumer not done: %+v", info.AckFloor)
		}
		return nil
	})
	if ev := f.events(); len(ev) != 1+other {
		t.Fatalf("EVENTS holds %d events, want %d", len(ev), 1+other)
	}
}

// TestCrashSafety: a fault right after the EVENTS publish, or right after
// the dedupe write, stands for a crash before the ack. The redelivery
// yields no second event, also when it comes after EVENTS' duplicate window.
func TestCrashSafety(t *testing.T) {
	for _, c := range []struct {
		name   string
		window time.Duration
		at     string
		// hooks is how often the fault hook runs: within the window a
		// redelivery publishes again (and JetStream drops it) until the
		// hook lets it pass; past the window it finds the event in EVENTS,
		// and after the dedupe write it finds the id, and stops there.
		hooks int32
	}{
		{"after publish, within window", 2 * time.Hour, "publish", 3},
		{"after publish, past window", 100 * time.Millisecond, "publish", 1},
		{"after dedupe write", 2 * time.Hour, "dedupe", 1},
		{"after dedupe write, past window", 100 * time.Millisecond, "dedupe", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(cfg *config.Config) { cfg.Streams.EventsDuplicateWindow = config.Dur(c.window) })
			s := f.start(envelope.KindTransaction)
			var faults atomic.Int32
			crash := func(string) error {
				if faults.Add(1) <= 2 {
					return errors.New("injected crash")
				}
				return nil
			}
			if c.at == "publish" {
				s.afterPublish = crash
			} else {
				s.afterDedupe = crash
			}
			f.publishRaw(rawOf(t, samples[5], ""), "")
			natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
				c, _ := f.js.PushConsumer(context.Background(), streams.RAW, Durable(envelope.KindTransaction))
				info, err := c.Info(context.Background())
				if err != nil {
					return err
				}
				if info.AckFloor.Stream != 1 {
					return fmt.Errorf("not acked yet (faults %d)", faults.Load())
				}
				return nil
			})
			if n := faults.Load(); n != c.hooks {
				t.Fatalf("fault hook ran %d times, want %d", n, c.hooks)
			}
			if ev := f.events(); len(ev) != 1 {
				t.Fatalf("EVENTS holds %d events, want 1", len(ev))
			}
		})
	}
}

// TestTwoInstances: two normalizers of the same kind share its durable
// consumer; a burst ends up in EVENTS exactly once each.
func TestTwoInstances(t *testing.T) {
	f := newFixture(t, nil)
	f.start(envelope.KindBid)
	f.start(envelope.KindBid)
	const n = 300
	for i := range n {
		f.publishRaw(rawOf(t, samples[2+i%2], fmt.Sprintf("-%d", i)), "")
	}
	f.waitCount(streams.EVENTS, n)
	if ev := f.events(); len(ev) != n {
		t.Fatalf("EVENTS holds %d distinct events, want %d", len(ev), n)
	}
}

// TestReplay: a replay over an already normalized RAW adds nothing; after
// EVENTS is purged it rebuilds the same events, byte for byte.
func TestReplay(t *testing.T) {
	f := newFixture(t, nil)
	s := f.start()
	for _, smp := range samples {
		f.publishRaw(rawOf(t, smp, ""), "")
	}
	want := uint64(len(samples) - 1)
	f.waitCount(streams.EVENTS, want)
	before := f.events()

	rep, err := s.Replay(context.Background(), ReplayFrom{Seq: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published != 0 || rep.Present != int(want) || rep.Read != len(samples) || rep.Failed != 1 {
		t.Fatalf("replay over intact EVENTS: %+v", rep)
	}
	if n := f.count(streams.EVENTS); n != want {
		t.Fatalf("EVENTS grew to %d", n)
	}

	st, _ := f.js.Stream(context.Background(), streams.EVENTS)
	if err := st.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Replay(context.Background(), ReplayFrom{Time: time.Now().Add(-time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published != int(want) {
		t.Fatalf("replay after purge: %+v", rep)
	}
	after := f.events()
	if len(after) != len(before) {
		t.Fatalf("rebuilt %d events, had %d", len(after), len(before))
	}
	for id, m := range before {
		if a, ok := after[id]; !ok || string(a.Data) != string(m.Data) || a.Subject != m.Subject {
			t.Errorf("event %s not rebuilt identically", id)
		}
	}
	// A replay limited to kinds reads only those.
	rep, err = s.Replay(context.Background(), ReplayFrom{Seq: 1}, []string{envelope.KindChat})
	if err != nil || rep.Read != 1 || rep.Present != 1 {
		t.Fatalf("replay of chat: %+v %v", rep, err)
	}
}

// TestDeadLetterReplay: a dead letter that still fails stays; one that maps
// now is normalized and leaves DLQ; drop removes one.
func TestDeadLetterReplay(t *testing.T) {
	f := newFixture(t, nil)
	s := f.start()
	doc := samples[7]
	f.publishRaw(rawOf(t, doc, ""), "")
	f.waitCount(streams.DLQ, 1)
	letters, err := dlq.List(context.Background(), f.js, dlq.Filter{})
	if err != nil || len(letters) != 1 {
		t.Fatalf("list: %v %v", letters, err)
	}
	if _, err := s.ReplayDeadLetter(context.Background(), letters[0].Seq); err == nil {
		t.Fatal("replay of a still-unsupported letter succeeded")
	}
	if n := f.count(streams.DLQ); n != 1 {
		t.Fatalf("DLQ holds %d after a failed replay, want 1", n)
	}

	// A letter whose body maps today (say, after a mapping fix).
	good := rawOf(t, samples[2], "-fixed")
	l := &dlq.Letter{Stage: dlq.StageNormalize, Name: envelope.KindBid, Reason: "unsupported_type", Subject: good.Subject(),
		Sequence: 99, Attempts: 1, Header: good.Msg().Header, Body: good.Body}
	ack, err := f.js.PublishMsg(context.Background(), l.Msg())
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.ReplayDeadLetter(context.Background(), ack.Sequence)
	if err != nil || out != Normalized {
		t.Fatalf("replay: %v %v", out, err)
	}
	if _, ok := f.events()[good.EventID]; !ok {
		t.Fatal("replayed dead letter not in EVENTS")
	}
	if _, err := dlq.Get(context.Background(), f.js, ack.Sequence); !errors.Is(err, dlq.ErrNotFound) {
		t.Fatalf("replayed letter still in DLQ: %v", err)
	}
	if err := dlq.Drop(context.Background(), f.js, letters[0].Seq); err != nil {
		t.Fatal(err)
	}
	if n := f.count(streams.DLQ); n != 0 {
		t.Fatalf("DLQ holds %d after drop", n)
	}
}

// TestPanicDeadLetters: a handler that panics is retried, then dead-lettered
// with reason "panic" instead of blocking its consumer.
func TestPanicDeadLetters(t *testing.T) {
	f := newFixture(t, nil)
	s := f.start(envelope.KindASQ)
	s.afterPublish = func(string) error { panic("injected") }
	f.publishRaw(rawOf(t, samples[4], ""), "")
	f.waitCount(streams.DLQ, 1)
	letters, _ := dlq.List(context.Background(), f.js, dlq.Filter{Stage: dlq.StageNormalize, Name: envelope.KindASQ})
	if len(letters) != 1 || letters[0].Reason != "panic" {
		t.Fatalf("letters %+v", letters)
	}
}

// TestRetriesExhausted: a message failing transiently at its last delivery
// is dead-lettered instead of staying unacked in RAW.
func TestRetriesExhausted(t *testing.T) {
	f := newFixture(t, func(c *config.Config) { c.Normalizer.MaxDeliver = 2 })
	s := f.start(envelope.KindCall)
	var calls atomic.Int32
	s.afterPublish = func(string) error { calls.Add(1); return errors.New("injected outage") }
	f.publishRaw(rawOf(t, samples[6], ""), "")
	f.waitCount(streams.DLQ, 1)
	letters, _ := dlq.List(context.Background(), f.js, dlq.Filter{Stage: dlq.StageNormalize, Name: envelope.KindCall})
	if len(letters) != 1 || letters[0].Reason != "retries_exhausted" || letters[0].Attempts != 2 {
		t.Fatalf("letters %+v", letters)
	}
	// First delivery: tried and retried once in process; the last one is
	// dead-lettered at its first failure.
	if n := calls.Load(); n != 3 {
		t.Fatalf("handler ran %d times, want 3", n)
	}
}

// TestNewOnlyBinds: on a JetStream nothing was provisioned on, New creates
// nothing and names everything it misses; after Provision it starts.
func TestNewOnlyBinds(t *testing.T) {
	f := newFixture(t, nil)
	_, err := New(context.Background(), Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop(), Kinds: []string{"lead", "chat"}})
	if !errors.Is(err, streams.ErrNotProvisioned) {
		t.Fatalf("New = %v, want ErrNotProvisioned", err)
	}
	for _, want := range []string{"stream EVENTS", "stream DLQ", "bucket dedupe", "consumer RAW > normalizer-lead", "consumer RAW > normalizer-chat"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	if _, err := f.js.Stream(context.Background(), streams.EVENTS); err == nil {
		t.Fatal("New created EVENTS")
	}
	if err := Provision(context.Background(), f.js, f.cfg, []string{"lead", "chat"}); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop(), Kinds: []string{"lead", "chat"}})
	if err != nil {
		t.Fatalf("New after Provision: %v", err)
	}
	s.Close()
}
