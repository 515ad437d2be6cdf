package normalizer

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

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
