// Package extract reads a webhook's provider event id and kind, cheaply and
// without trusting the body: the edge needs them to name the RAW subject and
// the Nats-Msg-Id, never more. A body it cannot read still gets an id (its
// hash) and kind "unknown", so an authentic request is never rejected for
// its content.
package extract

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/natskey"
)

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
// printable ASCII without spaces, bounded. An id that starts like a body hash
// is refused too, so that a provider's id can never equal another body's hash.
func usableID(id string) bool {
	if id == "" || len(id) > natskey.MaxIDLen || !utf8.ValidString(id) || strings.HasPrefix(id, eventid.BodyIDPrefix) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// decodeObject decodes body into p and reports whether body is a JSON object.
// A field of an unexpected type is left empty instead of failing the whole
// body (encoding/json decodes the rest and reports an UnmarshalTypeError):
// the public specs are incomplete, and a body whose eventType is a number or
// whose eventData is not an object still has an id and call fields to read.
// null, arrays and scalars are not objects: null decodes into a struct
// without error, yet carries nothing to classify.
func decodeObject(body []byte, p any) bool {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return false
	}
	if err := json.Unmarshal(body, p); err != nil {
		var typeErr *json.UnmarshalTypeError
		return errors.As(err, &typeErr)
	}
	return true
}

// present reports whether a field was sent with a value: JSON null counts as
// absent.
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && string(raw) != "null"
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
	if !decodeObject(body, &p) {
		return envelope.KindUnknown, ""
	}
	switch {
	case keyID == config.KeyIDLeadDelivery:
		kind = envelope.KindLead
	case keyID == config.KeyIDChatMessagePush:
		kind = envelope.KindChat
	case present(p.MessageID):
		kind = envelope.KindChat
	case present(p.LeadID):
		kind = envelope.KindLead
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
	if !decodeObject(body, &p) {
		return envelope.KindUnknown, ""
	}
	switch {
	case strings.EqualFold(p.EventType, "BidPlacedEvent"), strings.EqualFold(p.EventType, "BidClosedEvent"):
		kind = envelope.KindBid
	case strings.EqualFold(p.EventType, "AsqCreatedEvent"):
		kind = envelope.KindASQ
	case strings.EqualFold(p.EventType, "transactionStatusChanged"):
		kind = envelope.KindTransaction
	case present(p.EventData.CallID) || present(p.EventData.FreespeeID):
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
	if !decodeObject(body, &p) {
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
	if !decodeObject(body, &p) {
		return envelope.KindUnknown
	}
	if p.EventType == "enquiry_created" {
		return envelope.KindEnquiry
	}
	return envelope.KindUnknown
}
