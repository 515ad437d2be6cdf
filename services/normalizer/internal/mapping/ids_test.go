package mapping

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/streams"
)

// idField is a payload whose aggregate comes from one id field: body has a
// %s where that id goes (as a JSON string), aggregate is the aggregate's
// "<source>/<type>/" before the id.
type idField struct {
	name, provider, kind, body, aggregate string
}

var idFields = []idField{
	{"lms lead conversationId", lms, "lead", `{"leadId": "L-1", "conversationId": %s}`, "mp-leads/conversation/"},
	{"lms lead leadId", lms, "lead", `{"leadId": %s}`, "mp-leads/lead/"},
	{"lms chat conversationId", lms, "chat", `{"messageId": "m-1", "conversationId": %s}`, "mp-leads/conversation/"},
	{"api bid advertisementItemId", api, "bid", `{"id": "e-1", "eventType": "BidPlacedEvent", "eventData": {"advertisementItemId": %s}}`, "mp-api/advertisement/"},
	{"api asq advertisementItemId", api, "asq", `{"id": "e-1", "eventType": "AsqCreatedEvent", "eventData": {"advertisementItemId": %s}}`, "mp-api/advertisement/"},
	{"api transactionId", api, "transaction", `{"id": "e-1", "eventType": "transactionStatusChanged", "eventData": {"transactionId": %s, "oldStatus": "CREATED", "newStatus": "PENDING"}}`, "mp-api/transaction/"},
	{"api callId", api, "call", `{"id": "e-1", "eventData": {"callId": %s, "eventType": "0"}}`, "mp-api/call/"},
	{"offerte lead_id", offerte, "lead", `{"id": "e-1", "type": "lead.sold", "payload": {"lead_id": %s}}`, "offerte/lead/"},
	{"offerte lead.created id", offerte, "lead", `{"id": "e-1", "type": "lead.created", "payload": {"id": %s}}`, "offerte/lead/"},
	{"offerte invoice_id", offerte, "invoice", `{"id": "e-1", "type": "invoice.created", "payload": {"invoice_id": %s}}`, "offerte/invoice/"},
}

func (f idField) mapID(id string) (*envelopeResult, error) {
	q, err := json.Marshal(id)
	if err != nil {
		return nil, err
	}
	ev, err := mapBody(f.provider, f.kind, "", []byte(fmt.Sprintf(f.body, q)))
	if err != nil {
		return nil, err
	}
	return &envelopeResult{aggregate: ev.AggregateId, typ: ev.Type, tenant: ev.Tenant}, nil
}

type envelopeResult struct{ aggregate, typ, tenant string }

// TestAggregateIDs: an id that is short and printable stays in the
// aggregate as it is (what golden files and stored state rely on); a long
// one (the 3,000 bytes that once closed the NATS connection) or one with
// control characters becomes its natskey.Hash.
func TestAggregateIDs(t *testing.T) {
	long := strings.Repeat("c", 3000)
	ids := []struct {
		id, want string
	}{
		{"c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394", "c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394"},
		{"12345", "12345"},
		{"with space.and*café", "with space.and*café"},
		{strings.Repeat("x", natskey.MaxIDLen), strings.Repeat("x", natskey.MaxIDLen)},
		{strings.Repeat("x", natskey.MaxIDLen+1), natskey.Hash(strings.Repeat("x", natskey.MaxIDLen+1))},
		{long, natskey.Hash(long)},
		{"tab\tin-id", natskey.Hash("tab\tin-id")},
	}
	for _, f := range idFields {
		for _, tt := range ids {
			t.Run(fmt.Sprintf("%s/%.20q", f.name, tt.id), func(t *testing.T) {
				got, err := f.mapID(tt.id)
				if err != nil {
					t.Fatal(err)
				}
				if want := f.aggregate + tt.want; got.aggregate != want {
					t.Errorf("aggregate %.80q, want %.80q", got.aggregate, want)
				}
			})
		}
	}
}

// TestLongConversationOrders: a lead and a chat message of one 3,000-byte
// conversation id share their (hashed) aggregate, so the chat still waits
// for its lead; the typed data keeps the id as sent.
func TestLongConversationOrders(t *testing.T) {
	conv := strings.Repeat("c", 3000)
	lead, err := mapBody(lms, "lead", "", []byte(`{"leadId": "L-1", "conversationId": "`+conv+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	chat, err := mapBody(lms, "chat", "", []byte(`{"messageId": "m-1", "conversationId": "`+conv+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if lead.AggregateId != chat.AggregateId || lead.AggregateId != "mp-leads/conversation/"+natskey.Hash(conv) {
		t.Errorf("aggregates %q and %q", lead.AggregateId, chat.AggregateId)
	}
	if lead.GetLead().GetConversationId() != conv || chat.GetChatMessage().GetConversationId() != conv {
		t.Error("typed data lost the conversation id as sent")
	}
}

// FuzzAggregateIDs puts arbitrary ids in every field an aggregate is made
// of: whatever the id, the aggregate's id part is at most natskey.MaxIDLen
// bytes and needs no further bounding, and the EVENTS subject is valid.
func FuzzAggregateIDs(f *testing.F) {
	for _, s := range []string{"12345", strings.Repeat("c", 3000), "a.b*c>d", "\x00\x1f", "\xff\xfe", " padded ", "sha256:ab", "é/è"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		for _, fld := range idFields {
			got, err := fld.mapID(id)
			if err != nil {
				if Reason(err) == "unknown" {
					t.Fatalf("%s: unlabelled error %v", fld.name, err)
				}
				continue // an id that is blank after trimming: missing_field
			}
			// "<source>/<type>/<id part>"; a blank conversationId leaves
			// the lead's own aggregate.
			parts := strings.SplitN(got.aggregate, "/", 3)
			if len(parts) != 3 {
				t.Fatalf("%s: aggregate %q", fld.name, got.aggregate)
			}
			if part := parts[2]; len(part) > natskey.MaxIDLen || natskey.ID(part) != part {
				t.Fatalf("%s: aggregate %q has an unbounded id part", fld.name, got.aggregate)
			}
			kind, action := Kind(got.typ)
			if err := natskey.CheckSubject(streams.EventsSubject(kind, action, got.tenant, got.aggregate)); err != nil {
				t.Fatalf("%s: EVENTS subject: %v", fld.name, err)
			}
		}
	})
}
