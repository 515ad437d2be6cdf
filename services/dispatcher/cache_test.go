package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// startHolding runs a dispatcher like f.start, holding events for at most
// hold instead of what ack_wait gives, and waits until it owns every
// partition (before that it holds nothing: it cannot deliver).
func startHolding(t *testing.T, f *fixture, hold time.Duration) *Service {
	t.Helper()
	f.provision()
	s, err := New(context.Background(), Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop(), Projection: true})
	if err != nil {
		t.Fatal(err)
	}
	s.lanes[0].holdFor = hold
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dispatcher Run: %v", err)
		}
	})
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := testutil.ToFloat64(s.m.partitions.WithLabelValues("crm")); n != float64(f.cfg.Dispatcher.Partitions) {
			return fmt.Errorf("owns %v partitions", n)
		}
		return nil
	})
	return s
}

// stateWrites watches crm's ordering state of agg and returns every state
// written to it from now on.
func stateWrites(t *testing.T, js jetstream.JetStream, agg string) func() []*aggState {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kv, err := js.KeyValue(ctx, streams.DispatchBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, stateKey("crm", agg), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	return func() []*aggState {
		var out []*aggState
		for {
			select {
			case e := <-w.Updates():
				if e == nil {
					continue
				}
				st := &aggState{}
				if err := json.Unmarshal(e.Value(), st); err != nil {
					t.Fatal(err)
				}
				out = append(out, st)
			case <-time.After(200 * time.Millisecond):
				return out
			}
		}
	}
}

// ackPending is how many messages crm's group consumers hold unacked.
func ackPending(t *testing.T, js jetstream.JetStream) (int, error) {
	t.Helper()
	st, err := js.Stream(context.Background(), GroupStream("crm"))
	if err != nil {
		return 0, err
	}
	n := 0
	infos := st.ListConsumers(context.Background())
	for c := range infos.Info() {
		n += c.NumAckPending
	}
	return n, infos.Err()
}

// TestDeliveryWritesOnce: an event its aggregate can deliver at once is
// admitted in memory and written once, by the record of its delivery,
// which acks its message: a lead and then its chat message make two
// writes of the ordering state, and no state written holds a queued
// event.
func TestDeliveryWritesOnce(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	startHolding(t, f, time.Minute)
	writes := stateWrites(t, f.js, "conv/w")
	f.publish(event("lead-w", "lead.created", "conv/w", t0))
	lms.waitFor(1)
	f.publish(event("chat-w", "chat.message", "conv/w", t0.Add(time.Minute)))
	lms.waitFor(2)
	var got []*aggState
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		got = append(got, writes()...)
		if len(got) < 2 {
			return fmt.Errorf("%d writes", len(got))
		}
		return nil
	})
	got = append(got, writes()...)
	if len(got) != 2 {
		t.Fatalf("%d writes of the ordering state for two deliveries, want 2", len(got))
	}
	for i, st := range got {
		if len(st.Queue) != 0 {
			t.Errorf("write %d queued %v", i, ids(st.Queue))
		}
	}
	if last := got[1]; !slices.Equal(last.Delivered, []string{"lead-w", "chat-w"}) || !slices.Equal(last.Facts, []string{"lead.created"}) {
		t.Fatalf("state after both: delivered %v, facts %v", last.Delivered, last.Facts)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		msgs, _, err := groupBacklog(t, f.js, "crm")
		if err == nil && msgs != 0 {
			err = fmt.Errorf("%d messages not acked", msgs)
		}
		return err
	})
}

// TestHeldWrittenWhileAggregateBusy: an event held behind a delivery that
// takes its time is written to the queue and its message acked after
// holdFor, while the delivery is still in flight (its message must not
// outlive ack_wait); then both go out once, in order.
func TestHeldWrittenWhileAggregateBusy(t *testing.T) {
	lms := newFakeLMS(t)
	gate := make(chan struct{})
	lms.setRespond(func(r received) int {
		if r.id == "bid-1" {
			<-gate
		}
		return http.StatusNoContent
	})
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, "timeout: 1m"))
	startHolding(t, f, 100*time.Millisecond)
	f.publish(event("bid-1", "bid.placed", "ad/b", t0))
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		lms.mu.Lock()
		defer lms.mu.Unlock()
		if lms.tries["bid-1"] == 0 {
			return errors.New("bid-1 not at the LMS yet")
		}
		return nil
	})
	f.publish(event("bid-2", "bid.placed", "ad/b", t0.Add(time.Minute)))
	kv, err := f.js.KeyValue(context.Background(), streams.DispatchBucket)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		st, _, err := states{kv: kv}.load(context.Background(), stateKey("crm", "ad/b"))
		if err != nil {
			return err
		}
		if !slices.Equal(ids(st.Queue), []string{"bid-1", "bid-2"}) {
			return fmt.Errorf("queue %v", ids(st.Queue))
		}
		if n, err := ackPending(t, f.js); err != nil || n != 0 {
			return fmt.Errorf("%d messages unacked (%v)", n, err)
		}
		return nil
	})
	close(gate)
	lms.waitFor(2)
	if got := lms.ids("ad/b"); !slices.Equal(got, []string{"bid-1", "bid-2"}) {
		t.Fatalf("LMS got %v", got)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		st, _, err := states{kv: kv}.load(context.Background(), stateKey("crm", "ad/b"))
		if err == nil && len(st.Queue) != 0 {
			err = fmt.Errorf("still queued: %v", ids(st.Queue))
		}
		return err
	})
}

// TestCachedStateLosesNoWrite: another writer changes an aggregate's
// ordering state behind the lane's back (a member that has not noticed
// that it lost the partition, say). The lane's next write, from the state
// it kept, fails its compare-and-set; it reads the state again and
// records its delivery on top of the other writer's change.
func TestCachedStateLosesNoWrite(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	startHolding(t, f, time.Minute)
	f.publish(event("lead-s", "lead.created", "conv/s", t0))
	lms.waitFor(1)
	kv, err := f.js.KeyValue(context.Background(), streams.DispatchBucket)
	if err != nil {
		t.Fatal(err)
	}
	st := states{kv: kv}
	if _, err := st.update(context.Background(), stateKey("crm", "conv/s"), func(s *aggState) bool {
		s.Queue = append(s.Queue, &entry{ID: "elsewhere", Provides: []string{"bid.placed=x"}})
		s.done("elsewhere", true)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	f.publish(event("chat-s", "chat.message", "conv/s", t0.Add(time.Minute)))
	lms.waitFor(2)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		s, _, err := st.load(context.Background(), stateKey("crm", "conv/s"))
		if err != nil {
			return err
		}
		if !slices.Equal(s.Delivered, []string{"lead-s", "elsewhere", "chat-s"}) || !slices.Equal(s.Facts, []string{"bid.placed=x", "lead.created"}) {
			return fmt.Errorf("delivered %v, facts %v", s.Delivered, s.Facts)
		}
		return nil
	})
	lms.acceptedOnceEach()
}

// TestHeldMessageCopiesDeliveredOnce: the member's consumer is made anew
// (pcgroups does so on every change of the group) while one event is in
// flight and another held: their messages come back, and the copies are
// taken for what they are, so each event reaches the LMS once.
func TestHeldMessageCopiesDeliveredOnce(t *testing.T) {
	lms := newFakeLMS(t)
	gate := make(chan struct{})
	lms.setRespond(func(r received) int {
		if r.id == "bid-c1" {
			<-gate
		}
		return http.StatusNoContent
	})
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, "timeout: 1m"))
	f.cfg.Dispatcher.AckWait.Duration = time.Second
	s := startHolding(t, f, time.Minute)
	f.publish(event("bid-c1", "bid.placed", "ad/c", t0))
	f.publish(event("bid-c2", "bid.placed", "ad/c", t0.Add(time.Minute)))
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n, err := ackPending(t, f.js); err != nil || n != 2 {
			return fmt.Errorf("%d messages unacked (%v), want both", n, err)
		}
		return nil
	})
	ctx := context.Background()
	if err := f.js.DeleteConsumer(ctx, GroupStream("crm"), s.lanes[0].member); err != nil {
		t.Fatal(err)
	}
	// The member finds its consumer missing and joins again; the copies
	// arrive while bid-c1 is still at the LMS.
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if n := testutil.ToFloat64(s.m.consumerErrors.WithLabelValues("dispatch-crm")); n == 0 {
			return errors.New("consumer not made again yet")
		}
		if n, err := ackPending(t, f.js); err != nil || n != 2 {
			return fmt.Errorf("%d messages unacked (%v), want both again", n, err)
		}
		return nil
	})
	close(gate)
	lms.waitFor(2)
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		msgs, _, err := groupBacklog(t, f.js, "crm")
		if err == nil && msgs != 0 {
			err = fmt.Errorf("%d messages not acked", msgs)
		}
		return err
	})
	if got := lms.ids("ad/c"); !slices.Equal(got, []string{"bid-c1", "bid-c2"}) {
		t.Fatalf("LMS got %v, want each once in order", got)
	}
}
