package webhook_test

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/adaptertest"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

func body(t *testing.T, d *adapter.Delivery) map[string]json.RawMessage {
	t.Helper()
	ce, err := webhook.NewCloudEvent(d)
	if err != nil {
		t.Fatalf("NewCloudEvent: %v", err)
	}
	b, err := ce.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, b)
	}
	return m
}

func str(t *testing.T, m map[string]json.RawMessage, key string) string {
	t.Helper()
	var s string
	if raw, ok := m[key]; !ok || json.Unmarshal(raw, &s) != nil {
		t.Errorf("attribute %q missing or not a string: %s", key, m[key])
	}
	return s
}

func TestCloudEventBody(t *testing.T) {
	ev := adaptertest.Event("0b5e6c1e-7d3a-5f4e-9c2b-1a2b3c4d5e6f")
	m := body(t, &adapter.Delivery{Event: ev, Attempt: 1})
	want := map[string]string{
		"specversion":        "1.0",
		"id":                 ev.Id,
		"type":               "lead.created",
		"source":             "/leadstream/sources/mp-leads",
		"subject":            "mp-leads/conversation/conv-4711",
		"time":               "2026-03-14T09:26:53Z",
		"datacontenttype":    "application/json",
		"leadstreamtenant":   "demo-dealer",
		"leadstreamprovider": "marktplaats-lms",
	}
	for k, v := range want {
		if got := str(t, m, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"leadstreamorphan", "leadstreammissing"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present on an event that is not an orphan", k)
		}
	}
	// Only the typed data travels, not the envelope or the provider payload.
	for _, k := range []string{"payload", "rawRef", "providerEventId"} {
		if _, ok := m[k]; ok {
			t.Errorf("body carries envelope field %q", k)
		}
	}
	if !strings.Contains(string(m["data"]), `"leadId":"lead-4711"`) {
		t.Errorf("data %s: want protojson with lowerCamelCase names", m["data"])
	}
	var lead leadstreamv1.Lead
	if err := protojson.Unmarshal(m["data"], &lead); err != nil {
		t.Fatalf("data is not protojson of a Lead: %v", err)
	}
	if !proto.Equal(&lead, ev.GetLead()) {
		t.Errorf("data decodes to %v, want the event's lead %v", &lead, ev.GetLead())
	}
}

func TestCloudEventOrphan(t *testing.T) {
	m := body(t, &adapter.Delivery{Event: adaptertest.Event("e"), Orphan: true, Attempt: 1})
	if string(m["leadstreamorphan"]) != "true" {
		t.Errorf("leadstreamorphan = %s, want true", m["leadstreamorphan"])
	}
	if _, ok := m["leadstreammissing"]; ok {
		t.Errorf("leadstreammissing = %s on an orphan that names nothing missing, want it omitted", m["leadstreammissing"])
	}
}

// TestCloudEventMissing: an orphan names what it went without, as one
// string attribute (CloudEvents extensions have no list type).
func TestCloudEventMissing(t *testing.T) {
	ev := adaptertest.Event("e")
	ev.Type = "lead.paid"
	m := body(t, &adapter.Delivery{Event: ev, Orphan: true, Missing: []string{"lead.invoiced", "lead.sold"}, Attempt: 1})
	if got := str(t, m, "leadstreammissing"); got != "lead.invoiced,lead.sold" {
		t.Errorf("leadstreammissing = %q, want %q", got, "lead.invoiced,lead.sold")
	}
	if got := missing(str(t, m, "leadstreammissing")); len(got) != 2 || got[0] != "lead.invoiced" || got[1] != "lead.sold" {
		t.Errorf("leadstreammissing reads back as %q", got)
	}
}

// missing reads the leadstreammissing attribute back into its facts, as an
// LMS would.
func missing(attr string) []string {
	if attr == "" {
		return nil
	}
	return strings.Split(attr, ",")
}

func TestCloudEventTimeFallsBackToReceived(t *testing.T) {
	ev := adaptertest.Event("e")
	ev.OccurredAt = nil
	if got := str(t, body(t, &adapter.Delivery{Event: ev}), "time"); got != "2026-03-14T09:26:55Z" {
		t.Errorf("time = %q, want received_at when the provider gave no time", got)
	}
}

func TestCloudEventOtherData(t *testing.T) {
	ev := adaptertest.Event("e")
	ev.Type = "transaction.status_changed"
	ev.Data = &leadstreamv1.Event_Transaction{Transaction: &leadstreamv1.TransactionStatusChange{
		TransactionId: "tx-1",
		OldStatus:     leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING,
		NewStatus:     leadstreamv1.TransactionStatus_TRANSACTION_STATUS_COMPLETED,
	}}
	m := body(t, &adapter.Delivery{Event: ev})
	var tx leadstreamv1.TransactionStatusChange
	if err := protojson.Unmarshal(m["data"], &tx); err != nil || !proto.Equal(&tx, ev.GetTransaction()) {
		t.Errorf("data %s decodes to %v (%v), want the transaction", m["data"], &tx, err)
	}

	ev.Data = nil
	m = body(t, &adapter.Delivery{Event: ev})
	if _, ok := m["data"]; ok {
		t.Errorf("data = %s on an event without typed data, want none", m["data"])
	}
	if _, ok := m["datacontenttype"]; ok {
		t.Error("datacontenttype without data")
	}
}

// TestCloudEventDeterministic: the same event gives the same bytes, so a
// retry's body equals the first attempt's.
func TestCloudEventDeterministic(t *testing.T) {
	encode := func() string {
		ce, err := webhook.NewCloudEvent(&adapter.Delivery{Event: adaptertest.Event("e")})
		if err != nil {
			t.Fatal(err)
		}
		b, err := ce.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	first := encode()
	if strings.ContainsAny(first, "\n\t") || strings.Contains(first, ": ") {
		t.Errorf("body is not compact: %s", first)
	}
	for range 5 {
		if got := encode(); got != first {
			t.Fatalf("encodings differ:\n%s\n%s", first, got)
		}
	}
}

func TestCloudEventNeedsIDAndType(t *testing.T) {
	for name, d := range map[string]*adapter.Delivery{
		"nil delivery": nil,
		"no event":     {Attempt: 1},
		"no id":        {Event: &leadstreamv1.Event{Type: "lead.created"}},
		"no type":      {Event: &leadstreamv1.Event{Id: "e"}},
	} {
		if _, err := webhook.NewCloudEvent(d); !adapter.IsTerminal(err) {
			t.Errorf("%s: NewCloudEvent returned %v, want a terminal error", name, err)
		}
	}
}
