package mapping

import (
	"strings"
	"testing"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

func TestMarktplaatsAPI(t *testing.T) {
	bid := func(want *leadstreamv1.Bid) func(*testing.T, *leadstreamv1.Event) {
		return func(t *testing.T, ev *leadstreamv1.Event) {
			equal(t, "bid", ev.GetBid(), want)
		}
	}
	transaction := func(want *leadstreamv1.TransactionStatusChange) func(*testing.T, *leadstreamv1.Event) {
		return func(t *testing.T, ev *leadstreamv1.Event) {
			if ev.AggregateId != "mp-api/transaction/"+want.TransactionId {
				t.Errorf("aggregate %q", ev.AggregateId)
			}
			equal(t, "transaction", ev.GetTransaction(), want)
		}
	}
	call := func(typ, aggregate string, want *leadstreamv1.Call) func(*testing.T, *leadstreamv1.Event) {
		return func(t *testing.T, ev *leadstreamv1.Event) {
			if ev.Type != typ || ev.AggregateId != aggregate {
				t.Errorf("type %q aggregate %q, want %q %q", ev.Type, ev.AggregateId, typ, aggregate)
			}
			equal(t, "call", ev.GetCall(), want)
		}
	}
	eur := func(cents int64) *leadstreamv1.Money { return &leadstreamv1.Money{AmountCents: cents, Currency: "EUR"} }

	runCases(t, api, []mapCase{
		{
			name:  "bid: bidId",
			kind:  "bid",
			body:  `{"id": "e1", "eventType": "BidPlacedEvent", "eventData": {"advertisementItemId": "m1"}, "_embedded": {"mp:bid": {"bidId": 3, "amount": 1100}}}`,
			check: bid(&leadstreamv1.Bid{BidId: "3", AdvertisementId: "m1", Amount: eur(1100)}),
		},
		{
			name:  "bid: id",
			kind:  "bid",
			body:  `{"id": "e1", "eventType": "BidPlacedEvent", "eventData": {"advertisementItemId": "m1"}, "_embedded": {"mp:bid": {"id": "4"}}}`,
			check: bid(&leadstreamv1.Bid{BidId: "4", AdvertisementId: "m1"}),
		},
		{
			name:  "bid: bidId wins over id",
			kind:  "bid",
			body:  `{"eventType": "BidPlacedEvent", "eventData": {"advertisementItemId": "m1"}, "_embedded": {"mp:bid": {"id": 4, "bidId": 5}}}`,
			check: bid(&leadstreamv1.Bid{BidId: "5", AdvertisementId: "m1"}),
		},
		{
			name: "bid: _embedded as an array, numeric advertisement id, amount as string, eventType in other case",
			kind: "bid",
			body: `{"eventType": "bidclosedevent", "eventData": {"advertisementItemId": 2034567890, "closedBySeller": "true"},
				"_embedded": {"mp:bid": [{"id": 6, "amount": "1100", "bidder": {"id": 7713, "nickname": "Joe"}}, {"id": 7}]}}`,
			check: bid(&leadstreamv1.Bid{BidId: "6", AdvertisementId: "2034567890", Amount: eur(1100),
				Bidder: &leadstreamv1.Person{Id: "7713", Nickname: "Joe"}, ClosedBySeller: true}),
		},
		{
			name:  "bid: empty _embedded array, advertisement from _links",
			kind:  "bid",
			body:  `{"eventType": "BidPlacedEvent", "_links": {"mp:advertisement": {"href": "/v1/advertisements/m9?x=1"}}, "_embedded": {"mp:bid": []}}`,
			check: bid(&leadstreamv1.Bid{AdvertisementId: "m9"}),
		},
		{
			name:   "bid without advertisement",
			kind:   "bid",
			body:   `{"eventType": "BidPlacedEvent", "_embedded": {"mp:bid": {"bidId": 3, "bidder": {"nickName": "autofan88"}}}}`,
			reason: "missing_field",
		},
		{
			name:   "bid: mp:bid is a scalar",
			kind:   "bid",
			body:   `{"eventType": "BidPlacedEvent", "eventData": {"advertisementItemId": "m1"}, "_embedded": {"mp:bid": "autofan88"}}`,
			reason: "unparseable",
		},
		{
			name:   "eventData is not an object",
			kind:   "bid",
			body:   `{"eventType": "BidPlacedEvent", "eventData": "advertisement m1"}`,
			reason: "unparseable",
		},
		{
			name: "asq: asker as array",
			kind: "asq",
			body: `{"eventType": "AsqCreatedEvent", "eventData": {"advertisementItemId": "m1", "asqMessage": "Zit er een trekhaak op?"}, "_embedded": {"mp:asker": [{"id": 88121, "nickName": "autofan88"}]}}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				equal(t, "asq", ev.GetAsq(), &leadstreamv1.AskSellerQuestion{AdvertisementId: "m1", Message: "Zit er een trekhaak op?",
					Asker: &leadstreamv1.Person{Id: "88121", Nickname: "autofan88"}})
			},
		},
		{
			name: "transaction: unknown and lower-case statuses",
			kind: "transaction",
			body: `{"eventType": "transactionStatusChanged", "eventData": {"transactionId": "987654", "oldStatus": "ON_HOLD", "newStatus": "completed"}}`,
			check: transaction(&leadstreamv1.TransactionStatusChange{TransactionId: "987654",
				OldStatus: leadstreamv1.TransactionStatus_TRANSACTION_STATUS_UNKNOWN,
				NewStatus: leadstreamv1.TransactionStatus_TRANSACTION_STATUS_COMPLETED}),
		},
		{
			name: "transaction: id and new status from the embedded transaction",
			kind: "transaction",
			body: `{"eventType": "TRANSACTIONSTATUSCHANGED", "eventData": {"oldStatus": "CREATED"},
				"_embedded": {"mp:advertisement-transaction": [{"_links": {"self": [{"href": "https://api.marktplaats.nl/v1/advertisements/m5/transactions/11"}]},
				"transactionId": 11, "buyerId": "7713", "amount": 1100.0, "shippingCosts": "695", "status": "PENDING"}]}}`,
			check: transaction(&leadstreamv1.TransactionStatusChange{TransactionId: "11", AdvertisementId: "m5", BuyerId: "7713",
				OldStatus:     leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CREATED,
				NewStatus:     leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING,
				Amount:        eur(1100),
				ShippingCosts: eur(695)}),
		},
		{
			name:   "transaction without transactionId",
			kind:   "transaction",
			body:   `{"eventType": "transactionStatusChanged", "eventData": {"oldStatus": "PENDING", "newStatus": "COMPLETED"}, "_embedded": {"mp:advertisement-transaction": {"buyerId": 7713}}}`,
			reason: "missing_field",
		},
		{
			name: "call: any eventType with a callId is a call",
			kind: "call",
			body: `{"id": "e1", "eventType": "FooEvent", "created": "2026-11-20T12:05:41.000Z",
				"eventData": {"callId": "call-1", "eventType": 0, "duration": 279, "answered": "true", "start": "2026-11-20T12:01:02.000+0000"}}`,
			check: call("call.completed", "mp-api/call/call-1", &leadstreamv1.Call{CallId: "call-1", Type: leadstreamv1.CallType_CALL_TYPE_POST_CALL,
				DurationSeconds: 279, Answered: true, StartedAt: parseTime("2026-11-20T12:01:02Z")}),
		},
		{
			name: "call: freespeeId only, SMS",
			kind: "call",
			body: `{"eventData": {"freespeeId": 5550192, "eventType": "1", "duration": "n/a"}}`,
			check: call("call.sms", "mp-api/call/5550192", &leadstreamv1.Call{FreespeeId: "5550192",
				Type: leadstreamv1.CallType_CALL_TYPE_SMS}),
		},
		{
			name:  "call: pre-call",
			kind:  "call",
			body:  `{"eventType": "CallEvent", "eventData": {"callId": "c-2", "freespeeId": null, "eventType": "2", "fromNumber": "+31201234567"}}`,
			check: call("call.incoming", "mp-api/call/c-2", &leadstreamv1.Call{CallId: "c-2", Type: leadstreamv1.CallType_CALL_TYPE_PRE_CALL, FromNumber: "+31201234567"}),
		},
		{
			name:   "call: unknown call eventType",
			kind:   "call",
			body:   `{"eventData": {"callId": "c-2", "eventType": "7", "fromNumber": "+31201234567"}}`,
			reason: "unsupported_type",
		},
		{
			name:   "call: callId sent empty",
			kind:   "call",
			body:   `{"eventData": {"callId": "", "eventType": "0", "fromNumber": "+31201234567"}}`,
			reason: "missing_field",
		},
		{
			name:   "call fields null: not a call",
			kind:   "call",
			body:   `{"eventType": "FooEvent", "eventData": {"callId": null, "freespeeId": null, "eventType": "0"}}`,
			reason: "unsupported_type",
		},
		{
			name:   "the docs' example",
			kind:   "unknown",
			body:   `{"id":"id","eventType":"EventType","created":"2015-01-01T11:00:00.000Z","eventData":{"property":"value"}}`,
			reason: "unsupported_type",
		},
	})
}

// TestMarktplaatsAPIUnsupportedMessage: the error names the provider and
// its eventType, which is not personal data.
func TestMarktplaatsAPIUnsupportedMessage(t *testing.T) {
	_, err := mapBody(api, "unknown", "id", []byte(`{"id":"id","eventType":"EventType","eventData":{"property":"value"}}`))
	if want := `marktplaats-api eventType "EventType"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %s", err, want)
	}
	long := strings.Repeat("X", 500)
	_, err = mapBody(api, "unknown", "id", []byte(`{"eventType":"`+long+`"}`))
	if err == nil || len(err.Error()) > 200 {
		t.Errorf("error for a long eventType is not bounded: %d bytes", len(err.Error()))
	}
}

func FuzzMarktplaatsAPI(f *testing.F) { fuzzProvider(f, api) }
