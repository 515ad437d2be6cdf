package leads

import "errors"

var (
	// ErrNoAggregate is returned by Store.Apply for an event without an
	// aggregate id: there is no key to store it under.
	ErrNoAggregate = errors.New("leads: event has no aggregate id")
	// ErrNotFound is returned by Store.Get when no state matches.
	ErrNotFound = errors.New("leads: no state for aggregate")
	// ErrAmbiguous is returned by Store.Get when a bare id matches the keys
	// of several aggregates (e.g. a lead and an invoice both numbered 5551).
	ErrAmbiguous = errors.New("leads: id matches several aggregates")
	// ErrContention is returned by Store.Apply when its compare-and-set lost
	// to other writers on every attempt; the caller retries later.
	ErrContention = errors.New("leads: too many concurrent updates of one key")
)
