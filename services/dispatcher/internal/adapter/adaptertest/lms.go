package adaptertest

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Outcome is what the fake LMS does with one delivery attempt. It speaks in
// HTTP status codes because that is the vocabulary of LMS APIs; a shim for
// another transport maps the classes onto its own (2xx accepted; 408, 429 and
// 5xx worth retrying; any other 4xx rejected for good).
type Outcome struct {
	// Status is the LMS's answer. Zero means 204 No Content.
	Status int
	// RetryAfter is the LMS's hint of when to try again (an HTTP
	// Retry-After). Use whole seconds: that is what HTTP carries.
	RetryAfter time.Duration
	// Disconnect cuts the connection without an answer: a network error.
	Disconnect bool
	// Hold delays the answer until Hold is closed. An attempt the adapter
	// abandons meanwhile (its context ends) gets no answer (Disconnect); one
	// still held when the LMS closes is released with a 503.
	Hold <-chan struct{}
}

// never is a Hold that is never released.
var never = make(chan struct{})

// Accept is the outcome of an LMS that takes the event.
func Accept() Outcome { return Outcome{} }

// Answer is the outcome of an LMS that answers status.
func Answer(status int) Outcome { return Outcome{Status: status} }

// Disconnect is the outcome of an LMS whose connection breaks mid-request.
func Disconnect() Outcome { return Outcome{Disconnect: true} }

// Hang is the outcome of an LMS that takes the request and never answers.
func Hang() Outcome { return Outcome{Hold: never} }

// StatusCode is the HTTP status the outcome answers with.
func (o Outcome) StatusCode() int {
	if o.Status == 0 {
		return http.StatusNoContent
	}
	return o.Status
}

// Received is one delivery attempt as the LMS saw it, translated by the
// adapter's shim from whatever its transport carries.
type Received struct {
	// EventID is the idempotency key the LMS got (webhook-id, ...).
	EventID string
	// Type is the event type.
	Type string
	// Attempt is the attempt number the adapter passed on.
	Attempt int
	// Orphan is the orphan marker the adapter passed on.
	Orphan bool
	// Missing is what the adapter passed on of Delivery.Missing, in order.
	Missing []string
	// Body is the payload as sent, for the adapter's own tests.
	Body []byte
}

// LMS is the suite's scriptable fake lead management system. An adapter's
// shim (an httptest.Server for the webhook adapter, a function for an
// in-process one) hands every attempt to Receive and answers as told.
type LMS struct {
	mu       sync.Mutex
	respond  func(n int) Outcome
	received []Received
	arrived  chan struct{} // closed and replaced on every arrival
	closed   chan struct{}
	once     sync.Once
}

// NewLMS returns an LMS that accepts everything until told otherwise. It is
// closed when the test ends, so no shim stays blocked in a held answer.
func NewLMS(tb testing.TB) *LMS {
	l := &LMS{
		respond: func(int) Outcome { return Accept() },
		arrived: make(chan struct{}),
		closed:  make(chan struct{}),
	}
	tb.Cleanup(l.Close)
	return l
}

// Respond scripts the LMS: f decides the outcome of the n-th attempt to
// arrive, counting from 1 over the LMS's life.
func (l *LMS) Respond(f func(n int) Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.respond = f
}

// Receive records an attempt and returns the outcome its shim must act out.
// A held outcome blocks until released, until ctx (the attempt as the shim
// sees it) ends or until the LMS closes.
func (l *LMS) Receive(ctx context.Context, r Received) Outcome {
	l.mu.Lock()
	l.received = append(l.received, r)
	n := len(l.received)
	respond := l.respond
	close(l.arrived)
	l.arrived = make(chan struct{})
	l.mu.Unlock()

	o := respond(n)
	if o.Hold != nil {
		select {
		case <-o.Hold:
		case <-ctx.Done():
			return Disconnect()
		case <-l.closed:
			return Answer(http.StatusServiceUnavailable)
		}
	}
	return o
}

// Received returns the attempts that arrived so far, in order.
func (l *LMS) Received() []Received {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Received(nil), l.received...)
}

// WaitReceived waits until at least n attempts have arrived and returns
// them; it fails the test if they do not arrive within the suite's bound.
func (l *LMS) WaitReceived(tb testing.TB, n int) []Received {
	tb.Helper()
	timeout := time.NewTimer(bound)
	defer timeout.Stop()
	for {
		l.mu.Lock()
		got, arrived := len(l.received), l.arrived
		l.mu.Unlock()
		if got >= n {
			return l.Received()
		}
		select {
		case <-arrived:
		case <-timeout.C:
			tb.Fatalf("LMS received %d attempts within %s, want %d", got, bound, n)
		}
	}
}

// Close releases every held attempt (with a 503). Closing twice is harmless.
func (l *LMS) Close() { l.once.Do(func() { close(l.closed) }) }
