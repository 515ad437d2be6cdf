package dispatcher

import (
	"fmt"
	"slices"
	"testing"
	"time"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// q is a queued entry for the tables: it needs requires and establishes
// provides, and was admitted at minute since.
func q(id string, since int, requires, provides []string) *entry {
	return &entry{ID: id, Requires: requires, Provides: provides, Since: t0.Add(time.Duration(since) * time.Minute)}
}

func facts(fs ...string) []string { return fs }

func TestSatisfiedAndMissing(t *testing.T) {
	for _, tc := range []struct {
		name      string
		facts     []string
		requires  []string
		satisfied bool
		missing   []string
	}{
		{"needs nothing", nil, nil, true, nil},
		{"needs what is established", facts("lead.created"), facts("lead.created"), true, nil},
		{"needs what is not", facts("lead.sold"), facts("lead.created"), false, facts("lead.created")},
		{"needs two, has one", facts("bid.placed=1"), facts("bid.placed=1", "bid.placed=2"), false, facts("bid.placed=2")},
		{"a fact of another value is another fact", facts("transaction.status_changed=PENDING"), facts("transaction.status_changed=COMPLETED"), false, facts("transaction.status_changed=COMPLETED")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &aggState{Facts: tc.facts}
			e := q("e", 0, tc.requires, nil)
			if got := st.satisfied(e); got != tc.satisfied {
				t.Errorf("satisfied = %v, want %v", got, tc.satisfied)
			}
			if got := missing(st, e); !slices.Equal(got, tc.missing) {
				t.Errorf("missing = %v, want %v", got, tc.missing)
			}
		})
	}
}

func TestNext(t *testing.T) {
	const maxPark = 10 * time.Minute
	lead := facts("lead.created")
	sold, invoiced := facts("lead.sold"), facts("lead.invoiced")
	for _, tc := range []struct {
		name   string
		st     aggState
		minute int // now, in minutes after t0
		want   string
		orphan bool
	}{
		{"empty queue", aggState{}, 0, "", false},
		{"first in line", aggState{Queue: []*entry{q("a", 0, nil, nil), q("b", 0, nil, nil)}}, 0, "a", false},
		{"a parked one lets the next pass", aggState{Queue: []*entry{q("chat", 0, lead, nil), q("bid", 1, nil, nil)}}, 2, "bid", false},
		{"parked before max_park", aggState{Queue: []*entry{q("chat", 0, lead, nil)}}, 9, "", false},
		{"orphan at max_park", aggState{Queue: []*entry{q("chat", 0, lead, nil)}}, 10, "chat", true},
		{"prerequisite established", aggState{Facts: lead, Queue: []*entry{q("chat", 0, lead, nil)}}, 0, "chat", false},
		{"a satisfied one before an orphan", aggState{Facts: lead, Queue: []*entry{q("paid", 0, invoiced, nil), q("chat", 5, lead, nil)}}, 20, "chat", false},
		{"the retrying one holds the rest back", aggState{Queue: []*entry{q("a", 0, nil, nil), q("b", 0, nil, nil)}, Retry: &retry{ID: "b"}}, 0, "b", false},
		{"a retrying orphan stays an orphan", aggState{Queue: []*entry{q("chat", 0, lead, nil), q("b", 0, nil, nil)}, Retry: &retry{ID: "chat"}}, 10, "chat", true},
		{"a retry of an entry gone is ignored", aggState{Queue: []*entry{q("a", 0, nil, nil)}, Retry: &retry{ID: "gone"}}, 0, "a", false},
		// lead.paid came before lead.invoiced, which waits for a lead.sold
		// that never comes: lead.invoiced goes first, once it waited too.
		{"an orphan waits for its queued prerequisite", aggState{Facts: lead, Queue: []*entry{q("paid", 0, invoiced, facts("lead.paid")), q("invoiced", 5, sold, invoiced)}}, 12, "", false},
		{"the queued prerequisite goes first", aggState{Facts: lead, Queue: []*entry{q("paid", 0, invoiced, facts("lead.paid")), q("invoiced", 5, sold, invoiced)}}, 15, "invoiced", true},
		{"an unrelated orphan is not held", aggState{Facts: lead, Queue: []*entry{q("paid", 0, invoiced, facts("lead.paid")), q("invoiced", 5, sold, invoiced), q("closed", 1, facts("bid.placed=1"), nil)}}, 12, "closed", true},
		// A loop in the data (a status and back) still lets one go.
		{"a loop ends", aggState{Queue: []*entry{q("x", 0, facts("s=B"), facts("s=A")), q("y", 1, facts("s=A"), facts("s=B"))}}, 11, "y", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, orphan := tc.st.next(t0.Add(time.Duration(tc.minute)*time.Minute), maxPark)
			got := ""
			if e != nil {
				got = e.ID
			}
			if got != tc.want || orphan != tc.orphan {
				t.Fatalf("next = %q (orphan %v), want %q (orphan %v)", got, orphan, tc.want, tc.orphan)
			}
		})
	}
}

func TestDone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		st        aggState
		id        string
		delivered bool
		queue     []string
		facts     []string
		retry     bool
		last      string // last of Delivered
	}{
		{"delivered: its facts are established, sorted",
			aggState{Facts: facts("lead.sold"), Queue: []*entry{q("a", 0, nil, facts("lead.created")), q("b", 0, nil, nil)}},
			"a", true, []string{"b"}, facts("lead.created", "lead.sold"), false, "a"},
		{"dead-lettered: nothing established, still remembered",
			aggState{Queue: []*entry{q("a", 0, nil, facts("lead.created"))}},
			"a", false, nil, nil, false, "a"},
		{"a fact established twice is kept once",
			aggState{Facts: facts("lead.created"), Queue: []*entry{q("a", 0, nil, facts("lead.created"))}},
			"a", true, nil, facts("lead.created"), false, "a"},
		{"ends its retry",
			aggState{Queue: []*entry{q("a", 0, nil, nil)}, Retry: &retry{ID: "a"}},
			"a", true, nil, nil, false, "a"},
		{"keeps another's retry",
			aggState{Queue: []*entry{q("a", 0, nil, nil), q("b", 0, nil, nil)}, Retry: &retry{ID: "b"}},
			"a", true, []string{"b"}, nil, true, "a"},
		{"an id not queued changes nothing",
			aggState{Queue: []*entry{q("a", 0, nil, nil)}, Delivered: []string{"z"}},
			"x", true, []string{"a"}, nil, false, "z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			st.done(tc.id, tc.delivered)
			if got := ids(st.Queue); !slices.Equal(got, tc.queue) {
				t.Errorf("queue = %v, want %v", got, tc.queue)
			}
			if !slices.Equal(st.Facts, tc.facts) {
				t.Errorf("facts = %v, want %v", st.Facts, tc.facts)
			}
			if (st.Retry != nil) != tc.retry {
				t.Errorf("retry = %+v, want one: %v", st.Retry, tc.retry)
			}
			if len(st.Delivered) == 0 || st.Delivered[len(st.Delivered)-1] != tc.last {
				t.Errorf("delivered = %v, want it to end in %q", st.Delivered, tc.last)
			}
		})
	}
}

// TestDoneBoundsDelivered: the ids kept to drop redeliveries are the last
// maxDelivered.
func TestDoneBoundsDelivered(t *testing.T) {
	st := &aggState{}
	for i := range maxDelivered + 10 {
		id := fmt.Sprint(i)
		st.Queue = append(st.Queue, q(id, 0, nil, nil))
		st.done(id, true)
	}
	if len(st.Delivered) != maxDelivered || st.Delivered[0] != "10" || st.Delivered[maxDelivered-1] != fmt.Sprint(maxDelivered+9) {
		t.Fatalf("delivered holds %d ids, %s..%s", len(st.Delivered), st.Delivered[0], st.Delivered[len(st.Delivered)-1])
	}
}

// chainEvents are two aggregates' events with causal structure, for the
// fuzzer: a conversation (its lead, two chat messages, the lead's
// statuses) and a transaction's status chain.
func chainEvents() []*leadstreamv1.Event {
	const (
		created   = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CREATED
		pending   = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING
		completed = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_COMPLETED
		refunded  = leadstreamv1.TransactionStatus_TRANSACTION_STATUS_REFUNDED
	)
	return []*leadstreamv1.Event{
		event("lead", "lead.created", "conv/1", t0),
		event("chat-1", "chat.message", "conv/1", t0),
		event("chat-2", "chat.message", "conv/1", t0),
		event("sold", "lead.sold", "conv/1", t0),
		event("invoiced", "lead.invoiced", "conv/1", t0),
		event("paid", "lead.paid", "conv/1", t0),
		transaction("tx-1", "tx/1", created, pending, t0),
		transaction("tx-2", "tx/1", pending, completed, t0),
		transaction("tx-3", "tx/1", completed, refunded, t0),
	}
}

// sim runs the lane's admit and pump logic on aggStates in memory, on a
// clock of its own, recording every delivery.
type sim struct {
	t          *testing.T
	maxPark    time.Duration
	now        time.Time
	states     map[string]*aggState
	admitted   map[string]bool
	deliveries map[string]int
}

func (s *sim) admit(ev *leadstreamv1.Event) {
	st := s.states[ev.AggregateId]
	if st.index(ev.Id) >= 0 || slices.Contains(st.Delivered, ev.Id) {
		return // a redelivered EVENTS message
	}
	all := func(string) bool { return true }
	st.Queue = append(st.Queue, &entry{ID: ev.Id, Type: ev.Type, Requires: requires(ev, all), Provides: provides(ev), Since: s.now})
	s.admitted[ev.Id] = true
}

// pump delivers what is deliverable in agg now; fail says whether an
// attempt fails (it is then retried after a minute).
func (s *sim) pump(agg string, fail func() bool) {
	st := s.states[agg]
	for {
		e, orphan := st.next(s.now, s.maxPark)
		if e == nil {
			return
		}
		retrying := st.Retry != nil && st.Retry.ID == e.ID
		if retrying && s.now.Before(st.Retry.Next) {
			return
		}
		if !retrying {
			// A first attempt: causal, or an orphan that waited max_park
			// and whose prerequisites are nowhere in the queue.
			if orphan {
				if waited := s.now.Sub(e.Since); waited < s.maxPark {
					s.t.Fatalf("%s went out as an orphan after %s, before max_park %s", e.ID, waited, s.maxPark)
				}
				miss := missing(st, e)
				if len(miss) == 0 {
					s.t.Fatalf("%s went out as an orphan missing nothing", e.ID)
				}
				for _, o := range st.Queue {
					if o != e && slices.ContainsFunc(miss, func(f string) bool { return slices.Contains(o.Provides, f) }) {
						s.t.Fatalf("%s went out as an orphan missing %v before %s, queued, which establishes it", e.ID, miss, o.ID)
					}
				}
			} else if !st.satisfied(e) {
				s.t.Fatalf("%s went out before its prerequisites %v", e.ID, missing(st, e))
			}
		}
		if fail() {
			st.Retry = &retry{ID: e.ID, Next: s.now.Add(time.Minute)}
			return
		}
		if !orphan && !st.satisfied(e) {
			s.t.Fatalf("%s delivered (retry %v) before its prerequisites %v", e.ID, retrying, missing(st, e))
		}
		s.deliveries[e.ID]++
		st.done(e.ID, true)
	}
}

// FuzzCausalDelivery sends the events of chainEvents in an order the input
// chooses, some twice, some never, with clock steps, pumps and failing
// attempts between them, then lets time pass until nothing is queued. Every
// first attempt is causal or an orphan after max_park whose prerequisites
// are not queued, and every admitted event is delivered exactly once.
func FuzzCausalDelivery(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 5, 0, 4, 0, 3, 0, 2, 0, 1, 0, 0, 3, 3})                                // reversed arrivals, then pumps
	f.Add([]byte{0, 8, 0, 7, 0, 6, 2, 10, 3, 3, 0, 0})                                     // a transaction chain reversed
	f.Add([]byte{0, 5, 2, 9, 0, 4, 2, 9, 3, 3, 0, 1, 1, 0, 4, 0, 3, 3, 2, 30, 0, 0, 3, 3}) // parked past max_park
	f.Add([]byte{0, 0, 4, 1, 3, 3, 2, 2, 3, 3, 1, 0, 0, 1, 3, 3})                          // failures and duplicates
	f.Fuzz(func(t *testing.T, in []byte) {
		events := chainEvents()
		s := &sim{t: t, maxPark: 10 * time.Minute, now: t0, states: map[string]*aggState{},
			admitted: map[string]bool{}, deliveries: map[string]int{}}
		aggs := []string{}
		for _, ev := range events {
			if s.states[ev.AggregateId] == nil {
				s.states[ev.AggregateId] = &aggState{}
				aggs = append(aggs, ev.AggregateId)
			}
		}
		unsent := slices.Clone(events)
		var sent []*leadstreamv1.Event
		failures := 0
		failNext := func() bool {
			if failures > 0 {
				failures--
				return true
			}
			return false
		}
		pumpAll := func() {
			for _, agg := range aggs {
				s.pump(agg, failNext)
			}
		}
		for i := 0; i+1 < len(in); i += 2 {
			op, arg := in[i]%6, int(in[i+1])
			switch op {
			case 0: // an event arrives
				if len(unsent) > 0 {
					ev := unsent[arg%len(unsent)]
					unsent = slices.DeleteFunc(unsent, func(e *leadstreamv1.Event) bool { return e == ev })
					sent = append(sent, ev)
					s.admit(ev)
				}
			case 1: // one arrives again
				if len(sent) > 0 {
					s.admit(sent[arg%len(sent)])
				}
			case 2: // time passes, up to three max_parks
				s.now = s.now.Add(time.Duration(arg%31) * time.Minute)
			case 3: // the timers and the sweep pump
				pumpAll()
			case 4: // the next attempts fail
				failures = arg % 4
			case 5: // an event never comes
				if len(unsent) > 0 {
					unsent = slices.Delete(unsent, arg%len(unsent), arg%len(unsent)+1)
				}
			}
		}
		// Time passes until everything admitted went out.
		failures = 0
		for range 20 {
			pumpAll()
			s.now = s.now.Add(s.maxPark)
		}
		for _, agg := range aggs {
			if st := s.states[agg]; len(st.Queue) > 0 {
				t.Fatalf("%s still has %v queued", agg, ids(st.Queue))
			}
		}
		for id := range s.admitted {
			if n := s.deliveries[id]; n != 1 {
				t.Fatalf("%s delivered %d times", id, n)
			}
		}
		if len(s.deliveries) != len(s.admitted) {
			t.Fatalf("%d events delivered, %d admitted", len(s.deliveries), len(s.admitted))
		}
	})
}

// TestDue: when an aggregate has to be pumped next, which is what the sweep
// sets a partition's timers from after it moved to another member.
func TestDue(t *testing.T) {
	const maxPark = 10 * time.Minute
	lead := facts("lead.created")
	at := func(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }
	for _, tc := range []struct {
		name   string
		st     aggState
		minute int
		due    time.Time
		ok     bool
	}{
		{"nothing queued", aggState{}, 0, time.Time{}, false},
		{"deliverable now", aggState{Queue: []*entry{q("a", 0, nil, nil)}}, 3, at(3), true},
		{"a retry later", aggState{Queue: []*entry{q("a", 0, nil, nil)}, Retry: &retry{ID: "a", Next: at(5)}}, 3, at(5), true},
		{"a retry due", aggState{Queue: []*entry{q("a", 0, nil, nil)}, Retry: &retry{ID: "a", Next: at(2)}}, 3, at(3), true},
		{"parked: at max_park", aggState{Queue: []*entry{q("chat", 1, lead, nil)}}, 3, at(11), true},
		{"the earliest of two parked", aggState{Queue: []*entry{q("chat1", 4, lead, nil), q("chat2", 2, lead, nil)}}, 3, at(12), true},
		// paid waits for invoiced, which is queued and waits for sold: paid
		// goes only after invoiced waited max_park too.
		{"parked behind a parked one", aggState{Queue: []*entry{
			q("paid", 0, facts("lead.invoiced"), facts("lead.paid")),
			q("invoiced", 4, facts("lead.sold"), facts("lead.invoiced")),
		}}, 3, at(14), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, ok := tc.st.due(at(tc.minute), maxPark)
			if ok != tc.ok || !due.Equal(tc.due) {
				t.Fatalf("due = %v %v, want %v %v", due, ok, tc.due, tc.ok)
			}
			// At that time, next has the entry due (or a retry waits no more).
			if ok && tc.st.Retry == nil {
				if e, _ := tc.st.next(due, maxPark); e == nil {
					t.Fatalf("at %v next has nothing", due)
				}
			}
		})
	}
}
