package dispatcher

import (
	"strings"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// A fact is something an aggregate's delivered events have established for
// one adapter: "lead.created", or "transaction.status_changed=PENDING".
// The part before "=" is the event type that establishes it.

// causality is the one table of causal prerequisites, per event type: the
// facts an event needs delivered first, and the facts its delivery
// establishes. Events of types not listed need nothing and establish
// nothing, and go out in arrival order.
var causality = map[string]struct {
	requires func(*leadstreamv1.Event) []string
	provides func(*leadstreamv1.Event) []string
}{
	// A lead before the chat messages of its conversation, and before its
	// status changes.
	"lead.created":  {provides: facts("lead.created")},
	"chat.message":  {requires: facts("lead.created")},
	"lead.sold":     {requires: facts("lead.created")},
	"lead.invoiced": {requires: facts("lead.created")},
	"lead.paid":     {requires: facts("lead.created")},
	// An invoice before its payment.
	"invoice.created": {provides: facts("invoice.created")},
	"invoice.paid":    {requires: facts("invoice.created")},
	// Transaction status changes in the order their statuses chain: a change
	// from X needs the change to X first, unless X is where transactions
	// start.
	"transaction.status_changed": {
		requires: func(ev *leadstreamv1.Event) []string {
			switch old := ev.GetTransaction().GetOldStatus(); old {
			case leadstreamv1.TransactionStatus_TRANSACTION_STATUS_UNKNOWN, leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CREATED:
				return nil
			default:
				return []string{transactionFact(old)}
			}
		},
		provides: func(ev *leadstreamv1.Event) []string {
			return []string{transactionFact(ev.GetTransaction().GetNewStatus())}
		},
	},
}

func facts(f ...string) func(*leadstreamv1.Event) []string {
	return func(*leadstreamv1.Event) []string { return f }
}

func transactionFact(s leadstreamv1.TransactionStatus) string {
	return "transaction.status_changed=" + strings.TrimPrefix(s.String(), "TRANSACTION_STATUS_")
}

// factType is the event type that establishes fact f.
func factType(f string) string {
	t, _, _ := strings.Cut(f, "=")
	return t
}

// requires returns the facts ev needs first, leaving out those established
// by types the adapter does not subscribe to: it would wait for them in vain.
func requires(ev *leadstreamv1.Event, subscribed func(eventType string) bool) []string {
	r := causality[ev.Type].requires
	if r == nil {
		return nil
	}
	var out []string
	for _, f := range r(ev) {
		if subscribed(factType(f)) {
			out = append(out, f)
		}
	}
	return out
}

func provides(ev *leadstreamv1.Event) []string {
	if p := causality[ev.Type].provides; p != nil {
		return p(ev)
	}
	return nil
}
