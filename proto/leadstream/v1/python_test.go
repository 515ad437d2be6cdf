package leadstreamv1_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// python3 returns a Python 3 that has the protobuf runtime, preferring
// Debian's /usr/bin/python3 (where apt-get puts python3-protobuf) over
// whatever python3 comes first on PATH (pyenv's, say), or skips the test.
func python3(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import google.protobuf").Run() == nil {
			return p
		}
	}
	t.Skip("skipping the Python decode example: no python3 with the protobuf module " +
		"(Debian: apt-get install -y python3-protobuf; make test installs it where it can)")
	return ""
}

// TestPythonDecodeExample runs the README's Python example on EVENTS bodies
// and checks that it decodes them, from the committed descriptor set alone,
// to the protojson Go writes: the conventions the webhook's data follows.
func TestPythonDecodeExample(t *testing.T) {
	py := python3(t)
	paid := &leadstreamv1.Event{
		Id: "0b7c9a8e-1f2d-5e3c-8b4a-6d5e4f3a2b1c", Type: "lead.paid", Tenant: "demo-dealer",
		Source: "offerte", Provider: "offerte-adviseur", AggregateId: "offerte/lead/12345",
		OccurredAt: timestamppb.New(time.Date(2026, 12, 5, 9, 30, 0, 0, time.UTC)),
		Data: &leadstreamv1.Event_LeadStatus{LeadStatus: &leadstreamv1.LeadStatusChange{
			LeadId: "12345", Status: leadstreamv1.LeadStatus_LEAD_STATUS_PAID, InvoiceId: "inv-7",
		}},
	}
	for _, tc := range []struct {
		name string
		ev   *leadstreamv1.Event
		// want are a few values in the decoded JSON, by path, that show the
		// protojson conventions.
		want map[string]any
	}{
		{"lead.created", sampleEvent(), map[string]any{
			"id":                                   "6f1c6e2a-3c1b-5d6e-9a43-0b2f2f6c7d8e",
			"aggregateId":                          "marktplaats-lms/lead/lead-123",
			"occurredAt":                           "2025-11-26T12:00:00.123456789Z",
			"rawRef.sequence":                      "42",
			"lead.advertisement.price.amountCents": "1995000",
			"lead.tradeIn.mileageKm":               "142000",
			"lead.buyer.email":                     "jan@example.com",
			"payload":                              "eyJsZWFkSWQiOiJsZWFkLTEyMyJ9",
		}},
		{"lead.paid", paid, map[string]any{
			"type":              "lead.paid",
			"leadStatus.status": "LEAD_STATUS_PAID",
			"occurredAt":        "2026-12-05T09:30:00Z",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := proto.Marshal(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, "python/decode_event.py", "event.binpb")
			cmd.Stdin = bytes.NewReader(body)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("decode_event.py: %v\n%s", err, stderr.Bytes())
			}
			var got, want map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("decode_event.py printed no JSON object: %v\n%s", err, out)
			}
			goJSON, err := protojson.Marshal(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(goJSON, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Python decoded\n%s\nGo's protojson is\n%s", out, goJSON)
			}
			for path, v := range tc.want {
				if g := lookup(got, path); g != v {
					t.Errorf("%s = %#v, want %#v", path, g, v)
				}
			}
		})
	}
}

// lookup follows a dotted path of object keys.
func lookup(m map[string]any, path string) any {
	var v any = m
	for _, key := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[key]
	}
	return v
}
