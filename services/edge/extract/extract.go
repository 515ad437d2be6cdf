// Package extract reads a webhook's provider event id and kind, cheaply and
// without trusting the body: the edge needs them to name the RAW subject and
// the Nats-Msg-Id, never more. A body it cannot read still gets an id (its
// hash) and kind "unknown", so an authentic request is never rejected for
// its content.
package extract

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
)

// maxIDLen bounds a provider event id used as-is in a header; longer or
// stranger ids are replaced by their hash.
const maxIDLen = 128

// Event is what the edge learns about a body.
type Event struct {
	// Kind is one of envelope.Kinds.
	Kind string
	// ProviderEventID is the provider's event id, or eventid.BodyID of the
	// body when the provider sends none or it cannot be read.
	ProviderEventID string
}

// Extract returns the kind and provider event id of body from provider. keyID
// is the credential that verified it (the Marktplaats LMS key tells a lead
// from a chat message).
func Extract(provider, keyID string, body []byte) Event {
	var kind, id string
	switch provider {
	case config.ProviderMarktplaatsLMS:
		kind, id = marktplaatsLMS(keyID, body)
	case config.ProviderMarktplaatsAPI:
		kind, id = marktplaatsAPI(body)
	case config.ProviderOfferteAdviseur:
		kind, id = offerteAdviseur(body)
	case config.ProviderLokalebasen:
		kind = lokalebasen(body)
	}
	if kind == "" {
		kind = envelope.KindUnknown
	}
	if !usableID(id) {
		id = eventid.BodyID(body)
	}
	return Event{Kind: kind, ProviderEventID: id}
}

// usableID reports whether id can travel as a header value and a dedupe key:
// printable ASCII without spaces, bounded.
func usableID(id string) bool {
	if id == "" || len(id) > maxIDLen || !utf8.ValidString(id) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// idString reads a JSON id that providers send as a string or a number.
func idString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if _, err := strconv.ParseFloat(n.String(), 64); err == nil {
			return n.String()
		}
	}
	return ""
}

// marktplaatsLMS: the key id says which webhook signed it (leadDeliveryKey,
// chatMessagePushKey); the payload's fields decide when the key is another.
func marktplaatsLMS(keyID string, body []byte) (kind, id string) {
	var p struct {
		LeadID    json.RawMessage `json:"leadId"`
		MessageID json.RawMessage `json:"messageId"`
		ID        json.RawMessage `json:"id"`
	}
	parsed := json.Unmarshal(body, &p) == nil
	switch {
	case keyID == "leadDeliveryKey":
		kind = envelope.KindLead
	case keyID == "chatMessagePushKey":
		kind = envelope.KindChat
	case parsed && len(p.MessageID) > 0:
		kind = envelope.KindChat
	case parsed && len(p.LeadID) > 0:
		kind = envelope.KindLead
	}
	if !parsed {
		return envelope.KindUnknown, ""
	}
	switch kind {
	case envelope.KindLead:
		id = firstID(p.LeadID, p.ID)
	case envelope.KindChat:
		id = firstID(p.MessageID, p.ID)
	}
	return kind, id
}

func firstID(raws ...json.RawMessage) string {
	for _, r := range raws {
		if id := idString(r); id != "" {
			return id
		}
	}
	return ""
}

// marktplaatsAPI: eventType names bids, ASQs and transactions; a call event
// is recognised by its call fields, whatever its eventType says.
func marktplaatsAPI(body []byte) (kind, id string) {
	var p struct {
		ID        json.RawMessage `json:"id"`
		EventType string          `json:"eventType"`
		EventData struct {
			CallID     json.RawMessage `json:"callId"`
			FreespeeID json.RawMessage `json:"freespeeId"`
		} `json:"eventData"`
	}
	if json.Unmarshal(body, &p) != nil {
		return envelope.KindUnknown, ""
	}
	switch {
	case strings.EqualFold(p.EventType, "BidPlacedEvent"), strings.EqualFold(p.EventType, "BidClosedEvent"):
		kind = envelope.KindBid
	case strings.EqualFold(p.EventType, "AsqCreatedEvent"):
		kind = envelope.KindASQ
	case strings.EqualFold(p.EventType, "transactionStatusChanged"):
		kind = envelope.KindTransaction
	case len(p.EventData.CallID) > 0 || len(p.EventData.FreespeeID) > 0:
		kind = envelope.KindCall
	default:
		kind = envelope.KindUnknown
	}
	return kind, idString(p.ID)
}

// offerteAdviseur: the first part of `type` is the payload type.
func offerteAdviseur(body []byte) (kind, id string) {
	var p struct {
		ID   json.RawMessage `json:"id"`
		Type string          `json:"type"`
	}
	if json.Unmarshal(body, &p) != nil {
		return envelope.KindUnknown, ""
	}
	prefix, _, _ := strings.Cut(p.Type, ".")
	switch prefix {
	case "lead":
		kind = envelope.KindLead
	case "invoice":
		kind = envelope.KindInvoice
	default:
		kind = envelope.KindUnknown
	}
	return kind, idString(p.ID)
}

// lokalebasen sends no event id; the body hash stands in for it.
func lokalebasen(body []byte) string {
	var p struct {
		EventType string `json:"event_type"`
	}
	if json.Unmarshal(body, &p) != nil {
		return envelope.KindUnknown
	}
	if p.EventType == "enquiry_created" {
		return envelope.KindEnquiry
	}
	return envelope.KindUnknown
}
