// Package memory is an adapter that delivers into the process itself: it
// records every attempt and lets a test script the LMS's answers. The
// dispatcher's tests use it as their LMS; it also passes the adapter
// contract suite, which shows that suite is not tied to HTTP.
package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/protobuf/proto"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/adapter/internal/inflight"
)

// Config configures an Adapter.
type Config struct {
	// Receive stands in for the LMS: it is called for every delivery attempt,
	// with the attempt's context, and its error is what Deliver returns. A
	// test scripts failures with it: adapter.Terminal(err) for a rejection, a
	// *adapter.RetryError for throttling, any other error for an outage. It
	// may be called concurrently and must return when ctx ends. Default:
	// accept every delivery.
	Receive func(ctx context.Context, d adapter.Delivery) error
}

func (c *Config) setDefaults() {
	if c.Receive == nil {
		c.Receive = func(context.Context, adapter.Delivery) error { return nil }
	}
}

// Attempt is one delivery attempt and what came of it.
type Attempt struct {
	// Delivery is a copy of the delivery, its event cloned.
	Delivery adapter.Delivery
	// Err is what Deliver returned; nil means the event was delivered.
	Err error
}

// Adapter is the in-memory adapter. Its zero value is not usable: call New.
type Adapter struct {
	cfg   Config
	group inflight.Group

	mu       sync.Mutex
	attempts []Attempt
	changed  chan struct{} // closed and replaced whenever an attempt is recorded
}

var _ adapter.Adapter = (*Adapter)(nil)

// New returns an adapter that hands deliveries to cfg.Receive.
func New(cfg Config) *Adapter {
	cfg.setDefaults()
	return &Adapter{cfg: cfg, changed: make(chan struct{})}
}

// Connect lets deliveries through. It fails only after Close.
func (a *Adapter) Connect(context.Context) error {
	if err := a.group.Open(); err != nil {
		return fmt.Errorf("memory: connect: %w", err)
	}
	return nil
}

// Deliver hands d to Receive and records the attempt. Before Connect and
// after Close it returns an error wrapping adapter.ErrNotConnected and
// records nothing.
func (a *Adapter) Deliver(ctx context.Context, d *adapter.Delivery) error {
	ctx, done, err := a.group.Enter(ctx)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	defer done()
	if d == nil || d.Event == nil {
		return adapter.Terminal(errors.New("memory: delivery without an event"))
	}

	// Clone: the record must not change when the caller reuses the event.
	rec := adapter.Delivery{Event: proto.Clone(d.Event).(*leadstreamv1.Event), Orphan: d.Orphan, Missing: slices.Clone(d.Missing), Attempt: d.Attempt}
	err = a.cfg.Receive(ctx, rec)
	if err != nil && ctx.Err() != nil {
		// Name the cause (the caller's deadline, or Close giving up) rather
		// than whatever Receive made of it.
		err = fmt.Errorf("memory: delivery of %s abandoned: %w (%w)", d.Event.GetId(), context.Cause(ctx), err)
	}
	a.mu.Lock()
	a.attempts = append(a.attempts, Attempt{Delivery: rec, Err: err})
	close(a.changed)
	a.changed = make(chan struct{})
	a.mu.Unlock()
	return err
}

// Close turns new deliveries away and waits for those in flight; when ctx
// ends first, it cancels them and returns ctx's error.
func (a *Adapter) Close(ctx context.Context) error {
	if err := a.group.Close(ctx); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	return nil
}

// Attempts returns every attempt so far, in the order they finished.
func (a *Adapter) Attempts() []Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Attempt(nil), a.attempts...)
}

// Delivered returns the events delivered successfully, in the order they
// were accepted: what an LMS would have stored.
func (a *Adapter) Delivered() []*leadstreamv1.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var evs []*leadstreamv1.Event
	for _, at := range a.attempts {
		if at.Err == nil {
			evs = append(evs, at.Delivery.Event)
		}
	}
	return evs
}

// Wait blocks until done, called with the attempts so far after every new
// one, returns true, or until ctx ends (then it returns ctx's error). It
// lets a test wait for an outcome without polling.
func (a *Adapter) Wait(ctx context.Context, done func([]Attempt) bool) error {
	for {
		a.mu.Lock()
		attempts, changed := append([]Attempt(nil), a.attempts...), a.changed
		a.mu.Unlock()
		if done(attempts) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("memory: waiting for attempts (%d so far): %w", len(attempts), ctx.Err())
		}
	}
}
