package demolms

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// maxText is how much of a free-text field (an advertisement title) a line
// shows.
const maxText = 40

// line renders one event as a terminal line: when, what, which, and a few
// fields that identify the business without personal data (no names,
// e-mail addresses, phone numbers or message texts).
func line(ce *webhook.CloudEvent, id, attempt string, duplicate bool) string {
	when := "-"
	if !ce.Time.IsZero() {
		when = ce.Time.UTC().Format("2006-01-02 15:04:05Z")
	}
	parts := []string{when, fmt.Sprintf("%-26s", clean(ce.Type, 40)), clean(id, 64), clean(ce.Subject, 96)}
	if s := summary(ce); s != "" {
		parts = append(parts, s)
	}
	if ce.Orphan {
		parts = append(parts, "[orphan]")
	}
	if ce.Missing != "" {
		parts = append(parts, "[missing "+clean(ce.Missing, 96)+"]")
	}
	if n, err := strconv.Atoi(attempt); err == nil && n > 1 {
		parts = append(parts, fmt.Sprintf("[attempt %d]", n))
	}
	if duplicate {
		parts = append(parts, "[duplicate]")
	}
	return strings.Join(parts, "  ")
}

// dataFor returns an empty message of the data type that events of type t
// carry, or nil for a type this demo does not know.
func dataFor(t string) proto.Message {
	kind, _, _ := strings.Cut(t, ".")
	switch {
	case t == "lead.created":
		return &leadstreamv1.Lead{}
	case kind == "lead":
		return &leadstreamv1.LeadStatusChange{}
	case kind == "chat":
		return &leadstreamv1.ChatMessage{}
	case kind == "bid":
		return &leadstreamv1.Bid{}
	case kind == "asq":
		return &leadstreamv1.AskSellerQuestion{}
	case kind == "transaction":
		return &leadstreamv1.TransactionStatusChange{}
	case kind == "call":
		return &leadstreamv1.Call{}
	case kind == "enquiry":
		return &leadstreamv1.Enquiry{}
	case kind == "invoice":
		return &leadstreamv1.Invoice{}
	}
	return nil
}

// summary picks the safe, telling fields of the event's data.
func summary(ce *webhook.CloudEvent) string {
	m := dataFor(ce.Type)
	if m == nil || len(ce.Data) == 0 {
		return ""
	}
	// A newer leadstream may add fields: skip them rather than fail.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(ce.Data, m); err != nil {
		return "(data unreadable)"
	}
	switch d := m.(type) {
	case *leadstreamv1.Lead:
		return join(d.GetPlatform(), quote(d.GetAdvertisement().GetTitle()), money(d.GetAdvertisement().GetPrice()))
	case *leadstreamv1.LeadStatusChange:
		return join("lead "+clean(d.GetLeadId(), 40), "-> "+enum(d.GetStatus(), "LEAD_STATUS_"))
	case *leadstreamv1.ChatMessage:
		return join("from "+enum(d.GetSender(), "SENDER_ROLE_"), fmt.Sprintf("%d chars", len([]rune(d.GetText()))))
	case *leadstreamv1.Bid:
		return join(money(d.GetAmount()), "on ad "+clean(d.GetAdvertisementId(), 40), closedBy(d))
	case *leadstreamv1.AskSellerQuestion:
		return "question on ad " + clean(d.GetAdvertisementId(), 40)
	case *leadstreamv1.TransactionStatusChange:
		return join(clean(d.GetTransactionId(), 40),
			enum(d.GetOldStatus(), "TRANSACTION_STATUS_")+" -> "+enum(d.GetNewStatus(), "TRANSACTION_STATUS_"), money(d.GetAmount()))
	case *leadstreamv1.Call:
		answered := "not answered"
		if d.GetAnswered() {
			answered = "answered"
		}
		return join(enum(d.GetType(), "CALL_TYPE_"), fmt.Sprintf("%ds", d.GetDurationSeconds()), answered)
	case *leadstreamv1.Enquiry:
		return join(enum(d.GetType(), "ENQUIRY_TYPE_")+" enquiry", "for location "+clean(d.GetLocation().GetId(), 40))
	case *leadstreamv1.Invoice:
		return join(clean(d.GetInvoiceId(), 40), money(d.GetAmount()), fmt.Sprintf("%d leads", len(d.GetLeadIds())))
	}
	return ""
}

func closedBy(b *leadstreamv1.Bid) string {
	if b.GetClosedBySeller() {
		return "closed by seller"
	}
	return ""
}

// join joins the non-empty parts with a space.
func join(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if strings.TrimSpace(p) != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, " ")
}

// money renders an amount as "EUR 12495.00"; empty for none.
func money(m *leadstreamv1.Money) string {
	if m == nil {
		return ""
	}
	cur := m.GetCurrency()
	if cur == "" {
		cur = "EUR"
	}
	sign, c := "", m.GetAmountCents()
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s %s%d.%02d", clean(cur, 3), sign, c/100, c%100)
}

// enum renders an enum value as its lower-case name without prefix
// ("completed" for TRANSACTION_STATUS_COMPLETED).
func enum(e protoreflect.Enum, prefix string) string {
	v := e.Descriptor().Values().ByNumber(e.Number())
	if v == nil {
		// A value added after this build.
		return strconv.Itoa(int(e.Number()))
	}
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(string(v.Name()), prefix), "_", "-"))
}

// quote shows free text quoted and cut short; empty for none.
func quote(s string) string {
	if s == "" {
		return ""
	}
	return strconv.Quote(clean(s, maxText))
}

// clean makes text from the wire safe for a terminal: control characters
// (escape sequences could rewrite the screen) become spaces, and it is cut
// to at most n runes.
func clean(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if count == n {
			b.WriteString("...")
			break
		}
		if !unicode.IsPrint(r) {
			r = ' '
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}
