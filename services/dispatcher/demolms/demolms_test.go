package demolms_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/demolms"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/adaptertest"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// terminal is the demo's out: the handler writes from server goroutines.
type terminal struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.Write(p)
}

func (t *terminal) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSuffix(t.buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// demo starts the demo LMS trusting lmsSecrets and a webhook adapter
// signing with adapterSecrets, pointed at it.
func demo(t *testing.T, lmsSecrets, adapterSecrets []string) (*terminal, *httptest.Server, *webhook.Adapter) {
	t.Helper()
	out := &terminal{}
	srv := httptest.NewServer(demolms.Handler(lmsSecrets, out, zaptest.NewLogger(t)))
	t.Cleanup(srv.Close)
	a, err := webhook.New(webhook.Config{Name: "demo", URL: srv.URL + "/events", Secrets: adapterSecrets}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(context.Background()) })
	return out, srv, a
}

func deliver(t *testing.T, a *webhook.Adapter, d *adapter.Delivery) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.Deliver(ctx, d)
}

func TestSignedEventIsPrinted(t *testing.T) {
	secret := webhook.GenerateSecret()
	out, _, a := demo(t, []string{secret}, []string{secret})
	ev := adaptertest.Event("0b5e6c1e-7d3a-5f4e-9c2b-1a2b3c4d5e6f")
	if err := deliver(t, a, &adapter.Delivery{Event: ev, Attempt: 1}); err != nil {
		t.Fatalf("Deliver to the demo LMS: %v", err)
	}
	lines := out.lines()
	if len(lines) != 1 {
		t.Fatalf("printed %d lines, want 1: %q", len(lines), lines)
	}
	l := lines[0]
	for _, want := range []string{"2026-03-14 09:26:53Z", "lead.created", ev.Id, "mp-leads/conversation/conv-4711", `"Volkswagen Golf 1.4 TSI Highline"`, "EUR 12495.00"} {
		if !strings.Contains(l, want) {
			t.Errorf("line %q lacks %q", l, want)
		}
	}
	for _, personal := range []string{"Jansen", "example.org", "beschikbaar"} {
		if strings.Contains(l, personal) {
			t.Errorf("line %q shows personal data %q", l, personal)
		}
	}
	for _, flag := range []string{"duplicate", "orphan", "attempt"} {
		if strings.Contains(l, flag) {
			t.Errorf("line %q is marked %s", l, flag)
		}
	}
}

func TestDuplicateNoted(t *testing.T) {
	secret := webhook.GenerateSecret()
	out, _, a := demo(t, []string{secret}, []string{secret})
	ev := adaptertest.Event("evt-dup")
	for attempt := 1; attempt <= 2; attempt++ {
		// An LMS answers a duplicate 2xx: the sender's retry is over.
		if err := deliver(t, a, &adapter.Delivery{Event: ev, Attempt: attempt, Orphan: true}); err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	if err := deliver(t, a, &adapter.Delivery{Event: adaptertest.Event("evt-other"), Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	lines := out.lines()
	if len(lines) != 3 {
		t.Fatalf("printed %d lines, want 3: %q", len(lines), lines)
	}
	if strings.Contains(lines[0], "duplicate") || !strings.Contains(lines[0], "[orphan]") {
		t.Errorf("first delivery: %q, want an orphan, not a duplicate", lines[0])
	}
	if !strings.Contains(lines[1], "[duplicate]") || !strings.Contains(lines[1], "[attempt 2]") {
		t.Errorf("redelivery: %q, want it marked duplicate, attempt 2", lines[1])
	}
	if strings.Contains(lines[2], "duplicate") {
		t.Errorf("another event: %q, marked duplicate", lines[2])
	}
}

// TestRotation: the adapter signs with old and new secret; an LMS that
// already moved to the new one accepts.
func TestRotation(t *testing.T) {
	oldSecret, newSecret := webhook.GenerateSecret(), webhook.GenerateSecret()
	out, _, a := demo(t, []string{newSecret}, []string{oldSecret, newSecret})
	if err := deliver(t, a, &adapter.Delivery{Event: adaptertest.Event("evt-rot"), Attempt: 1}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if len(out.lines()) != 1 {
		t.Errorf("printed %q, want one line", out.lines())
	}
}

func TestBadSignatureRefused(t *testing.T) {
	secret := webhook.GenerateSecret()
	out, srv, a := demo(t, []string{secret}, []string{webhook.GenerateSecret()})

	// Through the adapter: a 401 is terminal, the event goes to the DLQ.
	if err := deliver(t, a, &adapter.Delivery{Event: adaptertest.Event("evt-bad"), Attempt: 1}); !adapter.IsTerminal(err) || !strings.Contains(err.Error(), "401") {
		t.Errorf("Deliver with the wrong secret: %v, want a terminal 401", err)
	}

	body := []byte(`{"specversion":"1.0","id":"evt-x","type":"lead.created","source":"/leadstream/sources/x"}`)
	now := time.Now()
	wh, _ := standardwebhooks.NewWebhook(secret)
	good, _ := wh.Sign("evt-x", now, body)
	tests := []struct {
		name   string
		id, ts string
		sig    string
		body   []byte
	}{
		{name: "no signature", id: "evt-x", ts: strconv.FormatInt(now.Unix(), 10), body: body},
		{name: "tampered body", id: "evt-x", ts: strconv.FormatInt(now.Unix(), 10), sig: good, body: bytes.Replace(body, []byte("evt-x"), []byte("evt-y"), 1)},
		{name: "other id", id: "evt-y", ts: strconv.FormatInt(now.Unix(), 10), sig: good, body: body},
		{name: "stale timestamp", id: "evt-x", ts: strconv.FormatInt(now.Add(-time.Hour).Unix(), 10), sig: mustSign(t, wh, "evt-x", now.Add(-time.Hour), body), body: body},
		{name: "garbage", id: "evt-x", ts: strconv.FormatInt(now.Unix(), 10), sig: "v1,AAAA", body: body},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(tt.body))
		req.Header.Set("webhook-id", tt.id)
		req.Header.Set("webhook-timestamp", tt.ts)
		if tt.sig != "" {
			req.Header.Set("webhook-signature", tt.sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tt.name, resp.StatusCode)
		}
	}
	if lines := out.lines(); len(lines) != 0 {
		t.Errorf("printed %q for refused requests, want nothing", lines)
	}

	// The same request, correctly signed, passes: the cases above failed
	// for their flaw alone.
	req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
	req.Header.Set("webhook-id", "evt-x")
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", good)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("correctly signed request: status %d, want 204", resp.StatusCode)
	}
}

func mustSign(t *testing.T, wh *standardwebhooks.Webhook, id string, ts time.Time, body []byte) string {
	t.Helper()
	sig, err := wh.Sign(id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestRequestErrors(t *testing.T) {
	secret := webhook.GenerateSecret()
	wh, _ := standardwebhooks.NewWebhook(secret)
	out, srv, _ := demo(t, []string{secret}, []string{secret})
	signed := func(body []byte) *http.Request {
		now := time.Now()
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		req.Header.Set("webhook-id", "evt-e")
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", mustSign(t, wh, "evt-e", now, body))
		return req
	}
	get, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	tests := []struct {
		name string
		req  *http.Request
		want int
	}{
		{name: "GET", req: get, want: http.StatusMethodNotAllowed},
		{name: "signed, not a CloudEvent", req: signed([]byte(`["not","an","event"]`)), want: http.StatusBadRequest},
		{name: "signed, no id", req: signed([]byte(`{"specversion":"1.0","type":"lead.created"}`)), want: http.StatusBadRequest},
		{name: "too large", req: signed(bytes.Repeat([]byte("x"), 2<<20)), want: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		resp, err := http.DefaultClient.Do(tt.req)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
	}
	if lines := out.lines(); len(lines) != 0 {
		t.Errorf("printed %q, want nothing", lines)
	}
}

func TestNoUsableSecretRefusesAll(t *testing.T) {
	secret := webhook.GenerateSecret()
	out, _, a := demo(t, []string{"", "whsec_!!not-base64!!"}, []string{secret})
	if err := deliver(t, a, &adapter.Delivery{Event: adaptertest.Event("evt-n"), Attempt: 1}); !adapter.IsTerminal(err) {
		t.Errorf("Deliver to a demo without usable secrets: %v, want a terminal 401", err)
	}
	if len(out.lines()) != 0 {
		t.Errorf("printed %q, want nothing", out.lines())
	}
}

// TestLines covers the summary of every data type, and that text from the
// wire cannot drive the terminal.
func TestLines(t *testing.T) {
	eur := func(c int64) *leadstreamv1.Money { return &leadstreamv1.Money{AmountCents: c, Currency: "EUR"} }
	tests := []struct {
		typ  string
		data proto.Message
		want []string
		not  []string
	}{
		{typ: "lead.created", data: &leadstreamv1.Lead{Platform: "2dehands",
			Advertisement: &leadstreamv1.Advertisement{Title: "Evil\x1b[2J\ntitle that goes on and on and on and on and on"}},
			want: []string{"2dehands", `"Evil [2J title that goes on and on and o..."`}, not: []string{"\x1b"}},
		{typ: "lead.sold", data: &leadstreamv1.LeadStatusChange{LeadId: "L-9", Status: leadstreamv1.LeadStatus_LEAD_STATUS_SOLD},
			want: []string{"lead L-9 -> sold"}},
		{typ: "chat.message", data: &leadstreamv1.ChatMessage{Sender: leadstreamv1.SenderRole_SENDER_ROLE_BUYER, Text: "bel me op 0612345678"},
			want: []string{"from buyer", "20 chars"}, not: []string{"0612345678"}},
		{typ: "bid.placed", data: &leadstreamv1.Bid{AdvertisementId: "m1", Amount: eur(15050), Bidder: &leadstreamv1.Person{Name: "Piet"}},
			want: []string{"EUR 150.50 on ad m1"}, not: []string{"Piet"}},
		{typ: "asq.created", data: &leadstreamv1.AskSellerQuestion{AdvertisementId: "m2", Message: "private"},
			want: []string{"question on ad m2"}, not: []string{"private"}},
		{typ: "transaction.status_changed", data: &leadstreamv1.TransactionStatusChange{TransactionId: "tx-1",
			OldStatus: leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING, NewStatus: leadstreamv1.TransactionStatus_TRANSACTION_STATUS_COMPLETED, Amount: eur(-250)},
			want: []string{"tx-1 pending -> completed EUR -2.50"}},
		{typ: "call.completed", data: &leadstreamv1.Call{Type: leadstreamv1.CallType_CALL_TYPE_POST_CALL, DurationSeconds: 63, Answered: true, FromNumber: "+31612345678"},
			want: []string{"post-call 63s answered"}, not: []string{"+3161"}},
		{typ: "enquiry.created", data: &leadstreamv1.Enquiry{Type: leadstreamv1.EnquiryType_ENQUIRY_TYPE_EXTRA, Location: &leadstreamv1.Location{Id: "loc-7"}},
			want: []string{"extra enquiry for location loc-7"}},
		{typ: "invoice.paid", data: &leadstreamv1.Invoice{InvoiceId: "inv-3", Amount: eur(9900), LeadIds: []string{"a", "b"}},
			want: []string{"inv-3 EUR 99.00 2 leads"}},
	}
	secret := webhook.GenerateSecret()
	out, _, a := demo(t, []string{secret}, []string{secret})
	for i, tt := range tests {
		ev := adaptertest.Event("evt-line-" + strconv.Itoa(i))
		ev.Type = tt.typ
		setData(ev, tt.data)
		if err := deliver(t, a, &adapter.Delivery{Event: ev, Attempt: 1}); err != nil {
			t.Fatalf("%s: %v", tt.typ, err)
		}
	}
	lines := out.lines()
	if len(lines) != len(tests) {
		t.Fatalf("printed %d lines, want %d: %q", len(lines), len(tests), lines)
	}
	for i, tt := range tests {
		for _, w := range tt.want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("%s: line %q lacks %q", tt.typ, lines[i], w)
			}
		}
		for _, n := range tt.not {
			if strings.Contains(lines[i], n) {
				t.Errorf("%s: line %q shows %q", tt.typ, lines[i], n)
			}
		}
	}
}

// setData puts m into the event's data oneof, in whichever case has m's type.
func setData(ev *leadstreamv1.Event, m proto.Message) {
	r := ev.ProtoReflect()
	fields := r.Descriptor().Oneofs().ByName("data").Fields()
	for i := range fields.Len() {
		if f := fields.Get(i); f.Message().FullName() == m.ProtoReflect().Descriptor().FullName() {
			r.Set(f, protoreflect.ValueOfMessage(m.ProtoReflect()))
			return
		}
	}
	panic(fmt.Sprintf("no data case for %T", m))
}
