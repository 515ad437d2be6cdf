package adaptertest

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// Event returns a lead.created event with id, filled in the way the
// normalizer fills one, for adapter and dispatcher tests. Each call returns a
// new event.
func Event(id string) *leadstreamv1.Event {
	occurred := time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	return &leadstreamv1.Event{
		Id:              id,
		Type:            "lead.created",
		Tenant:          "demo-dealer",
		Source:          "mp-leads",
		Provider:        "marktplaats-lms",
		ProviderEventId: "lead-4711",
		OccurredAt:      timestamppb.New(occurred),
		ReceivedAt:      timestamppb.New(occurred.Add(2 * time.Second)),
		AggregateId:     "mp-leads/conversation/conv-4711",
		RawRef:          &leadstreamv1.RawRef{Stream: "RAW", Sequence: 42, Subject: "raw.marktplaats-lms.lead.mp-leads"},
		Payload:         []byte(`{"leadId":"lead-4711"}`),
		Data: &leadstreamv1.Event_Lead{Lead: &leadstreamv1.Lead{
			LeadId:         "lead-4711",
			ConversationId: "conv-4711",
			Platform:       "marktplaats",
			Advertisement: &leadstreamv1.Advertisement{
				Id:    "m2045336001",
				Title: "Volkswagen Golf 1.4 TSI Highline",
				Price: &leadstreamv1.Money{AmountCents: 1249500, Currency: "EUR"},
			},
			Buyer:    &leadstreamv1.Person{Name: "J. Jansen", Email: "j.jansen@example.org"},
			Message:  "Is de auto nog beschikbaar?",
			Requests: []string{"testDrive"},
		}},
	}
}
