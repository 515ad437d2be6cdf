package console

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	tests := []struct {
		field, value, want string
	}{
		{"lead.buyer.email", "jan.devries@example.nl", "j***@e***.nl"},
		{"lead.buyer.email", "a@b.co.uk", "a***@b***.c***.uk"},
		{"lead.buyer.email", "not-an-address", "n***"},
		{"lead.buyer.name", "Jan de Vries", "J*** d*** V***"},
		{"enquiry.client.firstName", "Ægir", "Æ***"},
		{"bid.bidder.nickname", "Joe", "J***"},
		{"lead.buyer.phone", "+31612345678", "+31*******78"},
		{"lead.buyer.phone", "+31 6 12 34 56 78", "+31 * ** ** ** 78"},
		{"call.fromNumber", "0201234567", "********67"},
		{"phone_number", "112", "***"},
		{"lead.buyer.address.street", "Oudegracht", "O***"},
		{"street_number", "12a", "1***"},
		{"postal_code", "3511AB", "3***"},
		{"lead.tradeIn.licensePlate", "12-ABC-3", "1***"},
		{"lead.seller.salesAgent", "agent-7", "a***"},
		{"lead.message", "Is deze auto nog beschikbaar?", "[hidden: 29 characters]"},
		{"chatMessage.text", "Bel me op 0612345678", "[hidden: 20 characters]"},
		{"lead.description", "Zonnepanelen", "[hidden: 12 characters]"},
		// Not personal: ids, amounts, statuses, titles.
		{"lead.leadId", "12345", "12345"},
		{"lead.advertisement.title", "Volkswagen Golf", "Volkswagen Golf"},
		{"bid.amount.amountCents", "110000", "110000"},
		{"leadStatus.status", "LEAD_STATUS_PAID", "LEAD_STATUS_PAID"},
		{"lead.buyer.email", "", ""},
	}
	for _, tc := range tests {
		if got := maskField(tc.field, tc.value); got != tc.want {
			t.Errorf("maskField(%q, %q) = %q, want %q", tc.field, tc.value, got, tc.want)
		}
	}
}

// TestMaskJSON: a provider's body keeps its shape and its ids; every value
// under a personal key is masked, in nested objects and arrays too.
func TestMaskJSON(t *testing.T) {
	body := `{"leadId":"5f1d","buyer":{"name":"Jan de Vries","email":"jan.devries@example.nl","phone":"+31612345678"},
"address":{"city":"Utrecht","street":"Oudegracht"},"contacts":[{"e-mail":"x@y.nl","telephone":31612345678}],"message":"Bel me","priceCents":1895000}`
	got, ok := maskJSON([]byte(body))
	if !ok {
		t.Fatal("maskJSON refused JSON")
	}
	for _, leak := range []string{"Jan de Vries", "devries", "612345", "Oudegracht", "Utrecht", "x@y.nl", "Bel me"} {
		if strings.Contains(got, leak) {
			t.Errorf("masked body still holds %q:\n%s", leak, got)
		}
	}
	for _, kept := range []string{`"leadId": "5f1d"`, `"name": "J*** d*** V***"`, `"email": "j***@e***.nl"`, `"priceCents": 1895000`} {
		if !strings.Contains(got, kept) {
			t.Errorf("masked body lacks %s:\n%s", kept, got)
		}
	}
	if _, ok := maskJSON([]byte("name=Jan")); ok {
		t.Error("maskJSON took a body that is not JSON")
	}
}

// TestPagesMaskPersonalFields: the lead page and a dead letter's body show
// names, addresses and texts masked, and in clear only after a reveal; the
// event list and the trace never show them.
func TestPagesMaskPersonalFields(t *testing.T) {
	f := newFixture(t, "", nil)
	ev := f.ingest("offerte", "offerte-adviseur", "lead", "offerte-adviseur/lead-created.json", "a056V7R7NmNRjl70")
	clear := []string{"Sanne", "Jansen", "Oudegracht", "3511AB", "zonnepanelen"}
	f.ops.traces[ev.GetId()] = &Trace{EventID: ev.GetId(), Found: true}
	seq := f.deadLetter(ev)
	for _, path := range []string{"/leads/" + ev.GetAggregateId(), "/dlq/" + strconv.FormatUint(seq, 10), "/events", "/trace/" + ev.GetId(), "/dlq"} {
		status, body, _ := f.request(http.MethodGet, path, nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, status)
		}
		for _, c := range clear {
			if strings.Contains(body, c) {
				t.Errorf("GET %s shows %q in clear", path, c)
			}
		}
		// Nor encoded: the event's payload is bytes, which protojson writes
		// as base64.
		if b64 := base64.StdEncoding.EncodeToString(ev.GetPayload()); strings.Contains(body, b64[:24]) {
			t.Errorf("GET %s shows the payload in base64", path)
		}
	}
	_, body, _ := f.request(http.MethodGet, "/leads/"+ev.GetAggregateId(), nil)
	if !strings.Contains(body, "S***") || !strings.Contains(body, "J***") || !strings.Contains(body, "[hidden: ") {
		t.Errorf("the lead page does not show the masks")
	}
	_, body, _ = f.request(http.MethodPost, "/leads/reveal", url.Values{"id": {ev.GetAggregateId()}})
	for _, c := range clear[:4] {
		if !strings.Contains(body, c) {
			t.Errorf("revealed lead page lacks %q", c)
		}
	}
	_, body, _ = f.request(http.MethodPost, "/dlq/"+strconv.FormatUint(seq, 10)+"/reveal", url.Values{})
	if !strings.Contains(body, "Sanne") || !strings.Contains(body, `id="payload"`) {
		t.Error("revealed dead letter lacks the name, or the payload")
	}
	if logs := f.logText(); strings.Contains(logs, "Sanne") || strings.Contains(logs, "Jansen") || !strings.Contains(logs, "revealed") {
		t.Errorf("reveals are not logged, or the log holds what was revealed:\n%s", logs)
	}
}
