package mapping

import (
	"testing"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// lbDocExample is the seed's example verbatim, trailing commas and all.
const lbDocExample = `{
"event_type": "enquiry_created",
"payload": {
"requested_location": {
"href": "https://www.lokalebasen.dk/leje/kontorlokaler/2100-kobenhavn-o/dampfaergevej-10559"
},
"location": {
"id": "20064",
"external_key": "EJ-593915GV",
"href": "https://www.lokalebasen.dk/leje/kontorlokaler/2100-kobenhavn-o/aebelogade-20064"
},
"enquiry": {
"type": "extra",
},
"client": {
"email": "angela7913@hotmail.com",
"name": "Angela Baker",
"company": "Bakers Inc.",
"phone": "52 25 05 59",
},
"comment": "I would like something with a grand view over the city."
}
}`

func TestLokalebasen(t *testing.T) {
	runCases(t, lokalebasen, []mapCase{
		{
			name: "numeric location id, type in upper case, unknown fields",
			kind: "enquiry",
			body: `{"event_type": "enquiry_created", "sent_by": "v2", "payload": {"location": {"id": 20064, "floor": 3},
				"enquiry": {"type": "CLIENT"}, "comment": "Ring venligst"}}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				if ev.OccurredAt != nil || ev.AggregateId != "lokalebasen/enquiry/"+ev.ProviderEventId {
					t.Errorf("occurred_at %v, aggregate %q", ev.OccurredAt, ev.AggregateId)
				}
				equal(t, "enquiry", ev.GetEnquiry(), &leadstreamv1.Enquiry{Type: leadstreamv1.EnquiryType_ENQUIRY_TYPE_CLIENT,
					Location: &leadstreamv1.Location{Id: "20064"}, Comment: "Ring venligst"})
			},
		},
		{
			name: "unknown enquiry type, no client",
			kind: "enquiry",
			body: `{"event_type": "enquiry_created", "payload": {"enquiry": {"type": "matched"}}}`,
			check: func(t *testing.T, ev *leadstreamv1.Event) {
				equal(t, "enquiry", ev.GetEnquiry(), &leadstreamv1.Enquiry{})
			},
		},
		{
			name:   "the seed's example has trailing commas",
			kind:   "enquiry",
			body:   lbDocExample,
			reason: "unparseable",
		},
		{
			name:   "another event type",
			kind:   "unknown",
			body:   `{"event_type": "location_updated", "payload": {"location": {"id": "20064"}}}`,
			reason: "unsupported_type",
		},
		{
			name:   "client is not an object",
			kind:   "enquiry",
			body:   `{"event_type": "enquiry_created", "payload": {"client": "Angela Baker"}}`,
			reason: "unparseable",
		},
	})
}

func FuzzLokalebasen(f *testing.F) { fuzzProvider(f, lokalebasen) }
