package leadstreamv1_test

import (
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

func sampleEvent() *leadstreamv1.Event {
	at := time.Date(2025, 11, 26, 12, 0, 0, 123456789, time.UTC)
	return &leadstreamv1.Event{
		Id:                 "6f1c6e2a-3c1b-5d6e-9a43-0b2f2f6c7d8e",
		Type:               "lead.created",
		Tenant:             "dealer-utrecht",
		Source:             "marktplaats-lms",
		Provider:           "marktplaats-lms",
		ProviderEventId:    "lead-123",
		OccurredAt:         timestamppb.New(at),
		ReceivedAt:         timestamppb.New(at.Add(time.Second)),
		AggregateId:        "marktplaats-lms/lead/lead-123",
		RawRef:             &leadstreamv1.RawRef{Stream: "RAW", Sequence: 42, Subject: "raw.marktplaats-lms.dealer-utrecht"},
		Payload:            []byte(`{"leadId":"lead-123"}`),
		PayloadContentType: "application/json",
		Data: &leadstreamv1.Event_Lead{Lead: &leadstreamv1.Lead{
			LeadId:         "lead-123",
			ConversationId: "conv-9",
			Platform:       "marktplaats",
			Advertisement: &leadstreamv1.Advertisement{
				Id: "m123456789", Title: "Volkswagen Golf 1.5 TSI", Url: "https://example.com/a/m123456789",
				Price: &leadstreamv1.Money{AmountCents: 1995000, Currency: "EUR"},
			},
			Buyer: &leadstreamv1.Person{
				Name: "Jan Jansen", Email: "jan@example.com", Phone: "+31612345678",
				Address: &leadstreamv1.Address{City: "Utrecht", Country: "NL"},
			},
			Seller:    &leadstreamv1.Seller{Id: "s-1", ExternalReference: "vestiging-utrecht", SalesAgent: "piet"},
			Message:   "Is de auto nog beschikbaar?",
			TradeIn:   &leadstreamv1.TradeIn{LicensePlate: "AB-123-C", Make: "Opel", Model: "Astra", Year: 2015, MileageKm: 142000},
			Requests:  []string{"testDrive", "financing"},
			CreatedAt: timestamppb.New(at),
		}},
	}
}

func TestEventBinaryRoundTrip(t *testing.T) {
	in := sampleEvent()
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	out := &leadstreamv1.Event{}
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("binary round trip changed the event:\n in: %v\nout: %v", in, out)
	}
	lead, ok := out.GetData().(*leadstreamv1.Event_Lead)
	if !ok {
		t.Fatalf("data is %T, want *Event_Lead", out.GetData())
	}
	if got := lead.Lead.GetTradeIn().GetMileageKm(); got != 142000 {
		t.Errorf("trade_in.mileage_km = %d, want 142000", got)
	}
	if out.GetChatMessage() != nil {
		t.Error("GetChatMessage() is set on a lead event")
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	in := sampleEvent()
	b, err := protojson.Marshal(in)
	if err != nil {
		t.Fatalf("protojson.Marshal: %v", err)
	}
	out := &leadstreamv1.Event{}
	if err := protojson.Unmarshal(b, out); err != nil {
		t.Fatalf("protojson.Unmarshal: %v\n%s", err, b)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("JSON round trip changed the event:\n in: %v\nout: %v\njson: %s", in, out, b)
	}
	// The JSON names are protoc's lowerCamelCase json_name, and the oneof case is
	// its field's name.
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"providerEventId", "occurredAt", "rawRef", "payloadContentType", "lead"} {
		if _, ok := m[key]; !ok {
			t.Errorf("JSON has no %q: %s", key, b)
		}
	}
}
