package mapping

import (
	"strings"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// apiEvent is the field table of Marktplaats API webhooks
// (seeds/marktplaats-api-webhooks.txt, "Generic Message format"): id,
// eventType, created and eventData, plus the HAL _links and _embedded
// relations each event type lists. eventData is the union of every event
// type's fields.
type apiEvent struct {
	ID        text         `json:"id"`        // unique event id (dedupe)
	EventType text         `json:"eventType"` // BidPlacedEvent, BidClosedEvent, AsqCreatedEvent, transactionStatusChanged
	Created   text         `json:"created"`   // ISO 8601: occurred_at
	EventData apiEventData `json:"eventData"`
	Links     struct {
		Advertisement one[apiLink] `json:"mp:advertisement"` // "always", not embedded
	} `json:"_links"`
	Embedded struct {
		Bid         one[apiBid]         `json:"mp:bid"`                       // BidPlacedEvent, BidClosedEvent
		Asker       one[apiUser]        `json:"mp:asker"`                     // AsqCreatedEvent
		Transaction one[apiTransaction] `json:"mp:advertisement-transaction"` // transactionStatusChanged
	} `json:"_embedded"`
}

// apiEventData is eventData, by event type.
type apiEventData struct {
	// BidPlacedEvent, BidClosedEvent, AsqCreatedEvent.
	AdvertisementItemID text    `json:"advertisementItemId"`
	ClosedBySeller      boolean `json:"closedBySeller"` // BidClosedEvent
	AsqMessage          text    `json:"asqMessage"`     // AsqCreatedEvent, "only provided for selected API users"

	// transactionStatusChanged. Statuses: CREATED, PENDING, EXPIRED,
	// CANCELLED, COMPLETED, FAILED, REFUNDED, CHARGEBACK.
	TransactionID text `json:"transactionId"` // documented as int
	OldStatus     text `json:"oldStatus"`
	NewStatus     text `json:"newStatus"`

	// Call tracking (Freespee). The event's own eventType is not
	// documented: a call is recognised by callId or freespeeId being sent,
	// null counting as not sent (as at the edge).
	CallID          *text   `json:"callId"`
	FreespeeID      *text   `json:"freespeeId"`
	CallType        text    `json:"eventType"` // 0 post-call, 1 SMS, 2 pre-call
	Start           text    `json:"start"`     // UTC, yyyy-MM-dd'T'HH:mm:ss.SSSZZ
	Duration        number  `json:"duration"`  // seconds, sent as a string
	FromNumber      text    `json:"fromNumber"`
	FromNumberArea  text    `json:"fromNumberArea"`
	ToNumber        text    `json:"toNumber"`  // the tracking number
	EndNumber       text    `json:"endNumber"` // the destination number
	Channel         text    `json:"channel"`
	Answered        boolean `json:"answered"`
	PublisherID     text    `json:"publisherId"`
	CampaignID      text    `json:"campaignId"`
	Referrer        text    `json:"referrer"`
	URL             text    `json:"url"`
	UserID          text    `json:"userId"` // the Marktplaats seller id
	AdvertisementID text    `json:"advertisementId"`
}

// apiBid is _embedded["mp:bid"]. The docs' examples name its id both bidId
// and id.
type apiBid struct {
	BidID     text    `json:"bidId"`
	ID        text    `json:"id"`
	Amount    number  `json:"amount"` // cents
	PlaceDate text    `json:"placeDate"`
	Bidder    apiUser `json:"bidder"`
}

// apiUser is a bidder or _embedded["mp:asker"].
type apiUser struct {
	ID       text `json:"id"`
	NickName text `json:"nickName"` // encoding/json also matches "nickname"
}

// apiTransaction is _embedded["mp:advertisement-transaction"]. Its self link
// is /v1/advertisements/<advertisement id>/transactions/<transaction id>.
type apiTransaction struct {
	Links struct {
		Self one[apiLink] `json:"self"`
	} `json:"_links"`
	TransactionID text   `json:"transactionId"`
	BuyerID       text   `json:"buyerId"`
	Amount        number `json:"amount"`        // cents
	ShippingCosts number `json:"shippingCosts"` // cents
	Status        text   `json:"status"`        // the current status
}

// apiLink is a HAL link.
type apiLink struct {
	Href text `json:"href"`
}

const api = config.ProviderMarktplaatsAPI

// mapMarktplaatsAPI maps by eventType, compared case-insensitively; a call
// event by its call fields, whatever its eventType (after the documented
// types, in the edge's order, so that both agree on the kind).
func mapMarktplaatsAPI(raw *envelope.Raw, ev *leadstreamv1.Event) error {
	var p apiEvent
	if err := decode(api, raw.Body, &p); err != nil {
		return err
	}
	ev.OccurredAt = parseTime(p.Created)
	typ := p.EventType.str()
	switch {
	case strings.EqualFold(typ, "BidPlacedEvent"):
		return p.bid(ev, "bid.placed")
	case strings.EqualFold(typ, "BidClosedEvent"):
		return p.bid(ev, "bid.closed")
	case strings.EqualFold(typ, "AsqCreatedEvent"):
		return p.asq(ev)
	case strings.EqualFold(typ, "transactionStatusChanged"):
		return p.transaction(ev)
	case p.EventData.CallID != nil || p.EventData.FreespeeID != nil:
		return p.call(ev)
	default:
		return unsupported(api, "eventType", p.EventType)
	}
}

// advertisementID is eventData.advertisementItemId, else the id in the
// mp:advertisement link the docs say is always there.
func (p *apiEvent) advertisementID() string {
	if id := p.EventData.AdvertisementItemID.str(); id != "" {
		return id
	}
	return hrefSegment(p.Links.Advertisement.get().Href, "advertisements")
}

func (p *apiEvent) bid(ev *leadstreamv1.Event, typ string) error {
	adID := p.advertisementID()
	if adID == "" {
		return missing(api, typ, "eventData.advertisementItemId")
	}
	b := p.Embedded.Bid.get()
	ev.Type = typ
	ev.AggregateId = aggregate(ev, "advertisement", adID)
	ev.Data = &leadstreamv1.Event_Bid{Bid: &leadstreamv1.Bid{
		BidId:           first(b.BidID, b.ID),
		AdvertisementId: adID,
		Amount:          money(b.Amount, ""),
		Bidder:          user(b.Bidder),
		PlacedAt:        parseTime(b.PlaceDate),
		ClosedBySeller:  bool(p.EventData.ClosedBySeller),
	}}
	return nil
}

func (p *apiEvent) asq(ev *leadstreamv1.Event) error {
	adID := p.advertisementID()
	if adID == "" {
		return missing(api, "asq.created", "eventData.advertisementItemId")
	}
	ev.Type = "asq.created"
	ev.AggregateId = aggregate(ev, "advertisement", adID)
	ev.Data = &leadstreamv1.Event_Asq{Asq: &leadstreamv1.AskSellerQuestion{
		AdvertisementId: adID,
		Message:         string(p.EventData.AsqMessage),
		Asker:           user(p.Embedded.Asker.get()),
	}}
	return nil
}

func (p *apiEvent) transaction(ev *leadstreamv1.Event) error {
	t := p.Embedded.Transaction.get()
	txID := first(p.EventData.TransactionID, t.TransactionID)
	if txID == "" {
		return missing(api, "transaction.status_changed", "eventData.transactionId")
	}
	adID := hrefSegment(t.Links.Self.get().Href, "advertisements")
	if adID == "" {
		adID = p.EventData.AdvertisementItemID.str()
	}
	newStatus := p.EventData.NewStatus
	if newStatus.str() == "" {
		newStatus = t.Status // the embedded transaction's current status
	}
	ev.Type = "transaction.status_changed"
	ev.AggregateId = aggregate(ev, "transaction", txID)
	ev.Data = &leadstreamv1.Event_Transaction{Transaction: &leadstreamv1.TransactionStatusChange{
		TransactionId:   txID,
		OldStatus:       transactionStatus(p.EventData.OldStatus),
		NewStatus:       transactionStatus(newStatus),
		AdvertisementId: adID,
		BuyerId:         t.BuyerID.str(),
		Amount:          money(t.Amount, ""),
		ShippingCosts:   money(t.ShippingCosts, ""),
	}}
	return nil
}

// callTypes maps the Freespee eventData.eventType to the event type.
var callTypes = map[string]struct {
	typ  string
	kind leadstreamv1.CallType
}{
	"0": {"call.completed", leadstreamv1.CallType_CALL_TYPE_POST_CALL},
	"1": {"call.sms", leadstreamv1.CallType_CALL_TYPE_SMS},
	"2": {"call.incoming", leadstreamv1.CallType_CALL_TYPE_PRE_CALL},
}

func (p *apiEvent) call(ev *leadstreamv1.Event) error {
	d := &p.EventData
	ct, ok := callTypes[d.CallType.str()]
	if !ok {
		return unsupported(api, "call eventData.eventType", d.CallType)
	}
	var callID, freespeeID text
	if d.CallID != nil {
		callID = *d.CallID
	}
	if d.FreespeeID != nil {
		freespeeID = *d.FreespeeID
	}
	id := first(callID, freespeeID)
	if id == "" {
		return missing(api, ct.typ, "eventData.callId and freespeeId")
	}
	ev.Type = ct.typ
	ev.AggregateId = aggregate(ev, "call", id)
	ev.Data = &leadstreamv1.Event_Call{Call: &leadstreamv1.Call{
		CallId:          callID.str(),
		FreespeeId:      freespeeID.str(),
		Type:            ct.kind,
		StartedAt:       parseTime(d.Start),
		DurationSeconds: d.Duration.int32(),
		FromNumber:      d.FromNumber.str(),
		FromNumberArea:  d.FromNumberArea.str(),
		ToNumber:        d.ToNumber.str(),
		EndNumber:       d.EndNumber.str(),
		Channel:         d.Channel.str(),
		Answered:        bool(d.Answered),
		PublisherId:     d.PublisherID.str(),
		CampaignId:      d.CampaignID.str(),
		Referrer:        d.Referrer.str(),
		Url:             d.URL.str(),
		UserId:          d.UserID.str(),
		AdvertisementId: d.AdvertisementID.str(),
	}}
	return nil
}

// user maps a bidder or asker; nil when neither id nor nickname is sent.
func user(u apiUser) *leadstreamv1.Person {
	return nonEmpty(&leadstreamv1.Person{Id: u.ID.str(), Nickname: u.NickName.str()})
}

// transactionStatus reads a documented status in any case; anything else is
// TRANSACTION_STATUS_UNKNOWN.
func transactionStatus(t text) leadstreamv1.TransactionStatus {
	s := strings.ToUpper(t.str())
	if s == "CANCELED" {
		s = "CANCELLED"
	}
	return leadstreamv1.TransactionStatus(leadstreamv1.TransactionStatus_value["TRANSACTION_STATUS_"+s])
}
