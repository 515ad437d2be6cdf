package dispatcher

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// smallQueue makes maxQueue n for the test.
func smallQueue(t *testing.T, n int) {
	old := maxQueue
	maxQueue = n
	t.Cleanup(func() { maxQueue = old })
}

// overflowFixture is a dispatcher whose LMS is down, and a function that
// waits until agg's state has overflowed with at most maxQueue queued.
func overflowFixture(t *testing.T) (*fixture, *fakeLMS, *atomic.Bool, func(agg string)) {
	lms := newFakeLMS(t)
	down := &atomic.Bool{}
	down.Store(true)
	lms.setRespond(func(received) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, "max_attempts: 1000, max_age: 1h, backoff_initial: 20ms, backoff_max: 100ms, breaker_failures: 1000"))
	overflowed := func(agg string) {
		t.Helper()
		kv, err := f.js.KeyValue(context.Background(), streams.DispatchBucket)
		if err != nil {
			t.Fatal(err)
		}
		natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
			st, _, err := states{kv: kv}.load(context.Background(), stateKey("crm", agg))
			if err != nil {
				return err
			}
			if st.Overflow == nil {
				return fmt.Errorf("%s: %d queued, no overflow yet", agg, len(st.Queue))
			}
			if len(st.Queue) > maxQueue {
				return fmt.Errorf("%s: %d queued, more than %d", agg, len(st.Queue), maxQueue)
			}
			return nil
		})
	}
	return f, lms, down, overflowed
}

// publishHot publishes n bids on ad/hot, with n/2 on ad/cold between them,
// and returns the hot ones' ids in order.
func publishHot(f *fixture, n int) []string {
	var hot []string
	for i := range n {
		id := fmt.Sprintf("hot-%02d", i)
		hot = append(hot, id)
		f.publish(event(id, "bid.placed", "ad/hot", t0))
		if i%2 == 0 {
			f.publish(event(fmt.Sprintf("cold-%02d", i), "bid.placed", "ad/cold", t0))
		}
	}
	return hot
}

// deliveredOnceInOrder waits until the LMS has n events, each once, and
// checks ad/hot's came in the order hot.
func deliveredOnceInOrder(t *testing.T, lms *fakeLMS, n int, hot []string) {
	t.Helper()
	lms.waitFor(n)
	lms.acceptedOnceEach()
	if got := lms.ids("ad/hot"); !slices.Equal(got, hot) {
		t.Errorf("ad/hot delivered as %v, want %v", got, hot)
	}
}

// TestOverflowKeepsEveryEventInOrder: an aggregate whose queue is full
// while its LMS is down keeps at most maxQueue events in its state, the
// rest wait in EVENTS; when the LMS is back, every event goes out once, in
// the order they came, the other aggregate's too.
func TestOverflowKeepsEveryEventInOrder(t *testing.T) {
	smallQueue(t, 8)
	f, lms, down, overflowed := overflowFixture(t)
	s, _ := f.start()
	hot := publishHot(f, 40)
	overflowed("ad/hot")
	down.Store(false)
	deliveredOnceInOrder(t, lms, 60, hot)
	if n := testutil.ToFloat64(s.m.refilled.WithLabelValues("crm")); n < 1 {
		t.Errorf("%v events read back from EVENTS, want some", n)
	}
}

// TestOverflowSurvivesARestart: the overflow is in the ordering state, not
// in the process: a dispatcher started after the one that overflowed
// stopped reads the waiting events back (found by its sweep, with nothing
// admitted in its own memory) and delivers all of them once, in order.
// Events published after the restart, for the aggregate in overflow, go
// after them.
func TestOverflowSurvivesARestart(t *testing.T) {
	smallQueue(t, 8)
	f, lms, down, overflowed := overflowFixture(t)
	_, stop := f.start()
	hot := publishHot(f, 30)
	overflowed("ad/hot")
	stop()
	f.start()
	down.Store(false)
	for i := 30; i < 35; i++ {
		id := fmt.Sprintf("hot-%02d", i)
		hot = append(hot, id)
		f.publish(event(id, "bid.placed", "ad/hot", t0))
	}
	deliveredOnceInOrder(t, lms, 50, hot)
}

// TestOverflowsAt: an overflow starts at an event only when the queue is
// full, none has started yet, and nothing after the event was admitted
// (written or held).
func TestOverflowsAt(t *testing.T) {
	smallQueue(t, 4)
	queue := func(seqs ...uint64) []*entry {
		var q []*entry
		for _, s := range seqs {
			q = append(q, &entry{ID: fmt.Sprint("e", s), Seq: s})
		}
		return q
	}
	for _, c := range []struct {
		name string
		am   *aggMem
		seq  uint64
		want bool
	}{
		{"room left", &aggMem{st: &aggState{Queue: queue(1, 2, 3), MaxSeq: 3}}, 9, false},
		{"full", &aggMem{st: &aggState{Queue: queue(1, 2, 3, 4), MaxSeq: 4}}, 9, true},
		{"full with held", &aggMem{st: &aggState{Queue: queue(1, 2, 3), MaxSeq: 3}, held: []*held{{e: &entry{ID: "e5", Seq: 5}}}}, 9, true},
		{"already overflowing", &aggMem{st: &aggState{Queue: queue(1, 2, 3, 4), MaxSeq: 4, Overflow: &overflow{From: 5, Next: 5}}}, 9, false},
		{"a redelivery below what was admitted", &aggMem{st: &aggState{Queue: queue(1, 2, 3, 8), MaxSeq: 8}}, 6, false},
		{"below what was admitted and delivered", &aggMem{st: &aggState{Queue: queue(1, 2, 3, 4), MaxSeq: 12}}, 9, false},
		{"below a held one", &aggMem{st: &aggState{Queue: queue(1, 2, 3), MaxSeq: 3}, held: []*held{{e: &entry{ID: "e10", Seq: 10}}}}, 9, false},
	} {
		if got := c.am.overflowsAt(c.seq); got != c.want {
			t.Errorf("%s: overflowsAt(%d) = %v, want %v", c.name, c.seq, got, c.want)
		}
	}
}
