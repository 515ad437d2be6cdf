package mapping

import (
	"strings"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// lbEvent is the field table of Lokalebasen push events
// (seeds/lokalebasen-push-events.txt): an event_type and a payload whose
// shape depends on it. enquiry_created is the only event type (July 2016).
// The event carries neither an event id nor a time.
type lbEvent struct {
	EventType text `json:"event_type"`
	Payload   struct {
		RequestedLocation lbLocation `json:"requested_location"` // the location the client asked about: href only
		Location          lbLocation `json:"location"`           // the location the enquiry is for
		Enquiry           struct {
			Type text `json:"type"` // client (direct) or extra (added by matching)
		} `json:"enquiry"`
		Client struct {
			Email   text `json:"email"`
			Name    text `json:"name"`
			Company text `json:"company"`
			Phone   text `json:"phone"`
		} `json:"client"`
		Comment text `json:"comment"`
	} `json:"payload"`
}

// lbLocation is a location reference; requested_location carries only href.
type lbLocation struct {
	ID          text `json:"id"`
	ExternalKey text `json:"external_key"`
	Href        text `json:"href"`
}

const lokalebasen = config.ProviderLokalebasen

// mapLokalebasen maps enquiry_created. There is no enquiry id: each
// enquiry is its own aggregate, named after the provider event id (the
// body's hash), and occurred_at stays unset.
func mapLokalebasen(raw *envelope.Raw, ev *leadstreamv1.Event) error {
	var e lbEvent
	if err := decode(lokalebasen, raw.Body, &e); err != nil {
		return err
	}
	if e.EventType.str() != "enquiry_created" {
		return unsupported(lokalebasen, "event_type", e.EventType)
	}
	p := &e.Payload
	ev.Type = "enquiry.created"
	ev.AggregateId = aggregate(ev, "enquiry", ev.ProviderEventId)
	ev.Data = &leadstreamv1.Event_Enquiry{Enquiry: &leadstreamv1.Enquiry{
		Type:              enquiryType(p.Enquiry.Type),
		RequestedLocation: location(p.RequestedLocation),
		Location:          location(p.Location),
		Client: nonEmpty(&leadstreamv1.Person{
			Name:    p.Client.Name.str(),
			Email:   p.Client.Email.str(),
			Phone:   p.Client.Phone.str(),
			Company: p.Client.Company.str(),
		}),
		Comment: string(p.Comment),
	}}
	return nil
}

func location(l lbLocation) *leadstreamv1.Location {
	return nonEmpty(&leadstreamv1.Location{Id: l.ID.str(), ExternalKey: l.ExternalKey.str(), Href: l.Href.str()})
}

// enquiryType reads client / extra in any case; anything else is
// ENQUIRY_TYPE_UNKNOWN.
func enquiryType(t text) leadstreamv1.EnquiryType {
	switch strings.ToLower(t.str()) {
	case "client":
		return leadstreamv1.EnquiryType_ENQUIRY_TYPE_CLIENT
	case "extra":
		return leadstreamv1.EnquiryType_ENQUIRY_TYPE_EXTRA
	default:
		return leadstreamv1.EnquiryType_ENQUIRY_TYPE_UNKNOWN
	}
}
