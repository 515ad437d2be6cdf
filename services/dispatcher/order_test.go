package dispatcher

import (
	"slices"
	"testing"
	"time"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// TestCausalityTable checks every rule of the table, also for adapters that
// subscribe to part of a chain only.
func TestCausalityTable(t *testing.T) {
	all := func(string) bool { return true }
	only := func(types ...string) func(string) bool {
		return func(typ string) bool { return slices.Contains(types, typ) }
	}
	bid := func(typ, id string) *leadstreamv1.Event {
		return &leadstreamv1.Event{Type: typ, Data: &leadstreamv1.Event_Bid{Bid: &leadstreamv1.Bid{BidId: id}}}
	}
	tx := func(from, to leadstreamv1.TransactionStatus) *leadstreamv1.Event {
		return &leadstreamv1.Event{Type: "transaction.status_changed",
			Data: &leadstreamv1.Event_Transaction{Transaction: &leadstreamv1.TransactionStatusChange{OldStatus: from, NewStatus: to}}}
	}
	typ := func(typ string) *leadstreamv1.Event { return &leadstreamv1.Event{Type: typ} }
	const (
		created   = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CREATED
		pending   = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING
		completed = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_COMPLETED
	)
	for _, tc := range []struct {
		name       string
		ev         *leadstreamv1.Event
		subscribed func(string) bool
		requires   []string
		provides   []string
	}{
		{"lead.created starts the chain", typ("lead.created"), all, nil, []string{"lead.created"}},
		{"lead.sold after lead.created", typ("lead.sold"), all, []string{"lead.created"}, []string{"lead.sold"}},
		{"lead.invoiced after lead.sold", typ("lead.invoiced"), all, []string{"lead.sold"}, []string{"lead.invoiced"}},
		{"lead.paid after lead.invoiced", typ("lead.paid"), all, []string{"lead.invoiced"}, []string{"lead.paid"}},
		{"lead.paid after the nearest subscribed status", typ("lead.paid"), only("lead.created", "lead.paid"), []string{"lead.created"}, []string{"lead.paid"}},
		{"lead.sold alone waits for nothing", typ("lead.sold"), only("lead.sold"), nil, []string{"lead.sold"}},
		{"chat.message after its lead", typ("chat.message"), all, []string{"lead.created"}, nil},
		{"chat.message without lead subscription", typ("chat.message"), only("chat.message"), nil, nil},
		{"invoice.paid after invoice.created", typ("invoice.paid"), all, []string{"invoice.created"}, []string{"invoice.paid"}},
		{"bid.placed names its bid", bid("bid.placed", "2"), all, nil, []string{"bid.placed=2"}},
		{"bid.closed after its bid was placed", bid("bid.closed", "2"), all, []string{"bid.placed=2"}, nil},
		{"bid.closed without an id waits for nothing", bid("bid.closed", ""), all, nil, nil},
		{"bid.closed without bid.placed subscription", bid("bid.closed", "2"), only("bid.closed"), nil, nil},
		{"transaction from CREATED", tx(created, pending), all, nil, []string{"transaction.status_changed=PENDING"}},
		{"transaction from PENDING", tx(pending, completed), all, []string{"transaction.status_changed=PENDING"}, []string{"transaction.status_changed=COMPLETED"}},
		{"call.completed is unordered", typ("call.completed"), all, nil, nil},
		{"asq.created is unordered", typ("asq.created"), all, nil, nil},
		{"enquiry.created is unordered", typ("enquiry.created"), all, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := requires(tc.ev, tc.subscribed); !slices.Equal(got, tc.requires) {
				t.Errorf("requires = %v, want %v", got, tc.requires)
			}
			if got := provides(tc.ev); !slices.Equal(got, tc.provides) {
				t.Errorf("provides = %v, want %v", got, tc.provides)
			}
		})
	}
}

// TestLeadStatusChainOrder: an Offerte lead's statuses sent as invoiced,
// paid, sold, created (provider times 11-30, 12-05, 11-20, 11-01) reach the
// LMS in chain order, none as an orphan; a bid closed before it was placed
// goes out after it.
func TestLeadStatusChainOrder(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.start()
	const agg = "offerte/lead/12345"
	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 10, 0, 0, 0, time.UTC) }
	status := func(id, typ string, at time.Time) *leadstreamv1.Event {
		ev := event(id, typ, agg, at)
		ev.Data = &leadstreamv1.Event_LeadStatus{LeadStatus: &leadstreamv1.LeadStatusChange{LeadId: "12345"}}
		return ev
	}
	f.publish(status("invoiced", "lead.invoiced", day(11, 30)))
	f.publish(status("paid", "lead.paid", day(12, 5)))
	f.publish(status("sold", "lead.sold", day(11, 20)))
	closed := event("closed", "bid.closed", "api/advertisement/m1", t0.Add(time.Hour))
	closed.Data = &leadstreamv1.Event_Bid{Bid: &leadstreamv1.Bid{BidId: "2"}}
	f.publish(closed)
	placed := event("placed", "bid.placed", "api/advertisement/m1", t0)
	placed.Data = &leadstreamv1.Event_Bid{Bid: &leadstreamv1.Bid{BidId: "2"}}
	f.publish(placed)
	f.publish(event("created", "lead.created", agg, day(11, 1)))
	lms.waitFor(6)
	if got := lms.ids(agg); !slices.Equal(got, []string{"created", "sold", "invoiced", "paid"}) {
		t.Fatalf("lead statuses delivered as %v, want created sold invoiced paid", got)
	}
	if got := lms.ids("api/advertisement/m1"); !slices.Equal(got, []string{"placed", "closed"}) {
		t.Fatalf("bids delivered as %v, want placed closed", got)
	}
	for _, r := range lms.received() {
		if r.orphan {
			t.Fatalf("%s delivered as an orphan", r.id)
		}
	}
}

// TestSkippedStatusNamesWhatItSkipped: a lead paid but never sold nor
// invoiced goes out after max_park as an orphan that names the status it
// waited for in vain.
func TestSkippedStatusNamesWhatItSkipped(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.start()
	const agg = "offerte/lead/777"
	paid := event("paid-777", "lead.paid", agg, t0.Add(time.Hour))
	paid.Data = &leadstreamv1.Event_LeadStatus{LeadStatus: &leadstreamv1.LeadStatusChange{LeadId: "777"}}
	f.publish(paid)
	f.publish(event("created-777", "lead.created", agg, t0))
	lms.waitFor(2)
	got := lms.received()
	if got[0].id != "created-777" || got[0].orphan || got[1].id != "paid-777" || !got[1].orphan || got[1].missing != "lead.invoiced" {
		t.Fatalf("LMS received %+v, want created-777, then paid-777 as an orphan missing lead.invoiced", got)
	}
}
