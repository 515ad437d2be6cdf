// Package adapter is the contract between the dispatcher and a downstream
// lead management system (LMS): small enough that an integration is an
// afternoon's work. An adapter delivers one event at a time and says, by
// its error, whether a failure is worth retrying.
package adapter

import (
	"context"
	"errors"
	"fmt"
	"time"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// Delivery is one event to hand to an LMS.
type Delivery struct {
	// Event is the normalized event; Event.Id is the idempotency key the
	// LMS sees on every attempt (webhook-id for the webhook adapter).
	Event *leadstreamv1.Event
	// Orphan marks an event delivered without its causal prerequisite
	// (e.g. a chat message whose lead never came) after max_park.
	Orphan bool
	// Missing names what an orphan goes out without: the facts its causal
	// prerequisites would have established ("lead.invoiced",
	// "transaction.status_changed=PENDING"). Empty unless Orphan.
	Missing []string
	// Attempt counts attempts at this delivery, from 1.
	Attempt int
}

// Adapter delivers events to one LMS.
//
// Lifecycle: Connect once before the first Deliver; Deliver may be called
// concurrently; Close once, after which Deliver returns ErrNotConnected.
type Adapter interface {
	// Connect prepares the adapter (clients, credentials). It returns an
	// error only for configuration that can never work.
	Connect(ctx context.Context) error
	// Deliver hands d to the LMS and returns nil once the LMS accepted it.
	// A failure worth retrying returns an error (optionally a *RetryError
	// with the LMS's Retry-After); a failure no retry can cure returns an
	// error wrapping ErrTerminal. Before Connect or after Close it returns
	// ErrNotConnected. ctx carries the delivery timeout.
	Deliver(ctx context.Context, d *Delivery) error
	// Close releases the adapter; in-flight deliveries may finish first.
	Close(ctx context.Context) error
}

var (
	// ErrTerminal marks a delivery failure no retry can cure (e.g. the LMS
	// answered 400 or 422): the event goes to the dead-letter queue at once.
	ErrTerminal = errors.New("adapter: terminal delivery failure")
	// ErrNotConnected is returned by Deliver before Connect or after Close.
	ErrNotConnected = errors.New("adapter: not connected")
)

// RetryError is a retryable failure with the LMS's own hint of when to try
// again (an HTTP Retry-After); the dispatcher waits at least After.
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryError) Unwrap() error { return e.Err }

// Detailer is implemented by errors that know more than they should say in
// a log line (an LMS's answer, say): Detail goes into the dead letter's
// attempt log only.
type Detailer interface {
	Detail() string
}

// Detail returns err's Detail when an error in its chain has one, else
// err.Error().
func Detail(err error) string {
	var d Detailer
	if errors.As(err, &d) {
		return d.Detail()
	}
	return err.Error()
}

// Terminal wraps err as a terminal failure.
func Terminal(err error) error { return fmt.Errorf("%w: %w", ErrTerminal, err) }

// IsTerminal reports whether err is a terminal failure.
func IsTerminal(err error) bool { return errors.Is(err, ErrTerminal) }

// RetryAfter returns the LMS's retry hint carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var re *RetryError
	if errors.As(err, &re) && re.After > 0 {
		return re.After, true
	}
	return 0, false
}
