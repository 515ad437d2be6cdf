// Package adaptertest is the contract every LMS adapter keeps, written as
// tests (like watermill's tests.TestPubSub): an adapter's own test calls Run
// with a Factory, and the suite checks delivery, the retryable/terminal
// classification of failures, timeouts, concurrency and the lifecycle
// against a fake LMS it scripts.
//
// The suite is transport-agnostic: the fake LMS (LMS) speaks in outcomes,
// and the Factory puts a shim in front of it in the adapter's own transport
// (an httptest.Server for the webhook adapter, a function for the in-memory
// one). A new adapter that passes Run can be plugged into the dispatcher.
package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
)

// bound is how long the suite waits for anything that should happen: far
// beyond what a healthy adapter needs, so a slow machine never fails a test.
const bound = 10 * time.Second

// prompt is how soon Deliver must return once its context ends. It is well
// below an adapter's own default timeout, so an adapter that ignores its
// context and waits for its own timeout fails.
const prompt = 3 * time.Second

// attemptTimeout is the delivery timeout the suite's callers set.
const attemptTimeout = 300 * time.Millisecond

// Factory builds the adapter under test, not yet connected, delivering to
// lms through the adapter's transport: its shim hands every attempt to
// lms.Receive and acts out the Outcome. The adapter keeps its default
// timeouts (longer than 3s). Factory is called once per test case, from
// parallel tests; it registers the cleanup of what it starts with t.Cleanup.
type Factory func(t *testing.T, lms *LMS) adapter.Adapter

// Run runs the adapter contract against the adapters f builds. Beyond
// adapter.Adapter's doc, it holds an adapter to what the dispatcher relies
// on: one Deliver is one attempt at the LMS (no retries of its own, so the
// dispatcher's attempt count is true); the event id, the orphan marker with
// what the orphan is missing, and the LMS's Retry-After reach their
// destination unchanged on every attempt; Deliver leaves the event as it
// was; a failure because ctx ended wraps ctx's error; deliveries run in
// parallel; Close turns new deliveries away at once, waits for those in
// flight and, when its own ctx ends first, abandons them with an error
// wrapping context.Canceled and returns an error.
func Run(t *testing.T, f Factory) { RunWith(t, f, Options{}) }

// Options adapt the contract to what a transport can carry.
type Options struct {
	// NoRetryAfter is for a transport with no retry hint in its answers
	// (JetStream's PubAck has none): an LMS's answer with a Retry-After must
	// then still be a retryable failure, without a hint. Default false: the
	// hint must reach the dispatcher.
	NoRetryAfter bool
}

// RunWith is Run with the contract adapted by o.
func RunWith(t *testing.T, f Factory, o Options) {
	t.Run("Delivery", func(t *testing.T) { t.Parallel(); testDelivery(t, f) })
	t.Run("OrphanAndAttempt", func(t *testing.T) { t.Parallel(); testOrphanAndAttempt(t, f) })
	t.Run("Redelivery", func(t *testing.T) { t.Parallel(); testRedelivery(t, f) })
	t.Run("Failures", func(t *testing.T) { t.Parallel(); testFailures(t, f, o) })
	t.Run("Timeout", func(t *testing.T) { t.Parallel(); testTimeout(t, f) })
	t.Run("Cancel", func(t *testing.T) { t.Parallel(); testCancel(t, f) })
	t.Run("Parallel", func(t *testing.T) { t.Parallel(); testParallel(t, f) })
	t.Run("Concurrent", func(t *testing.T) { t.Parallel(); testConcurrent(t, f) })
	t.Run("DeliverBeforeConnect", func(t *testing.T) { t.Parallel(); testDeliverBeforeConnect(t, f) })
	t.Run("DeliverAfterClose", func(t *testing.T) { t.Parallel(); testDeliverAfterClose(t, f) })
	t.Run("CloseWaitsForInFlight", func(t *testing.T) { t.Parallel(); testCloseWaits(t, f) })
	t.Run("CloseAbandonsWhenItsContextEnds", func(t *testing.T) { t.Parallel(); testCloseAbandons(t, f) })
}

// eventID returns a distinct, UUID-shaped event id.
func eventID(n int) string { return fmt.Sprintf("00000000-0000-5000-8000-%012d", n) }

// connected builds and connects an adapter. At the end of the test it
// releases the LMS first, so that Close never waits on a held attempt.
func connected(t *testing.T, f Factory) (adapter.Adapter, *LMS) {
	t.Helper()
	lms := NewLMS(t)
	a := f(t, lms)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := a.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		lms.Close()
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		_ = a.Close(ctx) // some tests close it themselves; a second Close is not their subject
	})
	return a, lms
}

// deliverAsync starts a delivery and returns where its result will arrive.
func deliverAsync(ctx context.Context, a adapter.Adapter, d *adapter.Delivery) <-chan error {
	done := make(chan error, 1)
	go func() { done <- a.Deliver(ctx, d) }()
	return done
}

// await returns the error from done, failing the test if none arrives within.
func await(t *testing.T, done <-chan error, within time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("%s did not return within %s", what, within)
		return nil
	}
}

// checkRetryable fails the test unless err is a retryable delivery failure.
func checkRetryable(t *testing.T, err error, what string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s: Deliver returned nil, want a retryable error", what)
	case adapter.IsTerminal(err):
		t.Fatalf("%s: Deliver returned a terminal error, want a retryable one: %v", what, err)
	case errors.Is(err, adapter.ErrNotConnected):
		t.Fatalf("%s: Deliver returned ErrNotConnected, want a delivery failure: %v", what, err)
	}
}

func testDelivery(t *testing.T, f Factory) {
	a, lms := connected(t, f)
	ev := Event(eventID(1))
	if err := a.Deliver(context.Background(), &adapter.Delivery{Event: ev, Attempt: 1}); err != nil {
		t.Fatalf("Deliver to an accepting LMS: %v", err)
	}
	got := lms.Received()
	if len(got) != 1 {
		t.Fatalf("LMS received %d attempts, want 1", len(got))
	}
	r := got[0]
	if r.EventID != ev.Id || r.Type != ev.Type {
		t.Errorf("LMS received event %q of type %q, want %q of type %q", r.EventID, r.Type, ev.Id, ev.Type)
	}
	if r.Attempt != 1 || r.Orphan || len(r.Missing) != 0 {
		t.Errorf("LMS received attempt %d, orphan %v, missing %q; want attempt 1, not an orphan, nothing missing", r.Attempt, r.Orphan, r.Missing)
	}
	if len(r.Body) == 0 {
		t.Error("LMS received an empty body")
	}
	// The dispatcher may hold on to the event (to dead-letter it, say).
	if !proto.Equal(ev, Event(eventID(1))) {
		t.Error("Deliver modified the event")
	}
}

// testOrphanAndAttempt: an orphan reaches the LMS marked, with what it went
// without, so that the LMS can tell a lead paid before it was invoiced from
// one paid after.
func testOrphanAndAttempt(t *testing.T, f Factory) {
	a, lms := connected(t, f)
	ev := Event(eventID(2))
	ev.Type = "lead.paid"
	missing := []string{"lead.invoiced", "transaction.status_changed=PENDING"}
	if err := a.Deliver(context.Background(), &adapter.Delivery{Event: ev, Attempt: 3, Orphan: true, Missing: missing}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := lms.Received()
	if len(got) != 1 || got[0].EventID != ev.Id || got[0].Attempt != 3 || !got[0].Orphan || !slices.Equal(got[0].Missing, missing) {
		t.Fatalf("LMS received %+v, want one attempt of %s with attempt 3, orphan, missing %q", got, ev.Id, missing)
	}
}

// testRedelivery checks the idempotency key: a retry carries the same event
// id, which is all the LMS has to drop the duplicate.
func testRedelivery(t *testing.T, f Factory) {
	a, lms := connected(t, f)
	lms.Respond(func(n int) Outcome {
		if n == 1 {
			return Answer(http.StatusServiceUnavailable)
		}
		return Accept()
	})
	ev := Event(eventID(3))
	checkRetryable(t, a.Deliver(context.Background(), &adapter.Delivery{Event: ev, Attempt: 1}), "first attempt, LMS answers 503")
	if err := a.Deliver(context.Background(), &adapter.Delivery{Event: ev, Attempt: 2}); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	got := lms.Received()
	if len(got) != 2 {
		t.Fatalf("LMS received %d attempts, want 2", len(got))
	}
	for i, r := range got {
		if r.EventID != ev.Id || r.Attempt != i+1 {
			t.Errorf("attempt %d arrived as event %q attempt %d, want %q attempt %d", i+1, r.EventID, r.Attempt, ev.Id, i+1)
		}
	}
}

func testFailures(t *testing.T, f Factory, o Options) {
	tests := []struct {
		name      string
		outcome   Outcome
		terminal  bool
		wantAfter time.Duration
	}{
		{name: "408", outcome: Answer(http.StatusRequestTimeout)},
		{name: "429", outcome: Answer(http.StatusTooManyRequests)},
		{name: "429 with Retry-After", outcome: Outcome{Status: http.StatusTooManyRequests, RetryAfter: 7 * time.Second}, wantAfter: 7 * time.Second},
		{name: "500", outcome: Answer(http.StatusInternalServerError)},
		{name: "502", outcome: Answer(http.StatusBadGateway)},
		{name: "503", outcome: Answer(http.StatusServiceUnavailable)},
		{name: "503 with Retry-After", outcome: Outcome{Status: http.StatusServiceUnavailable, RetryAfter: 2 * time.Minute}, wantAfter: 2 * time.Minute},
		{name: "504", outcome: Answer(http.StatusGatewayTimeout)},
		{name: "disconnect", outcome: Disconnect()},
		{name: "400", outcome: Answer(http.StatusBadRequest), terminal: true},
		{name: "401", outcome: Answer(http.StatusUnauthorized), terminal: true},
		{name: "403", outcome: Answer(http.StatusForbidden), terminal: true},
		{name: "404", outcome: Answer(http.StatusNotFound), terminal: true},
		{name: "409", outcome: Answer(http.StatusConflict), terminal: true},
		{name: "410", outcome: Answer(http.StatusGone), terminal: true},
		{name: "413", outcome: Answer(http.StatusRequestEntityTooLarge), terminal: true},
		{name: "422", outcome: Answer(http.StatusUnprocessableEntity), terminal: true},
	}
	for i, tt := range tests {
		if o.NoRetryAfter {
			tt.wantAfter = 0
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, lms := connected(t, f)
			lms.Respond(func(int) Outcome { return tt.outcome })
			err := a.Deliver(context.Background(), &adapter.Delivery{Event: Event(eventID(100 + i)), Attempt: 1})
			if tt.terminal {
				if !adapter.IsTerminal(err) {
					t.Fatalf("Deliver returned %v, want an error wrapping ErrTerminal", err)
				}
			} else {
				checkRetryable(t, err, tt.name)
			}
			after, ok := adapter.RetryAfter(err)
			if tt.wantAfter == 0 && ok {
				t.Errorf("RetryAfter = %s, want no hint (the LMS gave none, or the transport carries none)", after)
			}
			if tt.wantAfter != 0 && (!ok || after != tt.wantAfter) {
				t.Errorf("RetryAfter = %s, %v; want %s, true", after, ok, tt.wantAfter)
			}
			// The dispatcher counts and records attempts: an adapter must not
			// retry on its own.
			if n := len(lms.Received()); n != 1 {
				t.Errorf("LMS received %d attempts for one Deliver, want 1", n)
			}
		})
	}
}

// testTimeout: an LMS that never answers costs an attempt its timeout, not
// the adapter's whole default timeout.
func testTimeout(t *testing.T, f Factory) {
	a, lms := connected(t, f)
	lms.Respond(func(int) Outcome { return Hang() })
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	done := deliverAsync(ctx, a, &adapter.Delivery{Event: Event(eventID(4)), Attempt: 1})
	err := await(t, done, attemptTimeout+prompt, "Deliver to a hanging LMS")
	checkRetryable(t, err, "hanging LMS")
	// The dispatcher tells a slow LMS from its own shutdown by the cause.
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Deliver past its deadline returned %v, want it to wrap context.DeadlineExceeded", err)
	}
	if n := len(lms.Received()); n != 1 {
		t.Errorf("LMS received %d attempts, want 1", n)
	}
}

// testCancel: a dispatcher shutting down cancels its deliveries and must not
// wait for the LMS.
func testCancel(t *testing.T, f Factory) {
	a, lms := connected(t, f)
	lms.Respond(func(int) Outcome { return Hang() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := deliverAsync(ctx, a, &adapter.Delivery{Event: Event(eventID(5)), Attempt: 1})
	lms.WaitReceived(t, 1)
	cancel()
	err := await(t, done, prompt, "Deliver after its context was cancelled")
	checkRetryable(t, err, "cancelled delivery")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Deliver returned %v, want it to wrap context.Canceled", err)
	}
}

// testParallel: deliveries of different aggregates run at once, so one slow
// answer never holds up the others. The LMS answers none until all have
// arrived.
func testParallel(t *testing.T, f Factory) {
	const n = 4
	a, lms := connected(t, f)
	all := make(chan struct{})
	lms.Respond(func(k int) Outcome {
		if k == n {
			close(all)
		}
		return Outcome{Hold: all}
	})
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var dones []<-chan error
	for i := range n {
		dones = append(dones, deliverAsync(ctx, a, &adapter.Delivery{Event: Event(eventID(200 + i)), Attempt: 1}))
	}
	for i, done := range dones {
		if err := await(t, done, 2*bound, "parallel Deliver"); err != nil {
			t.Errorf("delivery %d: %v (were the deliveries serialised? the LMS answers once all %d are in)", i, err, n)
		}
	}
}

// testConcurrent delivers many events from many goroutines (run it with
// -race): every one arrives exactly once.
func testConcurrent(t *testing.T, f Factory) {
	const workers, each = 8, 8
	a, lms := connected(t, f)
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				ctx, cancel := context.WithTimeout(context.Background(), bound)
				err := a.Deliver(ctx, &adapter.Delivery{Event: Event(eventID(1000 + w*each + i)), Attempt: 1})
				cancel()
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Deliver: %v", err)
	}
	seen := map[string]int{}
	for _, r := range lms.Received() {
		seen[r.EventID]++
	}
	for i := range workers * each {
		if id := eventID(1000 + i); seen[id] != 1 {
			t.Errorf("event %s arrived %d times, want once", id, seen[id])
		}
	}
	if len(seen) != workers*each {
		t.Errorf("LMS received %d distinct events, want %d", len(seen), workers*each)
	}
}

func testDeliverBeforeConnect(t *testing.T, f Factory) {
	lms := NewLMS(t)
	a := f(t, lms)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		_ = a.Close(ctx)
	})
	err := a.Deliver(context.Background(), &adapter.Delivery{Event: Event(eventID(6)), Attempt: 1})
	if !errors.Is(err, adapter.ErrNotConnected) {
		t.Fatalf("Deliver before Connect returned %v, want ErrNotConnected", err)
	}
	if n := len(lms.Received()); n != 0 {
		t.Errorf("LMS received %d attempts before Connect, want 0", n)
	}
}

func testDeliverAfterClose(t *testing.T, f Factory) {
	a, lms := connected(t, f)
	if err := a.Deliver(context.Background(), &adapter.Delivery{Event: Event(eventID(7)), Attempt: 1}); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close with nothing in flight: %v", err)
	}
	err := a.Deliver(context.Background(), &adapter.Delivery{Event: Event(eventID(8)), Attempt: 1})
	if !errors.Is(err, adapter.ErrNotConnected) {
		t.Fatalf("Deliver after Close returned %v, want ErrNotConnected", err)
	}
	if n := len(lms.Received()); n != 1 {
		t.Errorf("LMS received %d attempts, want only the one before Close", n)
	}
}

// testCloseWaits: on SIGTERM the dispatcher closes its adapters; a delivery
// the LMS is working on must be allowed to finish, or it would be sent again.
func testCloseWaits(t *testing.T, f Factory) {
	a, lms := connected(t, f)
	release := make(chan struct{})
	lms.Respond(func(n int) Outcome {
		if n == 1 {
			return Outcome{Hold: release}
		}
		return Accept()
	})
	inFlight := deliverAsync(context.Background(), a, &adapter.Delivery{Event: Event(eventID(9)), Attempt: 1})
	lms.WaitReceived(t, 1)

	closeCtx, cancel := context.WithTimeout(context.Background(), 2*bound)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- a.Close(closeCtx) }()

	// Close turns new deliveries away at once, while it waits.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(bound)
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		err := a.Deliver(ctx, &adapter.Delivery{Event: Event(eventID(300 + i)), Attempt: 1})
		cancel()
		if errors.Is(err, adapter.ErrNotConnected) {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("Deliver still returns %v %s after Close began, want ErrNotConnected", err, bound)
		}
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a delivery was in flight", err)
	default:
	}

	close(release)
	if err := await(t, inFlight, bound, "the in-flight Deliver"); err != nil {
		t.Errorf("in-flight delivery, accepted by the LMS during Close: %v", err)
	}
	if err := await(t, closed, bound, "Close"); err != nil {
		t.Errorf("Close after the in-flight delivery finished: %v", err)
	}
}

// testCloseAbandons: Close's context bounds the drain; deliveries still in
// flight then fail as retryable, so the dispatcher redelivers them later.
func testCloseAbandons(t *testing.T, f Factory) {
	a, lms := connected(t, f)
	lms.Respond(func(int) Outcome { return Hang() })
	inFlight := deliverAsync(context.Background(), a, &adapter.Delivery{Event: Event(eventID(10)), Attempt: 1})
	lms.WaitReceived(t, 1)

	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- a.Close(ctx) }()
	if err := await(t, closed, attemptTimeout+prompt, "Close with a hanging delivery"); err == nil {
		t.Error("Close returned nil although it abandoned a delivery in flight")
	}
	err := await(t, inFlight, prompt, "the abandoned Deliver")
	checkRetryable(t, err, "delivery abandoned by Close")
	// Like a shutdown: not the LMS's fault, so no breaker or attempt count.
	if !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned Deliver returned %v, want it to wrap context.Canceled", err)
	}
}
