package leads

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// Realistic events, shaped like the normalizer's golden output
// (services/normalizer/testdata/golden), for four aggregates of one deal:
// an Offerte Adviseur lead and its invoice, a Marktplaats conversation and
// a Marktplaats transaction.
const (
	offerteLead  = "offerte/lead/12345"
	offerteInv   = "offerte/invoice/5551"
	conversation = "mp-leads/conversation/c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394"
	transaction  = "mp-api/transaction/987654"
)

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

// event returns an envelope; the caller sets Data.
func event(id, typ, aggregate, occurred string) *leadstreamv1.Event {
	source, _, _ := strings.Cut(aggregate, "/")
	provider := map[string]string{
		"offerte":  "offerte-adviseur",
		"mp-leads": "marktplaats-lms",
		"mp-api":   "marktplaats-api",
	}[source]
	ev := &leadstreamv1.Event{
		Id:                 id,
		Type:               typ,
		Tenant:             "demo-dealer",
		Source:             source,
		Provider:           provider,
		ProviderEventId:    "p-" + id,
		ReceivedAt:         ts("2026-11-26T12:00:00Z"),
		AggregateId:        aggregate,
		PayloadContentType: "application/json",
		Payload:            []byte(`{"id":"` + id + `"}`),
	}
	if occurred != "" {
		ev.OccurredAt = ts(occurred)
	}
	return ev
}

func withLead(ev *leadstreamv1.Event, l *leadstreamv1.Lead) *leadstreamv1.Event {
	ev.Data = &leadstreamv1.Event_Lead{Lead: l}
	return ev
}

func leadStatus(id, typ, occurred string, st leadstreamv1.LeadStatus, invoice string) *leadstreamv1.Event {
	ev := event(id, typ, offerteLead, occurred)
	ev.Data = &leadstreamv1.Event_LeadStatus{LeadStatus: &leadstreamv1.LeadStatusChange{
		LeadId: "12345", Status: st, InvoiceId: invoice, ChangedAt: ts(occurred),
	}}
	return ev
}

func chat(id, occurred string, sender leadstreamv1.SenderRole, text string) *leadstreamv1.Event {
	ev := event(id, "chat.message", conversation, occurred)
	ev.Data = &leadstreamv1.Event_ChatMessage{ChatMessage: &leadstreamv1.ChatMessage{
		MessageId:       "msg-" + id[:8],
		ConversationId:  "c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394",
		AdvertisementId: "m2034567890",
		Sender:          sender,
		Text:            text,
		SentAt:          ts(occurred),
	}}
	return ev
}

func txChange(id, occurred string, from, to leadstreamv1.TransactionStatus) *leadstreamv1.Event {
	ev := event(id, "transaction.status_changed", transaction, occurred)
	ev.Data = &leadstreamv1.Event_Transaction{Transaction: &leadstreamv1.TransactionStatusChange{
		TransactionId:   "987654",
		OldStatus:       from,
		NewStatus:       to,
		AdvertisementId: "m2034567890",
		BuyerId:         "7713",
		Amount:          &leadstreamv1.Money{AmountCents: 1100, Currency: "EUR"},
		ShippingCosts:   &leadstreamv1.Money{AmountCents: 695, Currency: "EUR"},
	}}
	return ev
}

func offerteCreated() *leadstreamv1.Event {
	return withLead(event("2feb2204-1533-5cbc-97f5-5d7a89de2f97", "lead.created", offerteLead, "2026-11-20T09:00:00Z"),
		&leadstreamv1.Lead{
			LeadId: "12345",
			Buyer: &leadstreamv1.Person{
				Name: "Sanne Jansen", FirstName: "Sanne", LastName: "Jansen",
				Address: &leadstreamv1.Address{
					Street: "Oudegracht", HouseNumber: "12a", PostalCode: "3511AB", City: "Utrecht", Country: "NL",
				},
			},
			CreatedAt:     ts("2026-11-20T09:00:00Z"),
			WebsiteCode:   "1cd440df63f796a1f69da652cd0209",
			SubcategoryId: "1",
			Description:   "Graag een offerte voor 12 zonnepanelen op een schuin dak.",
			PreferredDate: "2026-12-15",
		})
}

func marktplaatsCreated() *leadstreamv1.Event {
	return withLead(event("626de9e6-7c2d-5eba-97d6-2c56855ce794", "lead.created", conversation, "2026-11-20T10:15:00Z"),
		&leadstreamv1.Lead{
			LeadId:         "5f1d7c2a-8e43-4b7e-9a51-0c6f2d9b3e10",
			ConversationId: "c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394",
			Platform:       "marktplaats",
			Advertisement: &leadstreamv1.Advertisement{
				Id:    "m2034567890",
				Title: "Volkswagen Golf 1.5 TSI Highline",
				Url:   "https://www.marktplaats.nl/v/auto-s/volkswagen/m2034567890?a=1&b=2",
				Price: &leadstreamv1.Money{AmountCents: 1895000, Currency: "EUR"},
			},
			Buyer: &leadstreamv1.Person{Name: "Jan de Vries", Email: "jan.devries@example.nl", Phone: "+31612345678"},
			Seller: &leadstreamv1.Seller{
				Id: "1234567", ExternalReference: "vestiging-utrecht", SalesAgent: "agent-7",
			},
			Message: "Is deze auto nog beschikbaar? Ik wil graag een proefrit maken.",
			TradeIn: &leadstreamv1.TradeIn{
				LicensePlate: "12-ABC-3", Make: "Opel", Model: "Astra", Year: 2015, MileageKm: 128000,
			},
			Requests:  []string{"testDrive", "financing"},
			CreatedAt: ts("2026-11-20T10:15:00Z"),
		})
}

func invoiceEvent(id, typ, occurred string, inv *leadstreamv1.Invoice) *leadstreamv1.Event {
	ev := event(id, typ, offerteInv, occurred)
	ev.Data = &leadstreamv1.Event_Invoice{Invoice: inv}
	return ev
}

// history is every event of the deal, in provider order.
func history() []*leadstreamv1.Event {
	const (
		buyer  = leadstreamv1.SenderRole_SENDER_ROLE_BUYER
		seller = leadstreamv1.SenderRole_SENDER_ROLE_SELLER
	)
	return []*leadstreamv1.Event{
		offerteCreated(),
		leadStatus("3b68420c-635c-5476-af7e-d4220cb915b8", "lead.sold", "2026-11-20T09:30:00Z",
			leadstreamv1.LeadStatus_LEAD_STATUS_SOLD, ""),
		leadStatus("b3aa0b6f-1713-57d1-8aea-e77abec78a1f", "lead.invoiced", "2026-11-30T08:00:00Z",
			leadstreamv1.LeadStatus_LEAD_STATUS_INVOICED, "5551"),
		leadStatus("1a174153-a317-578d-8972-6fdc4a8699d7", "lead.paid", "2026-12-05T13:45:00Z",
			leadstreamv1.LeadStatus_LEAD_STATUS_PAID, "5551"),
		invoiceEvent("1fa1b2a4-d6de-526c-9be9-69daf04f5958", "invoice.created", "2026-11-30T08:00:00Z",
			&leadstreamv1.Invoice{
				InvoiceId: "5551", LeadIds: []string{"12345"},
				Amount: &leadstreamv1.Money{AmountCents: 2450, Currency: "EUR"},
				Status: leadstreamv1.InvoiceStatus_INVOICE_STATUS_CREATED, CreatedAt: ts("2026-11-30T08:00:00Z"),
			}),
		invoiceEvent("46279c6e-d48e-529b-90b4-21a038bd9e10", "invoice.paid", "2026-12-05T13:45:00Z",
			&leadstreamv1.Invoice{
				InvoiceId: "5551", Status: leadstreamv1.InvoiceStatus_INVOICE_STATUS_PAID,
				PaidAt: ts("2026-12-05T13:45:00Z"),
			}),

		marktplaatsCreated(),
		chat("9d4bfb09-6a15-5408-8859-19dd0b36e7f9", "2026-11-20T10:16:30Z", buyer, "Kan ik zaterdag om 10 uur langskomen?"),
		// Two messages in the same second: the tie goes to the larger event id.
		chat("4e0c3a55-2b9d-5f61-a7c8-0d1e2f3a4b5c", "2026-11-20T10:20:00Z", seller, "Zeker, tot zaterdag!"),
		chat("e7f81d2c-9a3b-5c4d-8e6f-1a2b3c4d5e6f", "2026-11-20T10:20:00Z", buyer, "Top, bedankt. <3 & tot dan"),
		chat("71b2c3d4-e5f6-5a7b-8c9d-0e1f2a3b4c5d", "2026-11-20T10:45:10Z", buyer, "Is de prijs nog bespreekbaar?"),

		txChange("0b1c2d3e-4f50-5617-8293-a4b5c6d7e8f9", "2026-11-22T10:00:00Z",
			leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CREATED, leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING),
		txChange("a85bc2f3-e575-53a7-b335-bdbd3327e281", "2026-11-22T14:30:00Z",
			leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING, leadstreamv1.TransactionStatus_TRANSACTION_STATUS_COMPLETED),
		txChange("c9d8e7f6-a5b4-5c3d-9e2f-1a0b9c8d7e6f", "2026-11-25T09:00:00Z",
			leadstreamv1.TransactionStatus_TRANSACTION_STATUS_COMPLETED, leadstreamv1.TransactionStatus_TRANSACTION_STATUS_REFUNDED),
	}
}
