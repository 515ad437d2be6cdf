package dispatcher

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/natsstream"
)

// natsAdapterYAML is an adapters[] entry of type nats with quick retries.
// Its url defaults to the embedded server's; useNATS points it at the
// fixture's.
func natsAdapterYAML(name string) string {
	return fmt.Sprintf("  - {name: %s, type: nats, backoff_initial: 20ms, backoff_max: 200ms, max_attempts: 1000, max_age: 1h}\n", name)
}

// useNATS points every nats adapter at the fixture's server.
func (f *fixture) useNATS() {
	for i := range f.cfg.Adapters {
		if f.cfg.Adapters[i].Type == natsstream.Type {
			f.cfg.Adapters[i].URL = f.ns.ClientURL()
		}
	}
}

// startWith is start with every built adapter passed through wrap.
func (f *fixture) startWith(wrap func(adapter.Adapter) adapter.Adapter) func() {
	f.t.Helper()
	f.provision()
	s, err := New(context.Background(), Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop(),
		newAdapter: func(a *config.Adapter, log *zap.Logger) (adapter.Adapter, error) {
			ad, err := newAdapter(a, log)
			if err != nil {
				return nil, err
			}
			return wrap(ad), nil
		}})
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
	return stop
}

// crashAfterPubAck stands for a dispatcher that dies between JetStream's
// PubAck and recording the delivery: for the event named, it publishes,
// says so on published, and then does not return until the dispatcher is
// stopped. After a restart the dispatcher publishes that event again.
type crashAfterPubAck struct {
	adapter.Adapter
	id        string
	published chan struct{}
}

func (c *crashAfterPubAck) Deliver(ctx context.Context, d *adapter.Delivery) error {
	err := c.Adapter.Deliver(ctx, d)
	if err != nil || d.Event.GetId() != c.id {
		return err
	}
	select {
	case c.published <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return fmt.Errorf("dispatcher stopped before recording the delivery: %w", ctx.Err())
}

// recording notes every event id its adapter accepted.
type recording struct {
	adapter.Adapter
	mu  sync.Mutex
	ids []string
}

func (r *recording) Deliver(ctx context.Context, d *adapter.Delivery) error {
	err := r.Adapter.Deliver(ctx, d)
	if err == nil {
		r.mu.Lock()
		r.ids = append(r.ids, d.Event.GetId())
		r.mu.Unlock()
	}
	return err
}

func (r *recording) delivered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// orderedMsg is a message of an ordered stream as a subscriber decodes it.
type orderedMsg struct {
	subject string
	ce      *envelope.EventMessage
	event   *leadstreamv1.Event
	header  nats.Header
}

// readOrdered waits until stream holds n messages and reads them in stream
// order with an ordered consumer, as a subscriber does.
func (f *fixture) readOrdered(stream string, n int) []orderedMsg {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	natstest.CheckFor(f.t, 20*time.Second, 10*time.Millisecond, func() error {
		st, err := f.js.Stream(ctx, stream)
		if err != nil {
			return err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		if int(info.State.Msgs) != n {
			return fmt.Errorf("stream %s holds %d messages, want %d", stream, info.State.Msgs, n)
		}
		return nil
	})
	c, err := f.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []orderedMsg
	for len(out) < n {
		batch, err := c.Fetch(n-len(out), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			f.t.Fatal(err)
		}
		for m := range batch.Messages() {
			ce, err := envelope.FromEventMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
			if err != nil {
				f.t.Fatalf("ordered message on %s: %v", m.Subject(), err)
			}
			var ev leadstreamv1.Event
			if err := proto.Unmarshal(m.Data(), &ev); err != nil {
				f.t.Fatalf("ordered message %s: body: %v", ce.ID, err)
			}
			out = append(out, orderedMsg{subject: m.Subject(), ce: ce, event: &ev, header: m.Headers()})
		}
		if err := batch.Error(); err != nil {
			f.t.Fatal(err)
		}
	}
	return out
}

// byAggregate is the ids of msgs per ce-subject, in stream order.
func byAggregate(msgs []orderedMsg) map[string][]string {
	out := map[string][]string{}
	for _, m := range msgs {
		out[m.ce.Subject] = append(out[m.ce.Subject], m.ce.ID)
	}
	return out
}

// TestNATSAdapterCausalOrder: what arrives in EVENTS out of order (a chat
// before its lead, a lead's statuses backwards) is in the ordered stream in
// causal order per aggregate, and a dispatcher that dies between a PubAck
// and recording it, restarted, publishes that event again without a
// duplicate in the stream; an event parked across the restart still waits
// for its prerequisite.
func TestNATSAdapterCausalOrder(t *testing.T) {
	f := newFixture(t, natsAdapterYAML("subs"))
	f.cfg.Dispatcher.MaxPark = config.Dur(time.Hour)
	f.useNATS()
	crash := &crashAfterPubAck{id: "sold-7", published: make(chan struct{}, 1)}
	stop := f.startWith(func(a adapter.Adapter) adapter.Adapter { crash.Adapter = a; return crash })

	f.publish(event("chat-1", "chat.message", "conv/1", t0.Add(time.Minute)))
	f.publish(event("chat-2", "chat.message", "conv/1", t0.Add(2*time.Minute)))
	f.publish(event("lead-1", "lead.created", "conv/1", t0))
	f.publish(event("paid-7", "lead.paid", "lead/7", t0.Add(4*time.Hour)))
	f.publish(event("invoiced-7", "lead.invoiced", "lead/7", t0.Add(3*time.Hour)))
	f.publish(event("sold-7", "lead.sold", "lead/7", t0.Add(2*time.Hour)))
	f.publish(event("created-7", "lead.created", "lead/7", t0.Add(time.Hour)))
	f.publish(event("chat-3", "chat.message", "conv/3", t0)) // its lead comes after the restart
	select {
	case <-crash.published:
	case <-time.After(20 * time.Second):
		t.Fatal("sold-7 was never published")
	}
	stop()

	rec := &recording{}
	f.startWith(func(a adapter.Adapter) adapter.Adapter { rec.Adapter = a; return rec })
	f.publish(event("lead-3", "lead.created", "conv/3", t0.Add(time.Minute)))

	msgs := f.readOrdered("ORDERED_SUBS", 9)
	ids := map[string]int{}
	for _, m := range msgs {
		ids[m.ce.ID]++
		if m.header.Get(natsstream.HeaderOrphan) != "" {
			t.Errorf("%s marked as an orphan", m.ce.ID)
		}
		if want := "ordered.subs." + m.event.Type + ".t1." + streams.AggregateToken(m.event.AggregateId); m.subject != want || m.ce.Type != m.event.Type || m.ce.ID != m.event.Id {
			t.Errorf("%s of type %s on %s (ce-type %s), want subject %s", m.event.Id, m.event.Type, m.subject, m.ce.Type, want)
		}
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("%s is %d times in the ordered stream, want once", id, n)
		}
	}
	got := byAggregate(msgs)
	for agg, want := range map[string][]string{
		"conv/1": {"lead-1", "chat-1", "chat-2"},
		"lead/7": {"created-7", "sold-7", "invoiced-7", "paid-7"},
		"conv/3": {"lead-3", "chat-3"},
	} {
		if !slices.Equal(got[agg], want) {
			t.Errorf("%s in the ordered stream: %v, want %v", agg, got[agg], want)
		}
	}
	// The restarted dispatcher did publish sold-7 again: JetStream stored it
	// once because its Nats-Msg-Id was in the duplicate window.
	if !slices.Contains(rec.delivered(), "sold-7") {
		t.Errorf("after the restart the dispatcher delivered %v, want sold-7 again among them", rec.delivered())
	}
}

// TestNATSAdapterOrphans: an event whose prerequisite never comes is in the
// ordered stream after max_park, marked as an orphan with what it went
// without; the others are not.
func TestNATSAdapterOrphans(t *testing.T) {
	f := newFixture(t, natsAdapterYAML("subs"))
	f.useNATS()
	f.startWith(func(a adapter.Adapter) adapter.Adapter { return a })
	start := time.Now()
	f.publish(event("chat-9", "chat.message", "conv/9", t0))
	f.publish(event("paid-8", "lead.paid", "lead/8", t0))
	f.publish(event("lead-10", "lead.created", "lead/10", t0))

	msgs := f.readOrdered("ORDERED_SUBS", 3)
	if waited := time.Since(start); waited < f.cfg.Dispatcher.MaxPark.Duration {
		t.Fatalf("all in the stream after %s, before max_park %s", waited, f.cfg.Dispatcher.MaxPark.Duration)
	}
	if msgs[0].ce.ID != "lead-10" {
		t.Errorf("first in the stream: %s, want lead-10, which waits for nothing", msgs[0].ce.ID)
	}
	// What each went without: the chat its conversation's lead, the payment
	// the invoice before it.
	wantMissing := map[string]string{"chat-9": "lead.created", "paid-8": "lead.invoiced", "lead-10": ""}
	for _, m := range msgs {
		orphan := m.header.Get(natsstream.HeaderOrphan) == "true"
		if want := m.ce.ID != "lead-10"; orphan != want {
			t.Errorf("%s: orphan %v, want %v", m.ce.ID, orphan, want)
		}
		missing, err := envelope.HeaderValue(m.header, natsstream.HeaderMissing)
		if err != nil || missing != wantMissing[m.ce.ID] {
			t.Errorf("%s: %s %q (%v), want %q", m.ce.ID, natsstream.HeaderMissing, missing, err, wantMissing[m.ce.ID])
		}
	}
}
