package extract

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
)

// payloadDir holds the shared example bodies, one folder per provider.
const payloadDir = "../../../../shared/testdata/payloads"

// keyIDs are the key ids a Marktplaats LMS verifier can report: the two
// documented webhooks, none, and a key the payload must be classified without.
var keyIDs = []string{"", "leadDeliveryKey", "chatMessagePushKey", "rotatedKey"}

// bodyHash is the id expected for a body without a usable provider id,
// computed here rather than with eventid.BodyID so that the test checks it.
func bodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func readPayload(tb testing.TB, rel string) []byte {
	tb.Helper()
	body, err := os.ReadFile(filepath.Join(payloadDir, filepath.FromSlash(rel)))
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// payloadFiles lists every example body as "<provider>/<file>".
func payloadFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(payloadDir, "*", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no payloads under %s", payloadDir)
	}
	rels := make([]string, 0, len(files))
	for _, f := range files {
		rel, err := filepath.Rel(payloadDir, f)
		if err != nil {
			tb.Fatal(err)
		}
		rels = append(rels, filepath.ToSlash(rel))
	}
	return rels
}

// golden is what the edge must read from each shared example payload. The id
// "hash" stands for the SHA-256 of the body.
var golden = []struct {
	file   string // under payloadDir; its folder is the provider
	keyID  string
	kind   string
	id     string
	remark string
}{
	{file: "marktplaats-api/bid-placed.json", kind: "bid", id: "8b0f6c1e-4f7a-4b61-9d0a-2f3c1a7e5d11"},
	{file: "marktplaats-api/bid-closed.json", kind: "bid", id: "0d4e2b9a-7c31-4f5e-8a06-b1c9d2e3f470"},
	{file: "marktplaats-api/asq-created.json", kind: "asq", id: "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"},
	{file: "marktplaats-api/transaction-status-changed.json", kind: "transaction", id: "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9"},
	{file: "marktplaats-api/call.json", kind: "call", id: "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", remark: "undocumented eventType, recognised by callId/freespeeId"},
	{file: "marktplaats-api/doc-example.json", kind: "unknown", id: "id", remark: "the docs' placeholder eventType"},

	{file: "marktplaats-lms/lead.json", keyID: "leadDeliveryKey", kind: "lead", id: "5f1d7c2a-8e43-4b7e-9a51-0c6f2d9b3e10"},
	{file: "marktplaats-lms/chat.json", keyID: "chatMessagePushKey", kind: "chat", id: "9a3c1e77-52b4-4d0e-b1f8-3c2d6e8f0a45"},
	{file: "marktplaats-lms/lead.json", keyID: "rotatedKey", kind: "lead", id: "5f1d7c2a-8e43-4b7e-9a51-0c6f2d9b3e10", remark: "unknown key: leadId decides"},
	{file: "marktplaats-lms/chat.json", keyID: "", kind: "chat", id: "9a3c1e77-52b4-4d0e-b1f8-3c2d6e8f0a45", remark: "no key: messageId decides"},
	{file: "marktplaats-lms/chat.json", keyID: "leadDeliveryKey", kind: "lead", id: "hash", remark: "the key wins; a chat body has no lead id"},

	{file: "offerte-adviseur/lead-created.json", kind: "lead", id: "a056V7R7NmNRjl70"},
	{file: "offerte-adviseur/lead-sold.json", kind: "lead", id: "b167W8S8OoOSkm81"},
	{file: "offerte-adviseur/lead-invoiced.json", kind: "lead", id: "c278X9T9PpPTln92"},
	{file: "offerte-adviseur/lead-paid.json", kind: "lead", id: "d389Y0U0QqQUmo03"},
	{file: "offerte-adviseur/invoice-created.json", kind: "invoice", id: "e490Z1V1RrRVnp14"},
	{file: "offerte-adviseur/invoice-paid.json", kind: "invoice", id: "f5A1a2W2SsSWoq25"},

	{file: "lokalebasen/enquiry-created.json", kind: "enquiry", id: "hash", remark: "no event id is sent"},
	{file: "lokalebasen/enquiry-created-client.json", kind: "enquiry", id: "hash"},
}

func TestExtractPayloads(t *testing.T) {
	for _, tc := range golden {
		provider := tc.file[:strings.IndexByte(tc.file, '/')]
		t.Run(tc.file+"/"+tc.keyID, func(t *testing.T) {
			body := readPayload(t, tc.file)
			want := Event{Kind: tc.kind, ProviderEventID: tc.id}
			if tc.id == "hash" {
				want.ProviderEventID = bodyHash(body)
			}
			if got := Extract(provider, tc.keyID, body); got != want {
				t.Errorf("Extract(%s, %q) = %+v, want %+v %s", provider, tc.keyID, got, want, tc.remark)
			}
		})
	}
}

// TestGoldenCoversPayloads fails when a payload is added to the shared test
// data without saying here what the edge must read from it.
func TestGoldenCoversPayloads(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range golden {
		covered[tc.file] = true
	}
	for _, f := range payloadFiles(t) {
		if !covered[f] {
			t.Errorf("payload %s has no golden entry", f)
		}
	}
}

// TestExtractKeyIDOnlyForLMS: only the Marktplaats LMS tells its webhooks
// apart by key; for the others the key id must not change the outcome.
func TestExtractKeyIDOnlyForLMS(t *testing.T) {
	for _, f := range payloadFiles(t) {
		provider := f[:strings.IndexByte(f, '/')]
		if provider == config.ProviderMarktplaatsLMS {
			continue
		}
		body := readPayload(t, f)
		want := Extract(provider, "", body)
		for _, keyID := range keyIDs[1:] {
			if got := Extract(provider, keyID, body); got != want {
				t.Errorf("%s with key %q: %+v, without key: %+v", f, keyID, got, want)
			}
		}
	}
}

func TestExtractUnreadableBody(t *testing.T) {
	bodies := map[string][]byte{
		"empty":          {},
		"open brace":     []byte("{"),
		"array":          []byte("[]"),
		"array of obj":   []byte(`[{"id":"x","leadId":"y","messageId":"z"}]`),
		"null":           []byte("null"),
		"spaced null":    []byte(" \n null \t"),
		"string":         []byte(`"id"`),
		"number":         []byte("12345"),
		"true":           []byte("true"),
		"binary":         {0xff, 0xfe, 0x00, 0x01, '{', '}'},
		"trailing data":  []byte(`{"id":"a","eventType":"BidPlacedEvent","type":"lead.created","leadId":"b"} {}`),
		"truncated":      []byte(`{"id":"a","eventType":"BidPlacedEvent"`),
		"trailing comma": []byte(`{"id":"a","leadId":"b",}`),
		"html":           []byte("<html><body>502 Bad Gateway</body></html>"),
	}
	for _, provider := range append(slices.Clone(config.Providers), "no-such-provider") {
		for name, body := range bodies {
			for _, keyID := range keyIDs {
				want := Event{Kind: envelope.KindUnknown, ProviderEventID: bodyHash(body)}
				if got := Extract(provider, keyID, body); got != want {
					t.Errorf("%s, key %q, %s body %q: got %+v, want %+v", provider, keyID, name, body, got, want)
				}
			}
		}
	}
}

func TestExtractIDs(t *testing.T) {
	long := strings.Repeat("a", 128)
	tests := []struct {
		name string
		id   string // JSON text of the id field
		want string // "hash": the body hash
	}{
		{"uuid", `"8b0f6c1e-4f7a-4b61-9d0a-2f3c1a7e5d11"`, "8b0f6c1e-4f7a-4b61-9d0a-2f3c1a7e5d11"},
		{"number", `12345`, "12345"},
		{"negative number", `-7`, "-7"},
		{"big number kept as written", `123456789012345678901234567890`, "123456789012345678901234567890"},
		{"fraction", `1.5`, "1.5"},
		{"number out of float range", `1e400`, "hash"},
		{"json escapes decoded", `"a\u0041\/b"`, "aA/b"},
		{"printable punctuation", `"a:b;c<d>e*f.g"`, "a:b;c<d>e*f.g"},
		{"128 bytes", `"` + long + `"`, long},
		{"129 bytes", `"` + long + `b"`, "hash"},
		{"empty", `""`, "hash"},
		{"space", `"a b"`, "hash"},
		{"leading space", `" ab"`, "hash"},
		{"tab", `"a\tb"`, "hash"},
		{"newline (header injection)", `"a\r\nNats-Msg-Id: x"`, "hash"},
		{"NUL", `"a\u0000b"`, "hash"},
		{"DEL", `"a\u007fb"`, "hash"},
		{"non-ASCII", `"café"`, "hash"},
		{"invalid UTF-8 escape", `"\ud800"`, "hash"},
		{"looks like a body hash", `"sha256:` + strings.Repeat("0", 64) + `"`, "hash"},
		{"null", `null`, "hash"},
		{"true", `true`, "hash"},
		{"object", `{"value":"x"}`, "hash"},
		{"array", `["x"]`, "hash"},
	}
	shapes := []struct {
		provider, keyID, kind string
		body                  func(id string) string
	}{
		{config.ProviderMarktplaatsAPI, "", "bid", func(id string) string {
			return `{"id":` + id + `,"eventType":"BidPlacedEvent","eventData":{}}`
		}},
		{config.ProviderOfferteAdviseur, "", "invoice", func(id string) string {
			return `{"id":` + id + `,"type":"invoice.paid","payload":{}}`
		}},
		{config.ProviderMarktplaatsLMS, "leadDeliveryKey", "lead", func(id string) string {
			return `{"leadId":` + id + `,"conversationId":"c"}`
		}},
		{config.ProviderMarktplaatsLMS, "chatMessagePushKey", "chat", func(id string) string {
			return `{"messageId":` + id + `,"text":"hi"}`
		}},
	}
	for _, s := range shapes {
		for _, tc := range tests {
			t.Run(s.provider+"/"+s.kind+"/"+tc.name, func(t *testing.T) {
				body := []byte(s.body(tc.id))
				want := Event{Kind: s.kind, ProviderEventID: tc.want}
				if tc.want == "hash" {
					want.ProviderEventID = bodyHash(body)
				}
				if got := Extract(s.provider, s.keyID, body); got != want {
					t.Errorf("body %s: got %+v, want %+v", body, got, want)
				}
			})
		}
	}
}

func TestExtractKinds(t *testing.T) {
	const (
		api     = config.ProviderMarktplaatsAPI
		lms     = config.ProviderMarktplaatsLMS
		offerte = config.ProviderOfferteAdviseur
		lb      = config.ProviderLokalebasen
	)
	tests := []struct {
		name     string
		provider string
		keyID    string
		body     string
		kind     string
		id       string // "hash": the body hash
	}{
		// Marktplaats API: eventType, else the call fields.
		{"api bid placed", api, "", `{"id":"e1","eventType":"BidPlacedEvent"}`, "bid", "e1"},
		{"api eventType case", api, "", `{"id":"e1","eventType":"bidclosedevent"}`, "bid", "e1"},
		{"api asq", api, "", `{"id":"e1","eventType":"AsqCreatedEvent"}`, "asq", "e1"},
		{"api transaction", api, "", `{"id":"e1","eventType":"transactionStatusChanged","eventData":{"oldStatus":"PENDING"}}`, "transaction", "e1"},
		{"api call by callId", api, "", `{"id":"e1","eventType":"PostCallEvent","eventData":{"callId":"c1"}}`, "call", "e1"},
		{"api call by freespeeId", api, "", `{"id":"e1","eventData":{"freespeeId":42}}`, "call", "e1"},
		{"api call, numeric eventType", api, "", `{"id":"e1","eventType":0,"eventData":{"callId":"c1","eventType":"0"}}`, "call", "e1"},
		{"api call fields null", api, "", `{"id":"e1","eventType":"Other","eventData":{"callId":null,"freespeeId":null}}`, "unknown", "e1"},
		{"api call fields at top level", api, "", `{"id":"e1","callId":"c1"}`, "unknown", "e1"},
		{"api eventType beats call fields", api, "", `{"id":"e1","eventType":"AsqCreatedEvent","eventData":{"callId":"c1"}}`, "asq", "e1"},
		{"api eventData not an object", api, "", `{"id":"e1","eventType":"BidPlacedEvent","eventData":"x"}`, "bid", "e1"},
		{"api unknown eventType keeps id", api, "", `{"id":"e1","eventType":"SomethingNew"}`, "unknown", "e1"},
		{"api no id", api, "", `{"eventType":"BidPlacedEvent"}`, "bid", "hash"},
		{"api unknown fields ignored", api, "", `{"x":[1,{"y":null}],"id":"e1","eventType":"BidPlacedEvent"}`, "bid", "e1"},
		{"api empty object", api, "", `{}`, "unknown", "hash"},

		// Marktplaats LMS: the key, else the fields.
		{"lms lead key, id fallback", lms, "leadDeliveryKey", `{"id":"l1"}`, "lead", "l1"},
		{"lms lead key, leadId before id", lms, "leadDeliveryKey", `{"id":"x","leadId":"l1"}`, "lead", "l1"},
		{"lms lead key, empty object", lms, "leadDeliveryKey", `{}`, "lead", "hash"},
		{"lms chat key, id fallback", lms, "chatMessagePushKey", `{"id":"m1"}`, "chat", "m1"},
		{"lms chat key beats leadId", lms, "chatMessagePushKey", `{"leadId":"l1","messageId":"m1"}`, "chat", "m1"},
		{"lms unknown key, messageId", lms, "rotatedKey", `{"messageId":"m1"}`, "chat", "m1"},
		{"lms unknown key, leadId", lms, "rotatedKey", `{"leadId":"l1"}`, "lead", "l1"},
		{"lms unknown key, numeric leadId", lms, "rotatedKey", `{"leadId":77}`, "lead", "77"},
		{"lms unknown key, both", lms, "rotatedKey", `{"leadId":"l1","messageId":"m1"}`, "chat", "m1"},
		{"lms unknown key, null messageId", lms, "rotatedKey", `{"leadId":"l1","messageId":null}`, "lead", "l1"},
		{"lms unknown key, unusable messageId", lms, "rotatedKey", `{"messageId":"a b"}`, "chat", "hash"},
		{"lms unknown key, only id", lms, "rotatedKey", `{"id":"x"}`, "unknown", "hash"},
		{"lms no key, no fields", lms, "", `{"text":"hi"}`, "unknown", "hash"},

		// Offerte Adviseur: the part of type before the dot.
		{"offerte lead.created", offerte, "", `{"id":"o1","type":"lead.created"}`, "lead", "o1"},
		{"offerte future lead type", offerte, "", `{"id":"o1","type":"lead.refunded"}`, "lead", "o1"},
		{"offerte invoice", offerte, "", `{"id":"o1","type":"invoice.created"}`, "invoice", "o1"},
		{"offerte bare type", offerte, "", `{"id":"o1","type":"invoice"}`, "invoice", "o1"},
		{"offerte case-sensitive", offerte, "", `{"id":"o1","type":"Lead.created"}`, "unknown", "o1"},
		{"offerte other type", offerte, "", `{"id":"o1","type":"leads.created"}`, "unknown", "o1"},
		{"offerte numeric type keeps id", offerte, "", `{"id":"o1","type":5}`, "unknown", "o1"},
		{"offerte no type", offerte, "", `{"id":"o1"}`, "unknown", "o1"},

		// Lokalebasen: never an id of its own.
		{"lokalebasen enquiry", lb, "", `{"event_type":"enquiry_created","payload":{}}`, "enquiry", "hash"},
		{"lokalebasen id ignored", lb, "", `{"id":"x","event_type":"enquiry_created"}`, "enquiry", "hash"},
		{"lokalebasen other event", lb, "", `{"event_type":"enquiry_deleted"}`, "unknown", "hash"},
		{"lokalebasen numeric event_type", lb, "", `{"event_type":1}`, "unknown", "hash"},

		// A provider the edge does not know still gets a kind and an id.
		{"unknown provider", "no-such-provider", "", `{"id":"x","eventType":"BidPlacedEvent"}`, "unknown", "hash"},
		{"empty provider", "", "leadDeliveryKey", `{"leadId":"x"}`, "unknown", "hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := Event{Kind: tc.kind, ProviderEventID: tc.id}
			if tc.id == "hash" {
				want.ProviderEventID = bodyHash([]byte(tc.body))
			}
			if got := Extract(tc.provider, tc.keyID, []byte(tc.body)); got != want {
				t.Errorf("Extract(%s, %q, %s) = %+v, want %+v", tc.provider, tc.keyID, tc.body, got, want)
			}
		})
	}
}

// kindsOf lists the kinds each provider can produce.
var kindsOf = map[string][]string{
	config.ProviderMarktplaatsLMS:  {envelope.KindLead, envelope.KindChat, envelope.KindUnknown},
	config.ProviderMarktplaatsAPI:  {envelope.KindBid, envelope.KindASQ, envelope.KindTransaction, envelope.KindCall, envelope.KindUnknown},
	config.ProviderOfferteAdviseur: {envelope.KindLead, envelope.KindInvoice, envelope.KindUnknown},
	config.ProviderLokalebasen:     {envelope.KindEnquiry, envelope.KindUnknown},
}

// FuzzExtract feeds the edge's body reader what an authentic but careless
// provider could send. The inputs pick a provider and a key id by index, so
// the mutator stays on the providers' code paths.
func FuzzExtract(f *testing.F) {
	providers := config.Providers
	for _, file := range payloadFiles(f) {
		body := readPayload(f, file)
		for p := range providers {
			for k := range keyIDs {
				if providers[p] != config.ProviderMarktplaatsLMS && k > 0 {
					continue
				}
				f.Add(uint8(p), uint8(k), body)
			}
		}
	}
	for p := range providers {
		f.Add(uint8(p), uint8(0), []byte(`{"id":12345,"leadId":"l\u00e9","messageId":null,"eventType":0,"type":"lead"}`))
		f.Add(uint8(p), uint8(3), []byte("null"))
	}

	f.Fuzz(func(t *testing.T, p, k uint8, body []byte) {
		provider := providers[int(p)%len(providers)]
		keyID := keyIDs[int(k)%len(keyIDs)]
		in := bytes.Clone(body)
		ev := Extract(provider, keyID, body)

		if !bytes.Equal(body, in) {
			t.Fatal("Extract modified the body")
		}
		if !slices.Contains(envelope.Kinds, ev.Kind) {
			t.Fatalf("kind %q is not one of envelope.Kinds", ev.Kind)
		}
		if !slices.Contains(kindsOf[provider], ev.Kind) {
			t.Fatalf("provider %s produced kind %q", provider, ev.Kind)
		}
		id := ev.ProviderEventID
		hash := bodyHash(body)
		switch {
		case id == hash:
		case id == "":
			t.Fatal("empty provider event id")
		case strings.HasPrefix(id, "sha256:"):
			t.Fatalf("id %q looks like a body hash but is not this body's", id)
		case len(id) > 128:
			t.Fatalf("id of %d bytes", len(id))
		case provider == config.ProviderLokalebasen:
			t.Fatalf("lokalebasen id %q is not the body hash", id)
		}
		for i := 0; i < len(id); i++ {
			if c := id[i]; c <= ' ' || c > '~' {
				t.Fatalf("id %q has byte %#x at %d", id, c, i)
			}
		}
		if !json.Valid(body) && ev != (Event{Kind: envelope.KindUnknown, ProviderEventID: hash}) {
			t.Fatalf("invalid JSON read as %+v", ev)
		}
		if again := Extract(provider, keyID, body); again != ev {
			t.Fatalf("not deterministic: %+v then %+v", ev, again)
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	keyFor := map[string]string{"marktplaats-lms/lead.json": "leadDeliveryKey", "marktplaats-lms/chat.json": "chatMessagePushKey"}
	bench := func(name, provider, keyID string, body []byte) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				Extract(provider, keyID, body)
			}
		})
	}
	for _, file := range payloadFiles(b) {
		bench(file, file[:strings.IndexByte(file, '/')], keyFor[file], readPayload(b, file))
	}
	// The largest body the edge accepts by default, mostly one long text
	// field: what a maximal request costs before it is stored.
	big := []byte(`{"id":"x","leadId":"x","type":"lead.created","eventType":"BidPlacedEvent","event_type":"enquiry_created","text":"` +
		strings.Repeat("lorem ipsum ", (1<<20)/12-20) + `"}`)
	for _, provider := range config.Providers {
		bench(provider+"/1MiB", provider, "leadDeliveryKey", big)
	}
}
