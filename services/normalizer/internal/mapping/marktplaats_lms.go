package mapping

import (
	"fmt"
	"strings"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// lmsPayload is the field table of Marktplaats / 2dehands / 2ememain LMS
// webhooks (seeds/marktplaats-lms-webhooks.txt): the Lead Delivery Webhook
// (signed with leadDeliveryKey) and the Chat Message Webhook (signed with
// chatMessagePushKey). Their OpenAPI spec is not public: these shapes are the
// assumptions of testdata/payloads/marktplaats-lms, and Marktplaats may add
// properties at any time ("forward compatibility philosophy"), so unknown
// ones are ignored.
type lmsPayload struct {
	// ID is accepted in place of leadId / messageId, as the edge does.
	ID text `json:"id"`

	// Lead Delivery Webhook: the enriched lead.
	LeadID         text       `json:"leadId"`
	ConversationID text       `json:"conversationId"` // lead and chat
	CreatedAt      text       `json:"createdAt"`
	Platform       text       `json:"platform"` // marktplaats, 2dehands, 2ememain
	Advertisement  lmsAd      `json:"advertisement"`
	Buyer          lmsBuyer   `json:"buyer"`
	Seller         lmsSeller  `json:"seller"`
	Message        text       `json:"message"`
	TradeIn        lmsTradeIn `json:"tradeIn"`
	Requests       list       `json:"requests"` // testDrive, financing, ...

	// Chat Message Webhook: one message, no enrichment.
	MessageID       text `json:"messageId"`
	AdvertisementID text `json:"advertisementId"`
	SentAt          text `json:"sentAt"`
	Sender          text `json:"sender"` // BUYER or SELLER
	Text            text `json:"text"`
}

// lmsAd is the advertisement the lead is about.
type lmsAd struct {
	ID         text   `json:"id"`
	Title      text   `json:"title"`
	URL        text   `json:"url"`
	PriceCents number `json:"priceCents"` // EUR cents
}

// lmsBuyer is the buyer's contact data: personal, never logged.
type lmsBuyer struct {
	Name  text `json:"name"`
	Email text `json:"email"`
	Phone text `json:"phone"`
}

// lmsSeller carries the fields a dealer's LMS routes a lead on.
type lmsSeller struct {
	ID                text `json:"id"`
	ExternalReference text `json:"externalReference"`
	SalesAgent        text `json:"salesAgent"`
}

// lmsTradeIn is the car the buyer offers in part exchange.
type lmsTradeIn struct {
	LicensePlate text   `json:"licensePlate"`
	Make         text   `json:"make"`
	Model        text   `json:"model"`
	Year         number `json:"year"`
	MileageKm    number `json:"mileageKm"`
}

const lms = config.ProviderMarktplaatsLMS

// mapMarktplaatsLMS maps a lead or a chat message. Which one it is comes
// from the kind the edge derived from the signing key; without a kind the
// payload's ids decide, as the edge does for an unknown key.
func mapMarktplaatsLMS(raw *envelope.Raw, ev *leadstreamv1.Event) error {
	var p lmsPayload
	if err := decode(lms, raw.Body, &p); err != nil {
		return err
	}
	kind := raw.Kind
	if kind == "" || kind == envelope.KindUnknown {
		switch {
		case p.MessageID.str() != "":
			kind = envelope.KindChat
		case p.LeadID.str() != "":
			kind = envelope.KindLead
		}
	}
	switch kind {
	case envelope.KindLead:
		return p.lead(ev)
	case envelope.KindChat:
		return p.chat(ev)
	default:
		return unsupported(lms, "kind", text(raw.Kind))
	}
}

// A body of the other webhook has the other one's id and not its own: the
// edge stored it under the kind of the key that signed it, and mapped as
// that kind it would be an event without content. Bodies with both ids
// (or neither) are taken as the key says.

func (p *lmsPayload) lead(ev *leadstreamv1.Event) error {
	if p.LeadID.str() == "" && p.MessageID.str() != "" {
		return fmt.Errorf("%w: %s chat message (messageId, no leadId) stored as a lead", ErrKindMismatch, lms)
	}
	leadID := first(p.LeadID, p.ID)
	if leadID == "" {
		return missing(lms, "lead", "leadId")
	}
	ev.Type = "lead.created"
	ev.OccurredAt = parseTime(p.CreatedAt)
	// A lead opens a conversation that chat messages continue: both order
	// on the conversation.
	if conv := p.ConversationID.str(); conv != "" {
		ev.AggregateId = aggregate(ev, "conversation", conv)
	} else {
		ev.AggregateId = aggregate(ev, "lead", leadID)
	}
	ev.Data = &leadstreamv1.Event_Lead{Lead: &leadstreamv1.Lead{
		LeadId:         leadID,
		ConversationId: p.ConversationID.str(),
		Platform:       p.Platform.str(),
		Advertisement: nonEmpty(&leadstreamv1.Advertisement{
			Id:    p.Advertisement.ID.str(),
			Title: p.Advertisement.Title.str(),
			Url:   p.Advertisement.URL.str(),
			Price: money(p.Advertisement.PriceCents, ""),
		}),
		Buyer: nonEmpty(&leadstreamv1.Person{
			Name:  p.Buyer.Name.str(),
			Email: p.Buyer.Email.str(),
			Phone: p.Buyer.Phone.str(),
		}),
		Seller: nonEmpty(&leadstreamv1.Seller{
			Id:                p.Seller.ID.str(),
			ExternalReference: p.Seller.ExternalReference.str(),
			SalesAgent:        p.Seller.SalesAgent.str(),
		}),
		Message: string(p.Message),
		TradeIn: nonEmpty(&leadstreamv1.TradeIn{
			LicensePlate: p.TradeIn.LicensePlate.str(),
			Make:         p.TradeIn.Make.str(),
			Model:        p.TradeIn.Model.str(),
			Year:         p.TradeIn.Year.int32(),
			MileageKm:    p.TradeIn.MileageKm.n,
		}),
		Requests:  p.Requests,
		CreatedAt: parseTime(p.CreatedAt),
	}}
	return nil
}

func (p *lmsPayload) chat(ev *leadstreamv1.Event) error {
	if p.MessageID.str() == "" && p.LeadID.str() != "" {
		return fmt.Errorf("%w: %s lead (leadId, no messageId) stored as a chat message", ErrKindMismatch, lms)
	}
	conv := p.ConversationID.str()
	if conv == "" {
		return missing(lms, "chat message", "conversationId")
	}
	ev.Type = "chat.message"
	ev.OccurredAt = parseTime(p.SentAt)
	ev.AggregateId = aggregate(ev, "conversation", conv)
	ev.Data = &leadstreamv1.Event_ChatMessage{ChatMessage: &leadstreamv1.ChatMessage{
		MessageId:       first(p.MessageID, p.ID),
		ConversationId:  conv,
		AdvertisementId: p.AdvertisementID.str(),
		Sender:          senderRole(p.Sender),
		Text:            string(p.Text),
		SentAt:          parseTime(p.SentAt),
	}}
	return nil
}

// senderRole reads BUYER / SELLER in any case; anything else is
// SENDER_ROLE_UNKNOWN.
func senderRole(t text) leadstreamv1.SenderRole {
	switch strings.ToUpper(t.str()) {
	case "BUYER":
		return leadstreamv1.SenderRole_SENDER_ROLE_BUYER
	case "SELLER":
		return leadstreamv1.SenderRole_SENDER_ROLE_SELLER
	default:
		return leadstreamv1.SenderRole_SENDER_ROLE_UNKNOWN
	}
}
