package normalizer

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// letter waits for the one normalize-stage dead letter of kind.
func (f *fixture) letter(kind string) *dlq.Letter {
	f.t.Helper()
	var letters []*dlq.Letter
	natstest.CheckFor(f.t, 20*time.Second, 20*time.Millisecond, func() (err error) {
		letters, err = dlq.List(context.Background(), f.js, dlq.Filter{Stage: dlq.StageNormalize, Name: kind})
		if err == nil && len(letters) != 1 {
			err = fmt.Errorf("%d dead letters of %s", len(letters), kind)
		}
		return err
	})
	return letters[0]
}

// settled waits until kind's consumer has nothing pending or unacked.
func (f *fixture) settled(kind string) {
	f.t.Helper()
	natstest.CheckFor(f.t, 20*time.Second, 20*time.Millisecond, func() error {
		c, err := f.js.PushConsumer(context.Background(), streams.RAW, Durable(kind))
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumPending+uint64(info.NumAckPending) != 0 {
			return fmt.Errorf("consumer %s: %d pending, %d unacked", kind, info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// TestLongIDs: a lead and a chat message whose conversationId and ids are
// 3,000 bytes (once enough to close the shared NATS connection for good)
// are normalized with a bounded aggregate they share; the connection stays
// up and the next webhook is normalized too.
func TestLongIDs(t *testing.T) {
	f := newFixture(t, nil)
	nc := f.js.Conn()
	f.start(envelope.KindLead, envelope.KindChat, envelope.KindBid)
	conv, id := strings.Repeat("c", 3000), strings.Repeat("9", 3000)
	lead := rawOf(t, samples[0], "")
	lead.Body = []byte(`{"leadId": "` + id + `", "conversationId": "` + conv + `", "buyer": {"name": "Jan de Vries"}}`)
	lead.ProviderEventID = eventid.BodyID(lead.Body) // as the edge spells an id it cannot use
	lead.EventID = eventid.New(lead.Source, lead.ProviderEventID)
	chat := rawOf(t, samples[1], "")
	chat.Body = []byte(`{"messageId": "` + id + `", "conversationId": "` + conv + `", "text": "hallo"}`)
	chat.ProviderEventID = eventid.BodyID(chat.Body)
	chat.EventID = eventid.New(chat.Source, chat.ProviderEventID)
	f.publishRaw(lead, "")
	f.publishRaw(chat, "")
	f.waitCount(streams.EVENTS, 2)
	want := "mp-leads/conversation/" + natskey.Hash(conv)
	for eid, m := range f.events() {
		var ev leadstreamv1.Event
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.AggregateId != want {
			t.Errorf("event %s: aggregate %.80q, want %q", eid, ev.AggregateId, want)
		}
	}
	if st := nc.Status(); st != nats.CONNECTED {
		t.Fatalf("connection %s", st)
	}
	f.publishRaw(rawOf(t, samples[2], ""), "")
	f.waitCount(streams.EVENTS, 3)
}

func TestDedupeKey(t *testing.T) {
	long := strings.Repeat("e", 3000)
	tests := []struct {
		source, id, key string
	}{
		{"mp-leads", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "mp-leads.6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
		{"offerte", "e490Z1V1RrRVnp14", "offerte.e490Z1V1RrRVnp14"},
		{"mp-leads", long, ""},
		{"mp-leads", "a b", ""},
		{"a.b", "c", "a.b.c"},
		{"a", "b.c", "a.b.c"}, // both valid as keys; a source never has a "."
	}
	for _, tt := range tests {
		k := dedupeKey(tt.source, tt.id)
		if err := natskey.CheckKey(k); err != nil {
			t.Errorf("dedupeKey(%q, %.20q): %v", tt.source, tt.id, err)
		}
		if tt.key != "" && k != tt.key {
			t.Errorf("dedupeKey(%q, %.20q) = %q, want %q", tt.source, tt.id, k, tt.key)
		}
		if tt.key == "" && (!strings.HasPrefix(k, "=") || len(k) != 65) {
			t.Errorf("dedupeKey(%q, %.20q) = %q, want a hash", tt.source, tt.id, k)
		}
	}
	if dedupeKey("s", long) == dedupeKey("s", long+"f") {
		t.Error("two long ids share a dedupe key")
	}
}

func FuzzDedupeKey(f *testing.F) {
	f.Add("mp-leads", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	f.Add("", "")
	f.Add("s", strings.Repeat("x", 2000))
	f.Fuzz(func(t *testing.T, source, id string) {
		if err := natskey.CheckKey(dedupeKey(source, id)); err != nil {
			t.Fatalf("dedupeKey(%q, %q): %v", source, id, err)
		}
	})
}

// TestKindMismatch: a Marktplaats LMS lead signed with the chat message key
// (and a chat message with the lead key) is dead-lettered as kind_mismatch
// instead of becoming an empty event of the other type.
func TestKindMismatch(t *testing.T) {
	f := newFixture(t, nil)
	f.start(envelope.KindLead, envelope.KindChat)
	lead := rawOf(t, samples[0], "")
	lead.Kind, lead.KeyID = envelope.KindChat, config.KeyIDChatMessagePush
	chat := rawOf(t, samples[1], "")
	chat.Kind, chat.KeyID = envelope.KindLead, config.KeyIDLeadDelivery
	f.publishRaw(lead, "")
	f.publishRaw(chat, "")
	for _, c := range []struct {
		kind string
		raw  *envelope.Raw
	}{{envelope.KindChat, lead}, {envelope.KindLead, chat}} {
		l := f.letter(c.kind)
		if l.Reason != "kind_mismatch" || string(l.Body) != string(c.raw.Body) || l.Header.Get(envelope.HdrEventID) != c.raw.EventID {
			t.Errorf("%s: dead letter %+v", c.kind, l)
		}
	}
	if n := f.count(streams.EVENTS); n != 0 {
		t.Fatalf("EVENTS holds %d events, want none", n)
	}
}

// runSmallServer runs a JetStream server whose max_payload is maxPayload.
func runSmallServer(t *testing.T, maxPayload int32) *server.Server {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// TestTooLarge: a lead that fit in RAW but whose event (body plus typed
// data, about twice the body) exceeds the server's max_payload goes to DLQ
// as too_large, with the RAW body, at once and not after retries; the
// consumer moves on.
func TestTooLarge(t *testing.T) {
	const maxPayload = 64 << 10
	ns := runSmallServer(t, maxPayload)
	f := newFixtureOn(t, ns, func(c *config.Config) { c.MaxBodyBytes = 48 << 10 })
	s := f.start(envelope.KindLead)
	var published atomic.Int32
	s.afterPublish = func(string) error { published.Add(1); return nil }
	big := rawOf(t, samples[0], "-big")
	big.Body = []byte(`{"leadId": "L-big", "conversationId": "c-big", "message": "` + strings.Repeat("m", 40<<10) + `"}`)
	f.publishRaw(big, "")
	l := f.letter(envelope.KindLead)
	if l.Reason != "too_large" || string(l.Body) != string(big.Body) || !strings.Contains(l.Error, "max_payload") || l.Attempts != 1 {
		t.Fatalf("dead letter: reason %q, error %q, attempts %d, body %d bytes", l.Reason, l.Error, l.Attempts, len(l.Body))
	}
	f.publishRaw(rawOf(t, samples[0], ""), "")
	f.waitCount(streams.EVENTS, 1)
	f.settled(envelope.KindLead)
	if n := published.Load(); n != 1 {
		t.Fatalf("%d publishes to EVENTS, want 1", n)
	}
}

// TestTooLargeForEvents: a limit of EVENTS' own (max_msg_size, set by an
// operator) is met the same way: the stream refuses the event, and it is
// dead-lettered as too_large instead of retried.
func TestTooLargeForEvents(t *testing.T) {
	f := newFixture(t, nil)
	f.start(envelope.KindLead)
	ec := streams.EventsConfig(f.cfg)
	ec.MaxMsgSize = 1 << 10 // less than the sample lead's body and typed data
	if _, err := f.js.UpdateStream(context.Background(), ec); err != nil {
		t.Fatal(err)
	}
	lead := rawOf(t, samples[0], "")
	f.publishRaw(lead, "")
	l := f.letter(envelope.KindLead)
	if l.Reason != "too_large" || string(l.Body) != string(lead.Body) || l.Attempts != 1 {
		t.Fatalf("dead letter: reason %q, error %q, attempts %d", l.Reason, l.Error, l.Attempts)
	}
	f.settled(envelope.KindLead)
}
