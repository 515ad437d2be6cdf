package dispatcher

import (
	"slices"
	"strings"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// A fact is something an aggregate's delivered events have established for
// one adapter: "lead.created", "bid.placed=2", or
// "transaction.status_changed=PENDING". The part before "=" is the event
// type that establishes it.

// rule is one row of the causal table: the facts an event needs delivered
// first (of those, the adapter is only made to wait for facts of types it
// subscribes to: it would wait for the others in vain), and the facts its
// delivery establishes.
type rule struct {
	requires func(ev *leadstreamv1.Event, subscribed func(eventType string) bool) []string
	provides func(ev *leadstreamv1.Event) []string
}

// Chains: statuses an aggregate moves through, in order. Each waits for the
// status before it, or, when the adapter does not subscribe to that one,
// for the nearest earlier one it does subscribe to.
var (
	// leadChain is an Offerte Adviseur lead's life (lead.created is also the
	// lead of a Marktplaats conversation).
	leadChain = []string{"lead.created", "lead.sold", "lead.invoiced", "lead.paid"}
	// invoiceChain is an Offerte Adviseur invoice's life.
	invoiceChain = []string{"invoice.created", "invoice.paid"}
)

// causality is the one table of causal order per aggregate. Events of types
// not listed (asq.created, call.*, enquiry.created) need nothing and
// establish nothing, and go out in arrival order: a call's pre-call
// notification is optional at the call-tracking provider, so a completed
// call never waits for one.
var causality = map[string]rule{
	// A lead before the chat messages of its conversation, and its statuses
	// in their chain: created < sold < invoiced < paid.
	"lead.created":  chainRule(leadChain, 0),
	"lead.sold":     chainRule(leadChain, 1),
	"lead.invoiced": chainRule(leadChain, 2),
	"lead.paid":     chainRule(leadChain, 3),
	"chat.message":  {requires: needs("lead.created")},
	// An invoice before its payment.
	"invoice.created": chainRule(invoiceChain, 0),
	"invoice.paid":    chainRule(invoiceChain, 1),
	// A bid is placed before it is closed; an advertisement has many bids,
	// so the fact names the bid. A closed bid without an id waits for
	// nothing.
	"bid.placed": {provides: func(ev *leadstreamv1.Event) []string { return bidFact(ev) }},
	"bid.closed": {requires: func(ev *leadstreamv1.Event, subscribed func(string) bool) []string {
		if !subscribed("bid.placed") {
			return nil
		}
		return bidFact(ev)
	}},
	// Transaction status changes in the order their statuses chain: a change
	// from X needs the change to X first, unless X is where transactions
	// start.
	"transaction.status_changed": {
		requires: func(ev *leadstreamv1.Event, subscribed func(string) bool) []string {
			switch old := ev.GetTransaction().GetOldStatus(); old {
			case leadstreamv1.TransactionStatus_TRANSACTION_STATUS_UNKNOWN, leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CREATED:
				return nil
			default:
				if !subscribed("transaction.status_changed") {
					return nil
				}
				return []string{transactionFact(old)}
			}
		},
		provides: func(ev *leadstreamv1.Event) []string {
			return []string{transactionFact(ev.GetTransaction().GetNewStatus())}
		},
	},
}

// chainRule is the rule of the i-th status of chain: it needs the nearest
// earlier status the adapter subscribes to, and establishes itself.
func chainRule(chain []string, i int) rule {
	return rule{
		requires: func(_ *leadstreamv1.Event, subscribed func(string) bool) []string {
			for j := i - 1; j >= 0; j-- {
				if subscribed(chain[j]) {
					return []string{chain[j]}
				}
			}
			return nil
		},
		provides: func(*leadstreamv1.Event) []string { return []string{chain[i]} },
	}
}

// needs is a rule's requires for fixed facts.
func needs(fs ...string) func(*leadstreamv1.Event, func(string) bool) []string {
	return func(_ *leadstreamv1.Event, subscribed func(string) bool) []string {
		var out []string
		for _, f := range fs {
			if subscribed(factType(f)) {
				out = append(out, f)
			}
		}
		return out
	}
}

func bidFact(ev *leadstreamv1.Event) []string {
	if id := ev.GetBid().GetBidId(); id != "" {
		return []string{"bid.placed=" + id}
	}
	return nil
}

func transactionFact(s leadstreamv1.TransactionStatus) string {
	return "transaction.status_changed=" + strings.TrimPrefix(s.String(), "TRANSACTION_STATUS_")
}

// factType is the event type that establishes fact f.
func factType(f string) string {
	t, _, _ := strings.Cut(f, "=")
	return t
}

// requires returns the facts ev needs delivered first for an adapter that
// receives the types subscribed says.
func requires(ev *leadstreamv1.Event, subscribed func(eventType string) bool) []string {
	if r := causality[ev.Type].requires; r != nil {
		return r(ev, subscribed)
	}
	return nil
}

func provides(ev *leadstreamv1.Event) []string {
	if p := causality[ev.Type].provides; p != nil {
		return p(ev)
	}
	return nil
}

// missing returns the prerequisites of e that st has not established: what
// an orphan goes out without.
func missing(st *aggState, e *entry) []string {
	var out []string
	for _, f := range e.Requires {
		if !slices.Contains(st.Facts, f) {
			out = append(out, f)
		}
	}
	return out
}
