package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const (
	// payloadDir holds the shared example bodies, one folder per provider.
	payloadDir = "../../../../../shared/testdata/payloads"
	// goldenDir holds the reviewed mapping of each example body.
	goldenDir = "../../testdata/golden"
)

// sources are the configured source names the tests deliver each provider's
// webhooks to (as in deploy/local).
var sources = map[string]string{
	lms:         "mp-leads",
	api:         "mp-api",
	offerte:     "offerte",
	lokalebasen: "lokalebasen",
}

// receivedAt is the edge's receive time in every test envelope.
var receivedAt = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// sample is one shared example payload and how the edge stored it.
type sample struct {
	file string // under payloadDir; its folder is the provider
	kind string
	pid  string
}

// samples are the shared example payloads with the kind and provider event
// id the edge gives them (services/edge/extract). pid "" stands for the
// body's hash: Lokalebasen sends no id.
var samples = []sample{
	{"lokalebasen/enquiry-created-client.json", "enquiry", ""},
	{"lokalebasen/enquiry-created.json", "enquiry", ""},
	{"marktplaats-api/asq-created.json", "asq", "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"},
	{"marktplaats-api/bid-closed.json", "bid", "0d4e2b9a-7c31-4f5e-8a06-b1c9d2e3f470"},
	{"marktplaats-api/bid-placed.json", "bid", "8b0f6c1e-4f7a-4b61-9d0a-2f3c1a7e5d11"},
	{"marktplaats-api/call.json", "call", "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"},
	{"marktplaats-api/doc-example.json", "unknown", "id"},
	{"marktplaats-api/transaction-status-changed.json", "transaction", "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9"},
	{"marktplaats-lms/chat.json", "chat", "9a3c1e77-52b4-4d0e-b1f8-3c2d6e8f0a45"},
	{"marktplaats-lms/lead.json", "lead", "5f1d7c2a-8e43-4b7e-9a51-0c6f2d9b3e10"},
	{"offerte-adviseur/invoice-created.json", "invoice", "e490Z1V1RrRVnp14"},
	{"offerte-adviseur/invoice-paid.json", "invoice", "f5A1a2W2SsSWoq25"},
	{"offerte-adviseur/lead-created.json", "lead", "a056V7R7NmNRjl70"},
	{"offerte-adviseur/lead-invoiced.json", "lead", "c278X9T9PpPTln92"},
	{"offerte-adviseur/lead-paid.json", "lead", "d389Y0U0QqQUmo03"},
	{"offerte-adviseur/lead-sold.json", "lead", "b167W8S8OoOSkm81"},
}

func readPayload(tb testing.TB, rel string) []byte {
	tb.Helper()
	body, err := os.ReadFile(filepath.Join(payloadDir, filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// newRaw builds the RAW envelope the edge would store for body. pid ""
// means the body's hash.
func newRaw(provider, kind, pid string, body []byte) *envelope.Raw {
	source := sources[provider]
	if pid == "" {
		pid = eventid.BodyID(body)
	}
	return &envelope.Raw{
		Source:          source,
		Provider:        provider,
		Tenant:          "demo-dealer",
		Kind:            kind,
		EventID:         eventid.New(source, pid),
		ProviderEventID: pid,
		ReceivedAt:      receivedAt,
		Method:          "POST",
		Path:            "/hooks/" + source,
		ContentType:     "application/json",
		Body:            body,
	}
}

// mapBody maps body as the edge would have stored it.
func mapBody(provider, kind, pid string, body []byte) (*leadstreamv1.Event, error) {
	raw := newRaw(provider, kind, pid, body)
	return Map(raw, &leadstreamv1.RawRef{Stream: "RAW", Sequence: 1, Subject: raw.Subject()})
}

// TestSamplesCovered makes a new shared payload fail until it has a row in
// samples (and so a golden file).
func TestSamplesCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(payloadDir, "*", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no payloads under %s: %v", payloadDir, err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(payloadDir, f)
		rel = filepath.ToSlash(rel)
		if !slices.ContainsFunc(samples, func(s sample) bool { return s.file == rel }) {
			t.Errorf("payload %s has no row in samples", rel)
		}
	}
}

// goldenError is the golden file of a payload that must not map.
type goldenError struct {
	Reason string `json:"reason"`
	Error  string `json:"error"`
}

// render gives the golden bytes of a Map result: protojson of the event,
// re-indented through encoding/json because protojson's whitespace is
// deliberately unstable, or the error with its reason.
func render(tb testing.TB, ev *leadstreamv1.Event, mapErr error) []byte {
	tb.Helper()
	var out []byte
	if mapErr != nil {
		b, err := json.MarshalIndent(goldenError{Reason: Reason(mapErr), Error: mapErr.Error()}, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		out = b
	} else {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: false}.Marshal(ev)
		if err != nil {
			tb.Fatal(err)
		}
		var compact, indented bytes.Buffer
		if err := json.Compact(&compact, b); err != nil {
			tb.Fatal(err)
		}
		if err := json.Indent(&indented, compact.Bytes(), "", "  "); err != nil {
			tb.Fatal(err)
		}
		out = indented.Bytes()
	}
	return append(out, '\n')
}

// TestGolden maps every shared payload and compares with its reviewed
// golden file: testdata/golden/<provider>/<name>.json for an event,
// <name>.error.json for a payload that must fail. -update rewrites them.
func TestGolden(t *testing.T) {
	for i, s := range samples {
		t.Run(s.file, func(t *testing.T) {
			provider := filepath.Dir(s.file)
			body := readPayload(t, s.file)
			raw := newRaw(provider, s.kind, s.pid, body)
			ev, err := Map(raw, &leadstreamv1.RawRef{Stream: "RAW", Sequence: uint64(i + 1), Subject: raw.Subject()})
			got := render(t, ev, err)

			stem := filepath.Join(goldenDir, provider, strings.TrimSuffix(filepath.Base(s.file), ".json"))
			path, stale := stem+".json", stem+".error.json"
			if err != nil {
				path, stale = stale, path
			}
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(stale); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Fatal(err)
				}
				return
			}
			if _, err := os.Stat(stale); err == nil {
				t.Errorf("%s exists, but Map gave the other outcome (see %s)", stale, path)
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/mapping -update and review the result)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from Map's output (review, then -update):\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// TestSampleOutcomes states the essentials of each golden file, so that an
// -update that changes them cannot pass unnoticed.
func TestSampleOutcomes(t *testing.T) {
	tests := []struct {
		file, typ, aggregate string
		occurred             string // RFC 3339, "" for unset
		reason               string // for a payload that must fail
	}{
		{file: "lokalebasen/enquiry-created.json", typ: "enquiry.created", aggregate: "lokalebasen/enquiry/sha256:"},
		{file: "marktplaats-api/asq-created.json", typ: "asq.created", aggregate: "mp-api/advertisement/m2034567890", occurred: "2026-11-20T11:02:13Z"},
		{file: "marktplaats-api/bid-closed.json", typ: "bid.closed", aggregate: "mp-api/advertisement/m2034567890", occurred: "2026-11-21T08:00:00Z"},
		{file: "marktplaats-api/bid-placed.json", typ: "bid.placed", aggregate: "mp-api/advertisement/m2034567890", occurred: "2026-11-20T10:20:00Z"},
		{file: "marktplaats-api/call.json", typ: "call.completed", aggregate: "mp-api/call/call-000192", occurred: "2026-11-20T12:05:41Z"},
		{file: "marktplaats-api/doc-example.json", reason: "unsupported_type"},
		{file: "marktplaats-api/transaction-status-changed.json", typ: "transaction.status_changed", aggregate: "mp-api/transaction/987654", occurred: "2026-11-22T14:30:00Z"},
		{file: "marktplaats-lms/chat.json", typ: "chat.message", aggregate: "mp-leads/conversation/c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394", occurred: "2026-11-20T10:16:30Z"},
		{file: "marktplaats-lms/lead.json", typ: "lead.created", aggregate: "mp-leads/conversation/c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394", occurred: "2026-11-20T10:15:00Z"},
		{file: "offerte-adviseur/invoice-created.json", typ: "invoice.created", aggregate: "offerte/invoice/5551", occurred: "2026-11-30T08:00:00Z"},
		{file: "offerte-adviseur/invoice-paid.json", typ: "invoice.paid", aggregate: "offerte/invoice/5551", occurred: "2026-12-05T13:45:00Z"},
		{file: "offerte-adviseur/lead-created.json", typ: "lead.created", aggregate: "offerte/lead/12345", occurred: "2026-11-20T09:00:00Z"},
		{file: "offerte-adviseur/lead-invoiced.json", typ: "lead.invoiced", aggregate: "offerte/lead/12345", occurred: "2026-11-30T08:00:00Z"},
		{file: "offerte-adviseur/lead-paid.json", typ: "lead.paid", aggregate: "offerte/lead/12345", occurred: "2026-12-05T13:45:00Z"},
		{file: "offerte-adviseur/lead-sold.json", typ: "lead.sold", aggregate: "offerte/lead/12345", occurred: "2026-11-20T09:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			i := slices.IndexFunc(samples, func(s sample) bool { return s.file == tt.file })
			if i < 0 {
				t.Fatalf("%s is not in samples", tt.file)
			}
			s := samples[i]
			ev, err := mapBody(filepath.Dir(s.file), s.kind, s.pid, readPayload(t, s.file))
			if tt.reason != "" {
				if got := Reason(err); got != tt.reason {
					t.Fatalf("Reason = %q (err %v), want %q", got, err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type != tt.typ || !strings.HasPrefix(ev.AggregateId, tt.aggregate) {
				t.Errorf("type %q aggregate %q, want %q and %q", ev.Type, ev.AggregateId, tt.typ, tt.aggregate)
			}
			var occurred string
			if ev.OccurredAt != nil {
				occurred = ev.OccurredAt.AsTime().Format(time.RFC3339)
			}
			if occurred != tt.occurred {
				t.Errorf("occurred_at %q, want %q", occurred, tt.occurred)
			}
			if kind, _ := Kind(ev.Type); kind != s.kind {
				t.Errorf("kind %q, want the edge's %q", kind, s.kind)
			}
		})
	}
}

// TestEnvelope checks the fields Map copies from RAW.
func TestEnvelope(t *testing.T) {
	body := readPayload(t, "marktplaats-lms/lead.json")
	raw := newRaw(lms, "lead", "lead-1", body)
	raw.ContentType = "application/json; charset=utf-8"
	ref := &leadstreamv1.RawRef{Stream: "RAW", Sequence: 7, Subject: raw.Subject()}
	ev, err := Map(raw, ref)
	if err != nil {
		t.Fatal(err)
	}
	want := &leadstreamv1.Event{
		Id: eventid.New("mp-leads", "lead-1"), Tenant: "demo-dealer", Source: "mp-leads", Provider: lms,
		ProviderEventId: "lead-1", RawRef: ref, PayloadContentType: "application/json; charset=utf-8",
	}
	got := &leadstreamv1.Event{
		Id: ev.Id, Tenant: ev.Tenant, Source: ev.Source, Provider: ev.Provider,
		ProviderEventId: ev.ProviderEventId, RawRef: ev.RawRef, PayloadContentType: ev.PayloadContentType,
	}
	if !proto.Equal(got, want) {
		t.Errorf("envelope %v, want %v", got, want)
	}
	if !bytes.Equal(ev.Payload, body) {
		t.Error("payload is not the body byte for byte")
	}
	if !ev.ReceivedAt.AsTime().Equal(receivedAt) {
		t.Errorf("received_at %v, want %v", ev.ReceivedAt.AsTime(), receivedAt)
	}
}

// TestDeterministic: mapping the same RAW message twice gives equal events
// whose id is eventid.New(source, provider event id), also when the
// envelope carries no id of its own.
func TestDeterministic(t *testing.T) {
	for _, s := range samples {
		t.Run(s.file, func(t *testing.T) {
			provider := filepath.Dir(s.file)
			body := readPayload(t, s.file)
			raw := newRaw(provider, s.kind, s.pid, body)
			ev1, err1 := Map(raw, nil)
			ev2, err2 := Map(raw, nil)
			raw.EventID = ""
			ev3, err3 := Map(raw, nil)
			if err1 != nil || err2 != nil || err3 != nil {
				if Reason(err1) == "unknown" || err1.Error() != err2.Error() || err1.Error() != err3.Error() {
					t.Fatalf("errors differ or are unlabelled: %v / %v / %v", err1, err2, err3)
				}
				return
			}
			if !proto.Equal(ev1, ev2) || !proto.Equal(ev1, ev3) {
				t.Errorf("Map is not deterministic:\n%v\n%v\n%v", ev1, ev2, ev3)
			}
			if want := eventid.New(sources[provider], raw.ProviderEventID); ev1.Id != want || ev3.Id != want {
				t.Errorf("ids %q, %q, want eventid.New = %q", ev1.Id, ev3.Id, want)
			}
		})
	}
}

// TestProviderEventIDDefault: an envelope without provider event id gets
// the body hash, as the edge would have given it.
func TestProviderEventIDDefault(t *testing.T) {
	body := readPayload(t, "lokalebasen/enquiry-created.json")
	raw := newRaw(lokalebasen, "enquiry", "", body)
	raw.ProviderEventID, raw.EventID = "", ""
	ev, err := Map(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	pid := eventid.BodyID(body)
	if ev.ProviderEventId != pid || ev.Id != eventid.New("lokalebasen", pid) || ev.AggregateId != "lokalebasen/enquiry/"+pid {
		t.Errorf("provider event id %q, id %q, aggregate %q", ev.ProviderEventId, ev.Id, ev.AggregateId)
	}
}

func TestKind(t *testing.T) {
	tests := []struct{ typ, kind, action string }{
		{"transaction.status_changed", "transaction", "status_changed"},
		{"lead.created", "lead", "created"},
		{"call.incoming", "call", "incoming"},
		{"nodot", "nodot", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if k, a := Kind(tt.typ); k != tt.kind || a != tt.action {
			t.Errorf("Kind(%q) = %q, %q, want %q, %q", tt.typ, k, a, tt.kind, tt.action)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{ErrUnparseable, "unparseable"},
		{ErrUnsupportedType, "unsupported_type"},
		{ErrMissingField, "missing_field"},
		{ErrKindMismatch, "kind_mismatch"},
		{errors.Join(errors.New("context"), ErrMissingField), "missing_field"},
		{errors.New("other"), "unknown"},
		{nil, "unknown"},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestEnvelopeErrors: what is wrong with the envelope rather than the
// payload is labelled too.
func TestEnvelopeErrors(t *testing.T) {
	body := readPayload(t, "marktplaats-api/bid-placed.json")
	tests := []struct {
		name   string
		raw    *envelope.Raw
		reason string
	}{
		{"nil envelope", nil, "unparseable"},
		{"unknown provider", &envelope.Raw{Provider: "acme", Kind: "bid", Body: body}, "unsupported_type"},
		{"kind unknown", newRaw(api, envelope.KindUnknown, "x", body), "unsupported_type"},
		{"kind of another type", newRaw(api, envelope.KindCall, "x", body), "unsupported_type"},
		{"no kind: the body decides", newRaw(api, "", "x", body), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Map(tt.raw, nil)
			if tt.reason == "" {
				if err != nil || ev.Type != "bid.placed" {
					t.Fatalf("Map = %v, %v, want bid.placed", ev, err)
				}
				return
			}
			if ev != nil || Reason(err) != tt.reason {
				t.Errorf("Map = %v, %v, want reason %s", ev, err, tt.reason)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want string // RFC 3339 in UTC; "" for unset
	}{
		{"2026-11-20T10:15:00Z", "2026-11-20T10:15:00Z"},
		{"2026-11-20T11:02:13.000Z", "2026-11-20T11:02:13Z"},
		{"2026-11-20T12:01:02.000+0000", "2026-11-20T12:01:02Z"},
		{"2026-11-20T12:01:02.5+0100", "2026-11-20T11:01:02.5Z"},
		{"2026-11-20T12:01:02+01:00", "2026-11-20T11:01:02Z"},
		{"2026-11-20T12:01:02.123456789-05:00", "2026-11-20T17:01:02.123456789Z"},
		{"2026-11-20T12:01:02+01", "2026-11-20T11:01:02Z"},
		{"2026-11-20T12:01:02", "2026-11-20T12:01:02Z"},
		{"2026-11-20 12:01:02", "2026-11-20T12:01:02Z"},
		{" 2026-11-20T12:01:02Z ", "2026-11-20T12:01:02Z"},
		{"2026-12-15", "2026-12-15T00:00:00Z"},
		{"", ""},
		{"yesterday", ""},
		{"2026-13-01T00:00:00Z", ""},
		{"0001-01-01T00:00:00+01:00", ""}, // before the Timestamp range
		{"1636631099", ""},
	}
	for _, tt := range tests {
		var got string
		if ts := parseTime(text(tt.in)); ts != nil {
			got = ts.AsTime().Format(time.RFC3339Nano)
		}
		if got != tt.want {
			t.Errorf("parseTime(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestScalars covers the tolerant scalar types every table uses.
func TestScalars(t *testing.T) {
	var p struct {
		S1, S2, S3, S4, S5 text
		N1, N2, N3, N4, N5 number
		F1, F2, F3, F4     boolean
		L1, L2, L3         list
	}
	body := `{"S1":"a\u00e9","S2":12345,"S3":null,"S4":{"x":1},"S5":true,
		"N1":1100,"N2":"279","N3":1.1e3,"N4":12.5,"N5":"abc",
		"F1":true,"F2":"true","F3":1,"F4":"no",
		"L1":[1,"b",null,""],"L2":"only","L3":null}`
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	texts := []text{p.S1, p.S2, p.S3, p.S4, p.S5}
	if want := []text{"aé", "12345", "", "", "true"}; !slices.Equal(texts, want) {
		t.Errorf("texts %q, want %q", texts, want)
	}
	numbers := []number{p.N1, p.N2, p.N3, p.N4, p.N5}
	if want := []number{{1100, true}, {279, true}, {1100, true}, {}, {}}; !slices.Equal(numbers, want) {
		t.Errorf("numbers %v, want %v", numbers, want)
	}
	flags := []boolean{p.F1, p.F2, p.F3, p.F4}
	if want := []boolean{true, true, true, false}; !slices.Equal(flags, want) {
		t.Errorf("flags %v, want %v", flags, want)
	}
	if !slices.Equal(p.L1, list{"1", "b"}) || !slices.Equal(p.L2, list{"only"}) || p.L3 != nil {
		t.Errorf("lists %q %q %q", p.L1, p.L2, p.L3)
	}
}

// eventTypeRE is what every mapped type looks like: a kind the normalizer
// has a consumer for, a dot, an action.
var eventTypeRE = regexp.MustCompile(`^(lead|chat|bid|asq|transaction|call|enquiry|invoice)\.[a-z_]+$`)

// checkResult asserts Map's contract on any input: an event that marshals,
// with an id, a kind.action type and data, or an error wrapping exactly one
// sentinel, and never both.
func checkResult(t *testing.T, raw *envelope.Raw, ev *leadstreamv1.Event, err error) {
	t.Helper()
	if err != nil {
		if ev != nil {
			t.Fatalf("Map returned an event and error %v", err)
		}
		n := 0
		for _, s := range []error{ErrUnparseable, ErrUnsupportedType, ErrMissingField, ErrKindMismatch} {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %q wraps %d sentinels, want 1", err, n)
		}
		return
	}
	if ev == nil || ev.Id == "" || ev.Data == nil || ev.AggregateId == "" {
		t.Fatalf("incomplete event %v", ev)
	}
	if !eventTypeRE.MatchString(ev.Type) {
		t.Fatalf("type %q is not kind.action", ev.Type)
	}
	if raw.EventID == "" && ev.Id != eventid.New(ev.Source, ev.ProviderEventId) {
		t.Fatalf("id %q is not eventid.New(source, provider event id)", ev.Id)
	}
	if _, err := proto.Marshal(ev); err != nil {
		t.Fatalf("proto.Marshal: %v", err)
	}
	if _, err := protojson.Marshal(ev); err != nil {
		t.Fatalf("protojson.Marshal: %v", err)
	}
}

// fuzzProvider fuzzes Map for one provider, seeded with its example payloads
// under each kind and a few broken ones. The kind is fuzzed too: it reaches
// the RAW subject in RawRef, and a garbled one must not break marshaling.
func fuzzProvider(f *testing.F, provider string) {
	for _, s := range samples {
		if filepath.Dir(s.file) != provider {
			continue
		}
		body := readPayload(f, s.file)
		f.Add(s.kind, body)
		f.Add("", body)
		f.Add(s.kind, body[:len(body)/2])
	}
	f.Add("unknown", []byte(`{}`))
	f.Add("lead", []byte(`[]`))
	f.Add("lead", []byte("{\"id\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, kind string, body []byte) {
		raw := newRaw(provider, kind, "", body)
		raw.EventID = "" // Map derives it
		ev, err := Map(raw, &leadstreamv1.RawRef{Stream: "RAW", Sequence: 1, Subject: raw.Subject()})
		checkResult(t, raw, ev, err)
	})
}

// BenchmarkMap maps each example payload; its -benchmem figures are the
// normalizer's per-event mapping cost.
func BenchmarkMap(b *testing.B) {
	for _, s := range samples {
		if s.kind == envelope.KindUnknown {
			continue
		}
		provider := filepath.Dir(s.file)
		raw := newRaw(provider, s.kind, s.pid, readPayload(b, s.file))
		ref := &leadstreamv1.RawRef{Stream: "RAW", Sequence: 1, Subject: raw.Subject()}
		b.Run(strings.TrimSuffix(s.file, ".json"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw.Body)))
			for b.Loop() {
				if _, err := Map(raw, ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// mapCase is one row of a provider's tolerance table: a body under a kind,
// and either the reason it must fail with or a check of the event.
type mapCase struct {
	name   string
	kind   string
	body   string
	reason string // "" for success
	check  func(t *testing.T, ev *leadstreamv1.Event)
}

// runCases maps each case for provider, asserts Map's contract, the
// expected outcome, and that no error quotes a value of its payload.
func runCases(t *testing.T, provider string, cases []mapCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := newRaw(provider, tc.kind, "", []byte(tc.body))
			ev, err := Map(raw, nil)
			checkResult(t, raw, ev, err)
			assertNoPayloadValues(t, err, raw.Body)
			if tc.reason != "" {
				if got := Reason(err); got != tc.reason {
					t.Fatalf("Map: %v (reason %q), want reason %q", err, got, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			if tc.check != nil {
				tc.check(t, ev)
			}
		})
	}
}

// equal compares a mapped message with the expected one.
func equal(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("%s:\ngot  %v\nwant %v", what, got, want)
	}
}

// jsonString matches a JSON string literal, also in a body that is not
// valid JSON as a whole.
var jsonString = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"(\s*:)?`)

// typeKeys hold the providers' event type discriminators: not personal,
// and quoted in unsupported_type errors on purpose.
var typeKeys = map[string]bool{"eventType": true, "type": true, "event_type": true}

// payloadValues returns the string values of body an error must never
// quote: every one of 4 characters or more, except event types and
// "marktplaats" (the LMS platform name, also part of a provider id).
func payloadValues(body []byte) []string {
	var vals []string
	key := ""
	for _, m := range jsonString.FindAllSubmatch(body, -1) {
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, m[1]...), '"'), &s) != nil {
			s = string(m[1])
		}
		if len(m[2]) > 0 { // a key
			key = s
			continue
		}
		if len(s) >= 4 && !typeKeys[key] && s != "marktplaats" {
			vals = append(vals, s)
		}
	}
	return vals
}

// assertNoPayloadValues fails when err quotes a value of body.
func assertNoPayloadValues(t *testing.T, err error, body []byte) {
	t.Helper()
	if err == nil {
		return
	}
	for _, v := range payloadValues(body) {
		if strings.Contains(err.Error(), v) {
			t.Errorf("error %q quotes the payload value %q", err, v)
		}
	}
}

// TestErrorsCarryNoPayloadValues breaks every example payload in several
// ways and checks that no resulting error quotes one of its values (names,
// emails, phones, messages, ids).
func TestErrorsCarryNoPayloadValues(t *testing.T) {
	idKeys := []string{"id", "leadId", "lead_id", "conversationId", "transactionId", "invoice_id", "advertisementItemId", "callId", "freespeeId", "_links"}
	checked := map[string]int{}
	for _, s := range samples {
		provider := filepath.Dir(s.file)
		body := readPayload(t, s.file)
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		variants := map[string][]byte{
			"truncated":   body[:len(body)*2/3],
			"not object":  append(append([]byte("["), body...), ']'),
			"ids removed": mutate(t, doc, func(m map[string]any) { deleteKeys(m, idKeys) }),
			"other type": mutate(t, doc, func(m map[string]any) {
				for _, k := range []string{"eventType", "type", "event_type"} {
					if _, ok := m[k]; ok {
						m[k] = "SomethingElse"
					}
				}
				if d, ok := m["eventData"].(map[string]any); ok && d["eventType"] != nil {
					d["eventType"] = "9"
				}
			}),
		}
		for k, v := range doc {
			if _, ok := v.(map[string]any); ok {
				variants["scalar "+k] = mutate(t, doc, func(m map[string]any) { m[k] = "x" })
			}
		}
		for name, variant := range variants {
			t.Run(s.file+"/"+name, func(t *testing.T) {
				for _, kind := range []string{s.kind, ""} {
					raw := newRaw(provider, kind, "", variant)
					ev, err := Map(raw, nil)
					checkResult(t, raw, ev, err)
					if err != nil {
						assertNoPayloadValues(t, err, body)
						checked[Reason(err)]++
					}
				}
			})
		}
	}
	for _, reason := range []string{"unparseable", "unsupported_type", "missing_field"} {
		if checked[reason] == 0 {
			t.Errorf("no %s error was checked", reason)
		}
	}
	t.Logf("errors checked: %v", checked)
}

// mutate returns the JSON of a deep copy of doc changed by f.
func mutate(t *testing.T, doc map[string]any, f func(map[string]any)) []byte {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var cp map[string]any
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	f(cp)
	if b, err = json.Marshal(cp); err != nil {
		t.Fatal(err)
	}
	return b
}

// deleteKeys removes keys from m and every object below it.
func deleteKeys(m map[string]any, keys []string) {
	for _, k := range keys {
		delete(m, k)
	}
	for _, v := range m {
		switch v := v.(type) {
		case map[string]any:
			deleteKeys(v, keys)
		case []any:
			for _, e := range v {
				if o, ok := e.(map[string]any); ok {
					deleteKeys(o, keys)
				}
			}
		}
	}
}

// TestInvalidUTF8: invalid UTF-8 in the envelope or in payload strings
// still gives an event proto can marshal (proto3 strings must be UTF-8).
func TestInvalidUTF8(t *testing.T) {
	body := []byte("{\"leadId\": \"L-\xff1\", \"conversationId\": \"c\xc3\", \"buyer\": {\"name\": \"Jan \xfe\"}}")
	raw := newRaw(lms, "lead", "pid-\xff", body)
	raw.Tenant, raw.Source, raw.ContentType, raw.EventID = "demo\xff", "mp-\xffleads", "application/json\xff", ""
	ref := &leadstreamv1.RawRef{Stream: "RAW", Sequence: 1, Subject: "raw.marktplaats-lms.lead.mp-\xffleads"}
	ev, err := Map(raw, ref)
	checkResult(t, raw, ev, err)
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetLead().GetLeadId() != "L-\uFFFD1" || ev.RawRef == ref {
		t.Errorf("lead id %q; RawRef sanitized in place: %v", ev.GetLead().GetLeadId(), ev.RawRef == ref)
	}
}
