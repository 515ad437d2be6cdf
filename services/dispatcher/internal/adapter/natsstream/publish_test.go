package natsstream_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/adaptertest"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/natsstream"
)

// connected builds an adapter named crm on s and connects it; it is closed
// when the test ends.
func connected(t *testing.T, s *server.Server, cfg natsstream.Config) *natsstream.Adapter {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "crm"
	}
	cfg.URL = s.ClientURL()
	a, err := natsstream.New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := a.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	return a
}

func deliver(a adapter.Adapter, d *adapter.Delivery) error {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	return a.Deliver(ctx, d)
}

// stored reads every message of stream in order, as a subscriber with an
// ordered consumer does.
func stored(t *testing.T, js jetstream.JetStream, stream string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.State.Msgs)
	if n == 0 {
		return nil
	}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < n {
		batch, err := c.Fetch(n-len(out), jetstream.FetchMaxWait(bound))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestStoredMessage: what a subscriber of the ordered stream gets is what
// EVENTS holds, body and CloudEvents headers, on the ordered subject, with
// the orphan markers on an orphan only.
func TestStoredMessage(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	a := connected(t, s, natsstream.Config{})

	lead := adaptertest.Event("00000000-0000-5000-8000-000000000001")
	lead.Source = "mp leads/ü" // ce-source needs percent-encoding
	paid := adaptertest.Event("00000000-0000-5000-8000-000000000002")
	paid.Type = "lead.paid"
	missing := []string{"lead.invoiced", "bid.placed=a b"}
	if err := deliver(a, &adapter.Delivery{Event: lead, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	if err := deliver(a, &adapter.Delivery{Event: paid, Attempt: 2, Orphan: true, Missing: missing}); err != nil {
		t.Fatal(err)
	}

	msgs := stored(t, js, "ORDERED_CRM")
	if len(msgs) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(msgs))
	}
	for i, ev := range []*leadstreamv1.Event{lead, paid} {
		m := msgs[i]
		if want := "ordered.crm." + ev.Type + ".demo-dealer." + streams.AggregateToken(ev.AggregateId); m.Subject() != want {
			t.Errorf("message %d on %s, want %s", i, m.Subject(), want)
		}
		var got leadstreamv1.Event
		if err := proto.Unmarshal(m.Data(), &got); err != nil || !proto.Equal(&got, ev) {
			t.Errorf("message %d body decodes to %v (%v), want the event", i, &got, err)
		}
		// Every header EVENTS carries, with the same value.
		want := envelope.EventMsg("events.x", ev, nil).Header
		for k := range want {
			if got := m.Headers().Get(k); got != want.Get(k) {
				t.Errorf("message %d header %s = %q, want %q as on EVENTS", i, k, got, want.Get(k))
			}
		}
		ce, err := envelope.FromEventMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		if err != nil || ce.ID != ev.Id || ce.Source != envelope.CESource(ev.Source) || ce.Subject != ev.AggregateId {
			t.Errorf("message %d decodes to %+v (%v)", i, ce, err)
		}
	}
	if h := msgs[0].Headers(); h.Get(natsstream.HeaderOrphan) != "" || h.Get(natsstream.HeaderMissing) != "" || h.Get(natsstream.HeaderAttempt) != "1" {
		t.Errorf("event with its prerequisites: orphan %q, missing %q, attempt %q; want no markers, attempt 1",
			h.Get(natsstream.HeaderOrphan), h.Get(natsstream.HeaderMissing), h.Get(natsstream.HeaderAttempt))
	}
	h := msgs[1].Headers()
	got, err := envelope.HeaderValue(h, natsstream.HeaderMissing)
	if h.Get(natsstream.HeaderOrphan) != "true" || err != nil || got != "lead.invoiced,bid.placed=a b" || h.Get(natsstream.HeaderAttempt) != "2" {
		t.Errorf("orphan: orphan %q, missing %q (%v), attempt %q; want true, %q, 2", h.Get(natsstream.HeaderOrphan), got, err, h.Get(natsstream.HeaderAttempt), strings.Join(missing, ","))
	}
	if raw := h.Get(natsstream.HeaderMissing); strings.Contains(raw, " ") {
		t.Errorf("missing header %q not percent-encoded", raw)
	}
}

// TestRedeliveryStoredOnce: a delivery made again (the PubAck was lost, the
// dispatcher crashed before recording it) is a JetStream duplicate, and a
// success: subscribers see the event once.
func TestRedeliveryStoredOnce(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	a := connected(t, s, natsstream.Config{})
	ev := adaptertest.Event("00000000-0000-5000-8000-000000000003")
	for attempt := 1; attempt <= 3; attempt++ {
		if err := deliver(a, &adapter.Delivery{Event: ev, Attempt: attempt}); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	if msgs := stored(t, js, "ORDERED_CRM"); len(msgs) != 1 || msgs[0].Headers().Get(natsstream.HeaderAttempt) != "1" {
		t.Fatalf("stream holds %d messages, want 1, the first attempt's", len(msgs))
	}
}

// TestConnectCreatesAndUpdatesStream: Connect creates the ordered stream as
// configured and, on the next start, brings an existing one to the
// configuration.
func TestConnectCreatesAndUpdatesStream(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	a := connected(t, s, natsstream.Config{Name: "my-crm", MaxAge: time.Hour, DuplicateWindow: 10 * time.Minute})
	st, err := js.Stream(ctx, "ORDERED_MY_CRM")
	if err != nil {
		t.Fatalf("ordered stream not created: %v", err)
	}
	c := st.CachedInfo().Config
	if !slices.Equal(c.Subjects, []string{"ordered.my-crm.>"}) || c.Storage != jetstream.FileStorage || c.MaxAge != time.Hour || c.Duplicates != 10*time.Minute || c.Replicas != 1 {
		t.Fatalf("stream config %+v", c)
	}
	_ = a.Close(ctx)

	connected(t, s, natsstream.Config{Name: "my-crm", MaxAge: 48 * time.Hour, DuplicateWindow: 3 * time.Hour})
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.MaxAge != 48*time.Hour || c.Duplicates != 3*time.Hour {
		t.Fatalf("stream not updated: max age %s, duplicates %s", c.MaxAge, c.Duplicates)
	}
}

// TestConnectRefusesTakenSubjects: subjects another stream holds are a
// configuration that can never work: Connect says so.
func TestConnectRefusesTakenSubjects(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"ordered.crm.lead.>"}}); err != nil {
		t.Fatal(err)
	}
	a, err := natsstream.New(natsstream.Config{Name: "crm", URL: s.ClientURL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	err = a.Connect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "ORDERED_CRM") {
		t.Fatalf("Connect with the subjects taken: %v, want an error naming the stream", err)
	}
	if err := a.Deliver(context.Background(), &adapter.Delivery{Event: adaptertest.Event("e"), Attempt: 1}); !errors.Is(err, adapter.ErrNotConnected) {
		t.Fatalf("Deliver after a failed Connect: %v, want ErrNotConnected", err)
	}
}

// TestClassification: the failures a real JetStream gives, each as
// retryable or terminal as the dispatcher must treat it.
func TestClassification(t *testing.T) {
	ctx := context.Background()

	t.Run("wrong stream", func(t *testing.T) {
		s := natstest.RunServer(t)
		_, js := natstest.Connect(t, s)
		a := connected(t, s, natsstream.Config{})
		// An operator deleted the ordered stream and another took its subjects.
		if err := js.DeleteStream(ctx, "ORDERED_CRM"); err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"ordered.crm.>"}}); err != nil {
			t.Fatal(err)
		}
		err := deliver(a, &adapter.Delivery{Event: adaptertest.Event("e1"), Attempt: 1})
		if !adapter.IsTerminal(err) || !errors.Is(err, natsstream.ErrWrongStream) {
			t.Fatalf("publish into another stream: %v, want terminal ErrWrongStream", err)
		}
		if msgs := stored(t, js, "OTHER"); len(msgs) != 0 {
			t.Fatalf("the other stream stored %d messages", len(msgs))
		}
	})

	t.Run("stream gone", func(t *testing.T) {
		s := natstest.RunServer(t)
		_, js := natstest.Connect(t, s)
		a := connected(t, s, natsstream.Config{})
		if err := js.DeleteStream(ctx, "ORDERED_CRM"); err != nil {
			t.Fatal(err)
		}
		// No responders: the next start of the dispatcher creates it again.
		err := deliver(a, &adapter.Delivery{Event: adaptertest.Event("e2"), Attempt: 1})
		if err == nil || adapter.IsTerminal(err) || !errors.Is(err, jetstream.ErrNoStreamResponse) {
			t.Fatalf("publish without the stream: %v, want retryable no responders", err)
		}
	})

	t.Run("too large", func(t *testing.T) {
		s := natstest.RunServer(t)
		nc, _ := natstest.Connect(t, s)
		a := connected(t, s, natsstream.Config{})
		ev := adaptertest.Event("e3")
		ev.Payload = make([]byte, nc.MaxPayload()+1)
		err := deliver(a, &adapter.Delivery{Event: ev, Attempt: 1})
		if !adapter.IsTerminal(err) || !errors.Is(err, natsstream.ErrTooLarge) {
			t.Fatalf("publish beyond max_payload: %v, want terminal ErrTooLarge", err)
		}
	})

	t.Run("unpublishable subject", func(t *testing.T) {
		s := natstest.RunServer(t)
		a := connected(t, s, natsstream.Config{})
		ev := adaptertest.Event("e4")
		ev.Tenant = "a tenant"
		if err := deliver(a, &adapter.Delivery{Event: ev, Attempt: 1}); !adapter.IsTerminal(err) {
			t.Fatalf("tenant with a space: %v, want terminal", err)
		}
	})

	t.Run("server down", func(t *testing.T) {
		s := natstest.RunServer(t)
		a := connected(t, s, natsstream.Config{})
		s.Shutdown()
		s.WaitForShutdown()
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := a.Deliver(ctx, &adapter.Delivery{Event: adaptertest.Event("e5"), Attempt: 1})
		if err == nil || adapter.IsTerminal(err) || errors.Is(err, adapter.ErrNotConnected) {
			t.Fatalf("publish with the server down: %v, want a retryable failure", err)
		}
	})
}
