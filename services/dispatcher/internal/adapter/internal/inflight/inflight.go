// Package inflight keeps the lifecycle every adapter shares: no delivery
// before Connect or after Close, and a Close that lets the deliveries in
// flight finish (or abandons them when its context ends), so that each
// adapter does not get this subtle bookkeeping wrong in its own way.
package inflight

import (
	"context"
	"fmt"
	"sync"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
)

// ErrAbandoned is the cause of a delivery's context when Close gave up
// waiting for it. It wraps context.Canceled: like a cancellation by the
// caller, it says nothing about the LMS's health.
var ErrAbandoned = fmt.Errorf("adapter closed before the LMS answered: %w", context.Canceled)

type state int

const (
	stateNew state = iota
	stateOpen
	stateClosed
)

// Group counts the deliveries in flight through one adapter. The zero value
// is ready to use: not yet open.
type Group struct {
	mu      sync.Mutex
	state   state
	wg      sync.WaitGroup
	abandon context.Context
	cancel  context.CancelCauseFunc
}

// Open lets deliveries in (Connect). It fails once the group is closed:
// an adapter is not reused after Close.
func (g *Group) Open() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case stateClosed:
		return fmt.Errorf("%w: already closed", adapter.ErrNotConnected)
	case stateNew:
		g.abandon, g.cancel = context.WithCancelCause(context.Background())
		g.state = stateOpen
	}
	return nil
}

// Enter admits one delivery. It returns the context the delivery must use
// (ctx, also cancelled with ErrAbandoned when Close stops waiting) and a
// function to call when the delivery is over. Before Open and after Close it
// returns adapter.ErrNotConnected.
func (g *Group) Enter(ctx context.Context) (context.Context, func(), error) {
	g.mu.Lock()
	if g.state != stateOpen {
		g.mu.Unlock()
		return nil, nil, adapter.ErrNotConnected
	}
	// Add under the lock that Close takes to change state: no Add can then
	// race with Close's Wait.
	g.wg.Add(1)
	abandon := g.abandon
	g.mu.Unlock()

	dctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(abandon, func() { cancel(context.Cause(abandon)) })
	return dctx, func() {
		stop()
		cancel(context.Canceled)
		g.wg.Done()
	}, nil
}

// Close turns new deliveries away and waits for those in flight. When ctx
// ends first, it cancels them with ErrAbandoned (a retryable failure: the
// dispatcher redelivers them later), waits for them to return and reports
// ctx's error. Closing again, or closing a group never opened, returns nil.
func (g *Group) Close(ctx context.Context) error {
	g.mu.Lock()
	g.state = stateClosed
	cancel := g.cancel
	g.mu.Unlock()
	if cancel == nil {
		return nil
	}

	idle := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(idle)
	}()
	select {
	case <-idle:
		cancel(context.Canceled)
		return nil
	case <-ctx.Done():
		cancel(ErrAbandoned)
		<-idle
		return fmt.Errorf("closing: abandoned the deliveries still in flight: %w", ctx.Err())
	}
}
