package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// An aggregate's ordering state is one value, rewritten whole by every
// admission and delivery: a queue that grows (an LMS down for an hour, an
// advertisement that takes a bid a second) would make each write cost as
// much as the queue, and draining it cost the square of its length. So a
// queue holds at most maxQueue events. Once it is full, the aggregate's
// later events stay where they already are, durably: in EVENTS. The state
// records from which EVENTS sequence on they are to be read (overflow.From)
// and how far they have been (overflow.Next); their messages are acked as
// they come, without a write, and the pump reads them back in EVENTS'
// order, a batch at a time, as the queue drains below refillBelow.
//
// An aggregate stays in overflow from then on: each of its events is
// admitted by reading it back, which costs a read instead of a write. That
// is never unsafe: a read from a replica that lags finds nothing yet (it
// never skips a message: a replica stores them in order), and the pump
// looks again (overflowRetry) while it knows of an event not read back.

// maxQueue bounds the events an aggregate's state holds (see above). A
// var for the tests.
var maxQueue = 256

// overflowRetry is how soon the pump looks again for an event admitted
// into the overflow that a read back did not find yet (the replica that
// answered lags).
const overflowRetry = time.Second

// refillBelow is the queue length under which the pump reads events back
// from EVENTS into the queue, up to maxQueue.
func refillBelow() int { return maxQueue / 2 }

// overflow is where an aggregate's events that are not in its queue are:
// in EVENTS, from sequence From on, read back up to Next (exclusive).
type overflow struct {
	From uint64 `json:"from"`
	Next uint64 `json:"next"`
}

// covers reports whether the EVENTS message at seq is the overflow's: read
// back already, or to be.
func (o *overflow) covers(seq uint64) bool { return o != nil && seq >= o.From }

// overflowsAt reports whether the event at EVENTS sequence seq starts
// its aggregate's overflow: the queue is full, and nothing after seq was
// admitted (a redelivery that comes after later events is queued as
// before: reading back from it would bring those again).
func (am *aggMem) overflowsAt(seq uint64) bool {
	if am.st.Overflow != nil || len(am.st.Queue)+len(am.held) < maxQueue || seq <= am.st.MaxSeq {
		return false
	}
	return !slices.ContainsFunc(am.held, func(h *held) bool { return h.e.Seq > seq })
}

// overflowSubject is the EVENTS subject filter of one aggregate's events:
// its token is the subject's last.
func overflowSubject(agg string) string { return "events.*.*.*." + streams.AggregateToken(agg) }

// wants reports whether the lane delivers ev: its type and tenant are the
// adapter's (the group stream's filter, applied to what is read back from
// EVENTS).
func (l *lane) wants(ev *leadstreamv1.Event) bool {
	if !l.subscribed(ev.Type) {
		return false
	}
	return len(l.cfg.Tenants) == 0 || slices.Contains(l.cfg.Tenants, ev.Tenant)
}

// entryOf is the queue entry of ev, at EVENTS sequence seq.
func (l *lane) entryOf(ev *leadstreamv1.Event, seq uint64) *entry {
	return &entry{ID: ev.Id, Seq: seq, Type: ev.Type, Requires: requires(ev, l.subscribed), Provides: provides(ev), Since: l.now()}
}

// refill reads agg's events back from EVENTS into its queue, from
// overflow.Next on, until the queue holds maxQueue or EVENTS has no more,
// and writes the state. It reports whether it read any. am.mu is held and
// am.st is current.
func (l *lane) refill(ctx context.Context, am *aggMem) (bool, error) {
	o := am.st.Overflow
	if o == nil || len(am.st.Queue) >= refillBelow() {
		return false, nil
	}
	subject := overflowSubject(am.agg)
	if am.unread < o.Next {
		// None admitted that is not read back: ask EVENTS whether any
		// waits (the last of the aggregate's subjects is found from the
		// stream's subject index; reading forward from Next to find there
		// is none would read the rest of the stream).
		last, err := l.events.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("looking for %s's events in EVENTS: %w", am.agg, err)
		}
		if last.Sequence < o.Next {
			return false, nil
		}
	}
	next := o.Next
	var add []*entry
	room := maxQueue - len(am.st.Queue)
	for reads := 0; len(add) < room && reads < 2*maxQueue; reads++ {
		raw, err := l.events.GetMsg(ctx, next, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // none yet on the replica that answered
		}
		if err != nil {
			return false, fmt.Errorf("reading %s's events back from EVENTS at %d: %w", am.agg, next, err)
		}
		if raw.Sequence < next {
			return false, fmt.Errorf("reading %s's events back from EVENTS at %d: got sequence %d", am.agg, next, raw.Sequence)
		}
		next = raw.Sequence + 1
		var ev leadstreamv1.Event
		// What cannot be decoded, or is another aggregate's (a token
		// shared by two), or not the adapter's, is not this queue's: its
		// group message, where there is one, is admitted as any other.
		if proto.Unmarshal(raw.Data, &ev) != nil || ev.Id == "" || ev.AggregateId != am.agg || !l.wants(&ev) {
			continue
		}
		add = append(add, l.entryOf(&ev, raw.Sequence))
	}
	if next == o.Next {
		return false, nil
	}
	added := 0
	err := l.persist(ctx, am, func(st *aggState) bool {
		added = 0
		if st.Overflow == nil || st.Overflow.Next != o.Next {
			return false // changed meanwhile (written by someone else): the next pump reads again
		}
		for _, e := range add {
			if !st.has(e.ID) {
				st.Queue = append(st.Queue, e)
				added++
			}
		}
		st.Overflow = &overflow{From: o.From, Next: next}
		return true
	})
	if err != nil {
		return false, err
	}
	l.m.refilled.WithLabelValues(l.cfg.Name).Add(float64(added))
	return added > 0, nil
}
