package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/adaptertest"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// checkFor polls f every few milliseconds until it returns true, failing
// the test after total.
func checkFor(t *testing.T, total time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(total)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, total)
		}
		<-tick.C
	}
}

func TestBreakerOpensAndHalfOpens(t *testing.T) {
	const cooldown = 200 * time.Millisecond
	rec, srv := newRecorder(t)
	rec.answer(http.StatusServiceUnavailable, "down for maintenance")
	a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{webhook.GenerateSecret()}, BreakerFailures: 3, BreakerCooldown: cooldown})

	for i := range 3 {
		err := deliver(a, "evt-b", i+1)
		var se *webhook.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
			t.Fatalf("delivery %d: %v, want the LMS's 503", i+1, err)
		}
	}
	if got := a.BreakerState(); got != "open" {
		t.Fatalf("after 3 failures in a row the breaker is %s, want open", got)
	}

	// Open: fail fast, with the rest of the cool-down as the hint.
	err := deliver(a, "evt-b", 4)
	if !errors.Is(err, webhook.ErrBreakerOpen) || adapter.IsTerminal(err) {
		t.Fatalf("Deliver with the breaker open: %v, want a retryable ErrBreakerOpen", err)
	}
	if after, ok := adapter.RetryAfter(err); !ok || after <= 0 || after > cooldown {
		t.Errorf("RetryAfter = %s, %v; want the rest of the %s cool-down", after, ok, cooldown)
	}
	if n := len(rec.got()); n != 3 {
		t.Fatalf("server got %d requests, want 3: an open breaker sends nothing", n)
	}

	// After the cool-down one probe goes through; it fails, so the breaker
	// opens again.
	checkFor(t, bound, "breaker half-open after its cool-down", func() bool { return a.BreakerState() == "half-open" })
	if err := deliver(a, "evt-b", 5); errors.Is(err, webhook.ErrBreakerOpen) {
		t.Fatalf("the half-open breaker refused the probe: %v", err)
	}
	if n := len(rec.got()); n != 4 {
		t.Fatalf("server got %d requests, want 4 (the probe)", n)
	}
	if got := a.BreakerState(); got != "open" {
		t.Fatalf("after a failed probe the breaker is %s, want open", got)
	}
	if err := deliver(a, "evt-b", 6); !errors.Is(err, webhook.ErrBreakerOpen) {
		t.Fatalf("Deliver after a failed probe: %v, want ErrBreakerOpen", err)
	}

	// The LMS is back: the next probe succeeds and closes the breaker.
	rec.answer(http.StatusNoContent, "")
	checkFor(t, bound, "breaker half-open again", func() bool { return a.BreakerState() == "half-open" })
	if err := deliver(a, "evt-b", 7); err != nil {
		t.Fatalf("probe to a recovered LMS: %v", err)
	}
	if got := a.BreakerState(); got != "closed" {
		t.Errorf("after a successful probe the breaker is %s, want closed", got)
	}
	for i := range 3 {
		if err := deliver(a, "evt-c", i+1); err != nil {
			t.Errorf("delivery after recovery: %v", err)
		}
	}
	if n := len(rec.got()); n != 8 {
		t.Errorf("server got %d requests, want 8", n)
	}
}

// TestBreakerIgnoresRejections: a 4xx proves the LMS is up; it neither
// counts as a failure nor lets earlier failures add up across it.
func TestBreakerIgnoresRejections(t *testing.T) {
	rec, srv := newRecorder(t)
	a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{webhook.GenerateSecret()}, BreakerFailures: 3, BreakerCooldown: time.Minute})

	rec.answer(http.StatusUnprocessableEntity, "")
	for i := range 10 {
		if err := deliver(a, "evt-r", i+1); !adapter.IsTerminal(err) {
			t.Fatalf("delivery %d: %v, want terminal", i+1, err)
		}
	}
	for _, status := range []int{503, 503, 422, 503, 503} {
		rec.answer(status, "")
		_ = deliver(a, "evt-r", 1)
	}
	if got := a.BreakerState(); got != "closed" {
		t.Fatalf("breaker %s after 10 rejections and no 3 failures in a row, want closed", got)
	}
	if n := len(rec.got()); n != 15 {
		t.Fatalf("server got %d requests, want all 15", n)
	}
	_ = deliver(a, "evt-r", 1) // the third 503 in a row
	if got := a.BreakerState(); got != "open" {
		t.Errorf("breaker %s after 3 failures in a row, want open", got)
	}
}

// TestBreakerTimeouts: an LMS that does not answer in time counts as
// failing; a caller that cancels (shutdown) says nothing about the LMS.
func TestBreakerTimeouts(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{webhook.GenerateSecret()}, BreakerFailures: 2, BreakerCooldown: time.Minute})

	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Deliver(ctx, &adapter.Delivery{Event: adaptertest.Event("evt-t"), Attempt: 1}) }()
		<-arrived
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled delivery: %v, want context.Canceled", err)
		}
	}
	if got := a.BreakerState(); got != "closed" {
		t.Fatalf("breaker %s after 3 cancelled deliveries, want closed", got)
	}

	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err := a.Deliver(ctx, &adapter.Delivery{Event: adaptertest.Event("evt-t"), Attempt: 1})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("timed-out delivery: %v, want DeadlineExceeded", err)
		}
	}
	if got := a.BreakerState(); got != "open" {
		t.Errorf("breaker %s after 2 timeouts in a row, want open", got)
	}
}
