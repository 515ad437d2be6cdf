package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/synadia-io/orbit.go/pcgroups"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// running is a dispatcher started by a test that wants Run's error.
type running struct {
	s      *Service
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	logs   *observer.ObservedLogs
}

func runService(t *testing.T, f *fixture, js jetstream.JetStream, projection bool) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	core, logs := observer.New(zapcore.WarnLevel)
	f.provision()
	s, err := New(context.Background(), Options{Config: f.cfg, JetStream: js, Logger: zap.New(core), Registry: reg, Projection: projection})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, reg: reg, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
			t.Error("dispatcher still running a minute after the test")
		}
	})
	return r
}

// wait returns Run's error, failing the test if Run has not returned
// within bound: the check that shutdown does not hang.
func (r *running) wait(t *testing.T, bound time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(bound):
		t.Fatalf("Run did not return within %s", bound)
		return nil
	}
}

// ids are the ids of queued entries.
func ids(es []*entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

// consumerInfo is the state of a dispatcher consumer on EVENTS.
// groupBacklog is what the adapter's consumer group holds: messages not yet
// acked (its stream is a work queue: an acked message is gone), and how
// many of them were delivered more than once.
func groupBacklog(t *testing.T, js jetstream.JetStream, adapter string) (msgs uint64, redelivered int, err error) {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, GroupStream(adapter))
	if err != nil {
		return 0, 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	for c := range st.ListConsumers(ctx).Info() {
		redelivered += c.NumRedelivered
	}
	return info.State.Msgs, redelivered, nil
}

// resetGroup takes every member out of crm's group and deletes their
// consumers, as the members' reaping does once a dead member's consumer
// has lapsed: for tests whose dispatcher could not leave the group.
func resetGroup(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	c, err := pcgroups.GetElasticConsumerGroupConfig(ctx, js, streams.EVENTS, "dispatch-crm")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Members) > 0 {
		if _, err := pcgroups.DeleteMembers(ctx, js, streams.EVENTS, "dispatch-crm", c.Members); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range c.Members {
		if err := js.DeleteConsumer(ctx, GroupStream("crm"), m); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatal(err)
		}
	}
}

// deliverLetters waits for exactly want deliver-stage letters of adapter
// crm in DLQ and returns them.
func deliverLetters(t *testing.T, js jetstream.JetStream, want int) []*dlq.Letter {
	t.Helper()
	var letters []*dlq.Letter
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() (err error) {
		letters, err = dlq.List(context.Background(), js, dlq.Filter{Stage: dlq.StageDeliver, Name: "crm"})
		if err == nil && len(letters) != want {
			err = fmt.Errorf("%d dead letters, want %d", len(letters), want)
		}
		return err
	})
	return letters
}

// TestShutdownWithJetStreamUnreachable: JetStream stops answering (its
// connection frozen, not closed) just as the LMS refuses an event for good,
// so the dead letter cannot be written; the dispatcher is stopped then.
// Run returns within a bound all the same (it used to retry the dead letter
// forever), and after JetStream is back a new dispatcher dead-letters the
// event, once.
func TestShutdownWithJetStreamUnreachable(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	px := natstest.NewProxy(t, f.ns.ClientURL())
	lms.setRespond(func(r received) int {
		px.Freeze() // before the answer: what follows it cannot reach JetStream
		return http.StatusUnprocessableEntity
	})
	nc, js, err := natsconn.Connect(px.URL(), natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := runService(t, f, js, false)

	// A body larger than anything else the dispatcher sends: once that many
	// bytes are held, the dead letter is stuck in the frozen connection.
	const big = 32 << 10
	ev := event("lead-z", "lead.created", "conv/z", t0)
	ev.GetLead().Buyer.Name = strings.Repeat("z", big)
	f.publish(ev)
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := px.Held(); n < big {
			return fmt.Errorf("%d bytes held by the frozen connection", n)
		}
		return nil
	})
	r.cancel()
	// recordTimeout for the dead letter, stopTimeout for the lane, and the
	// adapters' close, with room to spare; the old code never returned.
	if err := r.wait(t, recordTimeout+r.s.lanes[0].stopTimeout()+15*time.Second); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// Every step ended by itself: stopTimeout did not have to give up on one.
	for _, e := range r.logs.All() {
		if strings.Contains(e.Message, "at shutdown") || strings.Contains(e.Message, "not stopped in time") {
			t.Fatalf("shutdown gave up waiting: %q", e.Message)
		}
	}

	px.Thaw()
	lms.setRespond(func(received) int { return http.StatusUnprocessableEntity })
	resetGroup(t, f.js) // it could not leave: JetStream was unreachable
	f.start()
	l := deliverLetters(t, f.js, 1)[0]
	if l.Reason != "terminal" || !strings.Contains(string(l.Body), "lead-z") {
		t.Fatalf("dead letter %+v", l)
	}
	kv, err := f.js.KeyValue(context.Background(), streams.DispatchBucket)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		st, _, err := states{kv: kv}.load(context.Background(), stateKey("crm", "conv/z"))
		if err == nil && len(st.Queue) > 0 {
			err = fmt.Errorf("still queued: %v", ids(st.Queue))
		}
		return err
	})
	deliverLetters(t, f.js, 1) // and no second one
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		msgs, _, err := groupBacklog(t, f.js, "crm")
		if err == nil && msgs != 0 {
			err = fmt.Errorf("consumer group: %d messages not acked", msgs)
		}
		return err
	})
}

// TestUndecodableWaitsForDLQ: an EVENTS message that is not an event, with
// DLQ unavailable, is not acked without its dead letter: it comes back,
// and once DLQ is there again it is dead-lettered, once, and acked.
func TestUndecodableWaitsForDLQ(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	r := runService(t, f, f.js, false)
	ctx := context.Background()
	if err := f.js.DeleteStream(ctx, streams.DLQ); err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: streams.EventsSubject("lead", "created", "t1", "agg-1"), Data: []byte("\xff\xff not an event"), Header: nats.Header{}}
	msg.Header.Set(envelope.HdrCESubject, "conv/u")
	ack, err := f.js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		msgs, redelivered, err := groupBacklog(t, f.js, "crm")
		if err != nil {
			return err
		}
		if msgs == 0 {
			return errors.New("acked without its dead letter")
		}
		if redelivered == 0 {
			return errors.New("not redelivered yet")
		}
		return nil
	})
	if n := testutil.ToFloat64(r.s.m.deadLetters.WithLabelValues("crm", "undecodable")); n != 0 {
		t.Fatalf("dead_letters_total{reason=undecodable} = %v while DLQ is gone", n)
	}

	if err := streams.Ensure(ctx, f.js, streams.DLQConfig(f.cfg)); err != nil {
		t.Fatal(err)
	}
	l := deliverLetters(t, f.js, 1)[0]
	if l.Reason != "undecodable" || l.Sequence != ack.Sequence {
		t.Fatalf("dead letter %+v, want undecodable for EVENTS sequence %d", l, ack.Sequence)
	}
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		msgs, _, err := groupBacklog(t, f.js, "crm")
		if err == nil && msgs != 0 {
			err = fmt.Errorf("not acked after its dead letter (%d messages in the group)", msgs)
		}
		return err
	})
	if n := testutil.ToFloat64(r.s.m.deadLetters.WithLabelValues("crm", "undecodable")); n != 1 {
		t.Fatalf("dead_letters_total{reason=undecodable} = %v, want 1", n)
	}
	deliverLetters(t, f.js, 1) // and no second one
}

// TestTerminalWaitsForDLQ: an event the LMS refuses for good, with DLQ
// unavailable, stays queued for DLQ (not for the LMS: it is asked once);
// once DLQ is back it is dead-lettered and what waited behind it goes out.
func TestTerminalWaitsForDLQ(t *testing.T) {
	lms := newFakeLMS(t)
	lms.setRespond(func(r received) int {
		if r.id == "lead-t" {
			return http.StatusUnprocessableEntity
		}
		return http.StatusNoContent
	})
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.cfg.Dispatcher.MaxPark.Duration = time.Hour
	runService(t, f, f.js, false)
	ctx := context.Background()
	if err := f.js.DeleteStream(ctx, streams.DLQ); err != nil {
		t.Fatal(err)
	}
	f.publish(event("lead-t", "lead.created", "conv/t", t0))
	f.publish(event("bid-t", "bid.placed", "conv/t", t0.Add(time.Minute)))
	kv, err := f.js.KeyValue(ctx, streams.DispatchBucket)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		st, _, err := states{kv: kv}.load(ctx, stateKey("crm", "conv/t"))
		if err != nil {
			return err
		}
		if st.Retry == nil || st.Retry.ID != "lead-t" || st.Retry.DeadLetter != "terminal" {
			return fmt.Errorf("retry %+v, want lead-t held for DLQ as terminal", st.Retry)
		}
		return nil
	})
	if got := lms.ids(""); len(got) != 0 {
		t.Fatalf("LMS accepted %v while lead-t waits for DLQ", got)
	}

	if err := streams.Ensure(ctx, f.js, streams.DLQConfig(f.cfg)); err != nil {
		t.Fatal(err)
	}
	l := deliverLetters(t, f.js, 1)[0]
	if l.Reason != "terminal" || l.Attempts != 1 || len(l.Log) != 1 || !strings.Contains(l.Log[0], "422") {
		t.Fatalf("dead letter %+v", l)
	}
	lms.waitFor(1)
	lms.mu.Lock()
	defer lms.mu.Unlock()
	if lms.tries["lead-t"] != 1 {
		t.Fatalf("LMS asked for lead-t %d times, want once", lms.tries["lead-t"])
	}
}

// TestDeletedConsumerIsRecreated: a member's consumer deleted under a
// running dispatcher (pcgroups itself only creates it again on a change of
// the group) is noticed, counted in consumer_errors_total, and consuming
// starts over: later events are delivered.
func TestDeletedConsumerIsRecreated(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.cfg.Dispatcher.AckWait = config.Dur(time.Second)
	r := runService(t, f, f.js, true)
	f.publish(event("lead-d", "lead.created", "conv/d", t0))
	lms.waitFor(1) // consuming
	member := r.s.lanes[0].member
	if err := f.js.DeleteConsumer(context.Background(), GroupStream("crm"), member); err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if n := testutil.ToFloat64(r.s.m.consumerErrors.WithLabelValues("dispatch-crm")); n < 1 {
			return fmt.Errorf("consumer_errors_total{consumer=dispatch-crm} = %v", n)
		}
		return nil
	})
	f.publish(event("lead-e", "lead.created", "conv/e", t0))
	lms.waitFor(2)
}

// TestDeletedGroupEndsRun: a dispatcher whose consumer group is gone, before
// it starts or while it runs, returns an error naming the group, with its
// workers stopped, instead of waiting for messages that never come.
func TestDeletedGroupEndsRun(t *testing.T) {
	for _, whileRunning := range []bool{false, true} {
		t.Run(fmt.Sprint("while running ", whileRunning), func(t *testing.T) {
			lms := newFakeLMS(t)
			f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
			f.provision()
			s, err := New(context.Background(), Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop()})
			if err != nil {
				t.Fatal(err)
			}
			deleteGroup := func() {
				if err := pcgroups.DeleteElastic(context.Background(), f.js, streams.EVENTS, "dispatch-crm"); err != nil {
					t.Fatal(err)
				}
			}
			if !whileRunning {
				deleteGroup()
			}
			done := make(chan error, 1)
			go func() { done <- s.Run(context.Background()) }()
			if whileRunning {
				f.publish(event("lead-g", "lead.created", "conv/g", t0))
				lms.waitFor(1)
				deleteGroup()
			}
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "dispatch-crm") {
					t.Fatalf("Run = %v, want an error naming the group dispatch-crm", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("Run did not return without its consumer group")
			}
		})
	}
}
