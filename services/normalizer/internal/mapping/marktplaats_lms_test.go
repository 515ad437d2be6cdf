package mapping

import (
	"testing"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

func TestMarktplaatsLMS(t *testing.T) {
	runCases(t, lms, []mapCase{
		{
			name: "numeric ids, unknown fields ignored",
			kind: "lead",
			body: `{"leadId": 42, "conversationId": 7, "createdAt": "2026-11-20T10:15:00.000+0100",
				"advertisement": {"id": 99, "priceCents": "1895000", "badges": ["new"]},
				"tradeIn": {"year": "2015", "mileageKm": 128000.0, "fuel": "petrol"},
				"requests": "testDrive", "newProperty": {"nested": [1, 2]}}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				if ev.AggregateId != "mp-leads/conversation/7" {
					t.Errorf("aggregate %q", ev.AggregateId)
				}
				equal(t, "lead", ev.GetLead(), &leadstreamv1.Lead{
					LeadId: "42", ConversationId: "7",
					Advertisement: &leadstreamv1.Advertisement{Id: "99", Price: &leadstreamv1.Money{AmountCents: 1895000, Currency: "EUR"}},
					TradeIn:       &leadstreamv1.TradeIn{Year: 2015, MileageKm: 128000},
					Requests:      []string{"testDrive"},
					CreatedAt:     parseTime("2026-11-20T09:15:00Z"),
				})
			},
		},
		{
			name: "id instead of leadId, no conversation: the lead is the aggregate",
			kind: "lead",
			body: `{"id": "L-1", "buyer": {"name": "Jan de Vries"}}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				if ev.AggregateId != "mp-leads/lead/L-1" || ev.GetLead().GetLeadId() != "L-1" || ev.OccurredAt != nil {
					t.Errorf("aggregate %q, lead %v, occurred_at %v", ev.AggregateId, ev.GetLead(), ev.OccurredAt)
				}
			},
		},
		{
			name:   "lead without id",
			kind:   "lead",
			body:   `{"conversationId": "c-1", "buyer": {"name": "Jan de Vries", "email": "jan.devries@example.nl"}, "message": "Is deze auto nog beschikbaar?"}`,
			reason: "missing_field",
		},
		{
			name:   "lead with a buyer that is not an object",
			kind:   "lead",
			body:   `{"leadId": "L-1", "buyer": "Jan de Vries"}`,
			reason: "unparseable",
		},
		{
			name: "chat: sender in lower case",
			kind: "chat",
			body: `{"messageId": "m-1", "conversationId": "c-1", "sender": "seller", "text": "Ja, welkom!", "sentAt": "2026-11-20T10:16:30Z"}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				equal(t, "chat", ev.GetChatMessage(), &leadstreamv1.ChatMessage{
					MessageId: "m-1", ConversationId: "c-1", Sender: leadstreamv1.SenderRole_SENDER_ROLE_SELLER,
					Text: "Ja, welkom!", SentAt: parseTime("2026-11-20T10:16:30Z"),
				})
			},
		},
		{
			name: "chat: unknown sender",
			kind: "chat",
			body: `{"messageId": "m-1", "conversationId": "c-1", "sender": "SYSTEM"}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				if s := ev.GetChatMessage().GetSender(); s != leadstreamv1.SenderRole_SENDER_ROLE_UNKNOWN {
					t.Errorf("sender %v", s)
				}
			},
		},
		{
			name:   "chat without conversationId",
			kind:   "chat",
			body:   `{"messageId": "m-1", "sender": "BUYER", "text": "Kan ik zaterdag om 10 uur langskomen?"}`,
			reason: "missing_field",
		},
		{
			name: "no kind: messageId makes a chat message",
			kind: "",
			body: `{"messageId": "m-1", "conversationId": "c-1"}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				if ev.Type != "chat.message" {
					t.Errorf("type %q", ev.Type)
				}
			},
		},
		{
			name:   "lead body signed with the chat key",
			kind:   "chat",
			body:   `{"leadId": "L-1", "conversationId": "c-1", "buyer": {"name": "Jan de Vries"}, "message": "Is deze auto nog beschikbaar?"}`,
			reason: "kind_mismatch",
		},
		{
			name:   "chat body signed with the lead key",
			kind:   "lead",
			body:   `{"messageId": "m-1", "id": "m-1", "conversationId": "c-1", "text": "Kan ik zaterdag om 10 uur langskomen?"}`,
			reason: "kind_mismatch",
		},
		{
			name: "both ids: the key decides",
			kind: "chat",
			body: `{"leadId": "L-1", "messageId": "m-1", "conversationId": "c-1"}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				if ev.Type != "chat.message" || ev.GetChatMessage().GetMessageId() != "m-1" {
					t.Errorf("type %q, data %v", ev.Type, ev.GetChatMessage())
				}
			},
		},
		{
			name:   "kind unknown",
			kind:   "unknown",
			body:   `{"something": "else"}`,
			reason: "unsupported_type",
		},
		{
			name:   "kind of another provider",
			kind:   "bid",
			body:   `{"leadId": "L-1"}`,
			reason: "unsupported_type",
		},
		{
			name:   "invalid JSON",
			kind:   "lead",
			body:   `{"leadId": "L-1", "buyer": {"name": "Jan de Vries",}}`,
			reason: "unparseable",
		},
		{
			name:   "not an object",
			kind:   "lead",
			body:   `"Jan de Vries"`,
			reason: "unparseable",
		},
	})
}

func FuzzMarktplaatsLMS(f *testing.F) { fuzzProvider(f, lms) }
