package mapping

import (
	"strings"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// offerteEvent is the field table of Offerte Adviseur webhooks
// (seeds/offerte-adviseur-webhooks.txt): {"id", "type", "payload"}, where the
// first part of type names the payload (lead, invoice). The docs show the
// lead id both as payload.lead_id and payload.id; payload is the union of the
// lead, lead status and invoice fields.
type offerteEvent struct {
	ID      text           `json:"id"`   // unique event id (dedupe)
	Type    text           `json:"type"` // lead.created, lead.sold, lead.invoiced, lead.paid, invoice.created, invoice.paid
	Payload offertePayload `json:"payload"`
}

type offertePayload struct {
	// ID is the lead id in lead.* events and the invoice id in invoice.*
	// events.
	ID     text `json:"id"`
	LeadID text `json:"lead_id"`

	// lead.created ("Example payload"; the rest as in testdata/payloads).
	WebsiteCode   text `json:"website_code"`
	SubcategoryID text `json:"subcategory_id"`
	CreatedAt     text `json:"created_at"` // also invoice.created
	FirstName     text `json:"first_name"`
	LastName      text `json:"last_name"`
	Email         text `json:"email"` // not in the examples; mapped when sent
	Phone         text `json:"phone"` // not in the examples; mapped when sent
	Street        text `json:"street"`
	StreetNumber  text `json:"street_number"`
	PostalCode    text `json:"postal_code"`
	City          text `json:"city"`
	Country       text `json:"country"`
	PreferredDate text `json:"preferred_date_of_execution"` // YYYY-MM-DD
	Description   text `json:"description"`

	// lead.sold, lead.invoiced, lead.paid.
	SoldAt     text `json:"sold_at"`
	InvoicedAt text `json:"invoiced_at"`
	PaidAt     text `json:"paid_at"` // also invoice.paid

	// invoice.created, invoice.paid; invoice_id also in lead.invoiced and
	// lead.paid.
	InvoiceID   text   `json:"invoice_id"`
	LeadIDs     list   `json:"lead_ids"`
	AmountCents number `json:"amount_cents"`
	Currency    text   `json:"currency"`
}

const offerte = config.ProviderOfferteAdviseur

// leadStatuses maps the lead status events to their status and the payload
// time of the change.
var leadStatuses = map[string]struct {
	status leadstreamv1.LeadStatus
	at     func(*offertePayload) text
}{
	"lead.sold":     {leadstreamv1.LeadStatus_LEAD_STATUS_SOLD, func(p *offertePayload) text { return p.SoldAt }},
	"lead.invoiced": {leadstreamv1.LeadStatus_LEAD_STATUS_INVOICED, func(p *offertePayload) text { return p.InvoicedAt }},
	"lead.paid":     {leadstreamv1.LeadStatus_LEAD_STATUS_PAID, func(p *offertePayload) text { return p.PaidAt }},
}

func mapOfferteAdviseur(raw *envelope.Raw, ev *leadstreamv1.Event) error {
	var e offerteEvent
	if err := decode(offerte, raw.Body, &e); err != nil {
		return err
	}
	p := &e.Payload
	typ := e.Type.str()
	switch typ {
	case "lead.created":
		return p.lead(ev)
	case "lead.sold", "lead.invoiced", "lead.paid":
		return p.leadStatus(ev, typ)
	case "invoice.created", "invoice.paid":
		return p.invoice(ev, typ)
	default:
		return unsupported(offerte, "type", e.Type)
	}
}

func (p *offertePayload) leadID(typ string) (string, error) {
	id := first(p.LeadID, p.ID)
	if id == "" {
		return "", missing(offerte, typ, "payload.lead_id")
	}
	return id, nil
}

func (p *offertePayload) lead(ev *leadstreamv1.Event) error {
	id, err := p.leadID("lead.created")
	if err != nil {
		return err
	}
	firstName, lastName := p.FirstName.str(), p.LastName.str()
	ev.Type = "lead.created"
	ev.OccurredAt = parseTime(p.CreatedAt)
	ev.AggregateId = aggregate(ev, "lead", id)
	ev.Data = &leadstreamv1.Event_Lead{Lead: &leadstreamv1.Lead{
		LeadId: id,
		Buyer: nonEmpty(&leadstreamv1.Person{
			Name:      strings.TrimSpace(firstName + " " + lastName),
			FirstName: firstName,
			LastName:  lastName,
			Email:     p.Email.str(),
			Phone:     p.Phone.str(),
			Address: nonEmpty(&leadstreamv1.Address{
				Street:      p.Street.str(),
				HouseNumber: p.StreetNumber.str(),
				PostalCode:  p.PostalCode.str(),
				City:        p.City.str(),
				Country:     p.Country.str(),
			}),
		}),
		CreatedAt:     parseTime(p.CreatedAt),
		WebsiteCode:   p.WebsiteCode.str(),
		SubcategoryId: p.SubcategoryID.str(),
		Description:   string(p.Description),
		PreferredDate: isoDate(p.PreferredDate),
	}}
	return nil
}

func (p *offertePayload) leadStatus(ev *leadstreamv1.Event, typ string) error {
	id, err := p.leadID(typ)
	if err != nil {
		return err
	}
	st := leadStatuses[typ]
	ev.Type = typ
	ev.OccurredAt = parseTime(st.at(p))
	ev.AggregateId = aggregate(ev, "lead", id)
	ev.Data = &leadstreamv1.Event_LeadStatus{LeadStatus: &leadstreamv1.LeadStatusChange{
		LeadId:    id,
		Status:    st.status,
		InvoiceId: p.InvoiceID.str(),
		ChangedAt: parseTime(st.at(p)),
	}}
	return nil
}

func (p *offertePayload) invoice(ev *leadstreamv1.Event, typ string) error {
	id := first(p.InvoiceID, p.ID)
	if id == "" {
		return missing(offerte, typ, "payload.invoice_id")
	}
	inv := &leadstreamv1.Invoice{
		InvoiceId: id,
		LeadIds:   p.LeadIDs,
		Amount:    money(p.AmountCents, p.Currency),
		CreatedAt: parseTime(p.CreatedAt),
		PaidAt:    parseTime(p.PaidAt),
	}
	if len(inv.LeadIds) == 0 && p.LeadID.str() != "" {
		inv.LeadIds = []string{p.LeadID.str()}
	}
	if typ == "invoice.paid" {
		inv.Status = leadstreamv1.InvoiceStatus_INVOICE_STATUS_PAID
		ev.OccurredAt = parseTime(p.PaidAt)
	} else {
		inv.Status = leadstreamv1.InvoiceStatus_INVOICE_STATUS_CREATED
		ev.OccurredAt = parseTime(p.CreatedAt)
	}
	ev.Type = typ
	ev.AggregateId = aggregate(ev, "invoice", id)
	ev.Data = &leadstreamv1.Event_Invoice{Invoice: inv}
	return nil
}
