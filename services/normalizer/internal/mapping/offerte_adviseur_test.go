package mapping

import (
	"testing"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

func TestOfferteAdviseur(t *testing.T) {
	leadStatus := func(typ string, want *leadstreamv1.LeadStatusChange) func(*testing.T, *leadstreamv1.Event) {
		return func(t *testing.T, ev *leadstreamv1.Event) {
			if ev.Type != typ || ev.AggregateId != "offerte/lead/"+want.LeadId {
				t.Errorf("type %q aggregate %q", ev.Type, ev.AggregateId)
			}
			equal(t, "lead status", ev.GetLeadStatus(), want)
		}
	}
	invoice := func(want *leadstreamv1.Invoice) func(*testing.T, *leadstreamv1.Event) {
		return func(t *testing.T, ev *leadstreamv1.Event) {
			if ev.AggregateId != "offerte/invoice/"+want.InvoiceId {
				t.Errorf("aggregate %q", ev.AggregateId)
			}
			equal(t, "invoice", ev.GetInvoice(), want)
		}
	}

	runCases(t, offerte, []mapCase{
		{
			name: "lead.created: id instead of lead_id, unknown fields, timestamp as preferred date",
			kind: "lead",
			body: `{"id": "a1", "type": "lead.created", "payload": {"id": "12345", "first_name": "Sanne", "email": "sanne@example.nl",
				"preferred_date_of_execution": "2026-12-15T00:00:00+00:00", "roof": {"type": "schuin"}}, "version": 2}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				if ev.AggregateId != "offerte/lead/12345" {
					t.Errorf("aggregate %q", ev.AggregateId)
				}
				equal(t, "lead", ev.GetLead(), &leadstreamv1.Lead{LeadId: "12345", PreferredDate: "2026-12-15",
					Buyer: &leadstreamv1.Person{Name: "Sanne", FirstName: "Sanne", Email: "sanne@example.nl"}})
			},
		},
		{
			name: "lead.created: numeric lead_id wins over id",
			kind: "lead",
			body: `{"type": "lead.created", "payload": {"lead_id": 12345, "id": 1, "city": "Utrecht"}}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				equal(t, "lead", ev.GetLead(), &leadstreamv1.Lead{LeadId: "12345",
					Buyer: &leadstreamv1.Person{Address: &leadstreamv1.Address{City: "Utrecht"}}})
			},
		},
		{
			name:   "lead.created without id",
			kind:   "lead",
			body:   `{"id": "a1", "type": "lead.created", "payload": {"first_name": "Sanne", "last_name": "Jansen", "street": "Oudegracht", "description": "Graag een offerte"}}`,
			reason: "missing_field",
		},
		{
			name:  "lead.sold with payload id",
			kind:  "lead",
			body:  `{"type": "lead.sold", "payload": {"id": 12345, "sold_at": "2026-11-20T09:30:00Z"}}`,
			check: leadStatus("lead.sold", &leadstreamv1.LeadStatusChange{LeadId: "12345", Status: leadstreamv1.LeadStatus_LEAD_STATUS_SOLD, ChangedAt: parseTime("2026-11-20T09:30:00Z")}),
		},
		{
			name:  "lead.invoiced, invoice id as string, no time",
			kind:  "lead",
			body:  `{"type": "lead.invoiced", "payload": {"lead_id": "12345", "invoice_id": "5551"}}`,
			check: leadStatus("lead.invoiced", &leadstreamv1.LeadStatusChange{LeadId: "12345", Status: leadstreamv1.LeadStatus_LEAD_STATUS_INVOICED, InvoiceId: "5551"}),
		},
		{
			name:   "lead.paid without lead id",
			kind:   "lead",
			body:   `{"type": "lead.paid", "payload": {"invoice_id": 5551, "paid_at": "2026-12-05T13:45:00Z"}}`,
			reason: "missing_field",
		},
		{
			name: "invoice.created: id instead of invoice_id, one lead id, lower-case currency",
			kind: "invoice",
			body: `{"type": "invoice.created", "payload": {"id": 5551, "lead_ids": 12345, "amount_cents": "2450", "currency": "eur"}}`,
			check: invoice(&leadstreamv1.Invoice{InvoiceId: "5551", LeadIds: []string{"12345"}, Status: leadstreamv1.InvoiceStatus_INVOICE_STATUS_CREATED,
				Amount: &leadstreamv1.Money{AmountCents: 2450, Currency: "EUR"}}),
		},
		{
			name: "invoice.paid: invoice_id",
			kind: "invoice",
			body: `{"type": "invoice.paid", "payload": {"invoice_id": "5551", "paid_at": "2026-12-05T13:45:00Z"}}`,
			check: invoice(&leadstreamv1.Invoice{InvoiceId: "5551", Status: leadstreamv1.InvoiceStatus_INVOICE_STATUS_PAID,
				PaidAt: parseTime("2026-12-05T13:45:00Z")}),
		},
		{
			name:   "invoice.paid without id",
			kind:   "invoice",
			body:   `{"type": "invoice.paid", "payload": {"paid_at": "2026-12-05T13:45:00Z"}}`,
			reason: "missing_field",
		},
		{
			name:   "unknown type",
			kind:   "lead",
			body:   `{"type": "lead.deleted", "payload": {"lead_id": 12345}}`,
			reason: "unsupported_type",
		},
		{
			name:   "payload is an array",
			kind:   "lead",
			body:   `{"type": "lead.created", "payload": [{"lead_id": 12345}]}`,
			reason: "unparseable",
		},
		{
			name:   "doc example with a comment",
			kind:   "lead",
			body:   "{\"id\": \"a056V7R7NmNRjl70\", \"type\": \"lead.created\", \"payload\": {\"id\": 12345\n // ...\n}}",
			reason: "unparseable",
		},
	})
}

func FuzzOfferteAdviseur(f *testing.F) { fuzzProvider(f, offerte) }
