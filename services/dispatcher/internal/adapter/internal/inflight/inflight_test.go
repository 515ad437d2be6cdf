package inflight

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
)

func TestLifecycle(t *testing.T) {
	var g Group
	if _, _, err := g.Enter(context.Background()); !errors.Is(err, adapter.ErrNotConnected) {
		t.Fatalf("Enter before Open: %v, want ErrNotConnected", err)
	}
	if err := g.Open(); err != nil {
		t.Fatal(err)
	}
	if err := g.Open(); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	_, done, err := g.Enter(context.Background())
	if err != nil {
		t.Fatalf("Enter after Open: %v", err)
	}
	done()
	if err := g.Close(context.Background()); err != nil {
		t.Fatalf("Close with nothing in flight: %v", err)
	}
	if _, _, err := g.Enter(context.Background()); !errors.Is(err, adapter.ErrNotConnected) {
		t.Fatalf("Enter after Close: %v, want ErrNotConnected", err)
	}
	if err := g.Open(); !errors.Is(err, adapter.ErrNotConnected) {
		t.Fatalf("Open after Close: %v, want ErrNotConnected", err)
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseNeverOpened(t *testing.T) {
	var g Group
	if err := g.Close(context.Background()); err != nil {
		t.Fatalf("Close of a group never opened: %v", err)
	}
}

func TestCloseWaitsThenAbandons(t *testing.T) {
	var g Group
	if err := g.Open(); err != nil {
		t.Fatal(err)
	}
	caller, cancelCaller := context.WithCancel(context.Background())
	defer cancelCaller()
	ctx, done, err := g.Enter(caller)
	if err != nil {
		t.Fatal(err)
	}
	// The delivery gives up as soon as its context ends, as a transport does.
	finished := make(chan struct{})
	go func() {
		<-ctx.Done()
		done()
		close(finished)
	}()

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = g.Close(short)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close past its deadline: %v, want DeadlineExceeded", err)
	}
	select {
	case <-finished:
	default:
		t.Fatal("Close returned before the abandoned delivery did")
	}
	cause := context.Cause(ctx)
	if !errors.Is(cause, ErrAbandoned) || !errors.Is(cause, context.Canceled) {
		t.Errorf("abandoned delivery's cause = %v, want ErrAbandoned, a context.Canceled", cause)
	}
	if caller.Err() != nil {
		t.Error("Close cancelled the caller's own context")
	}
}

func TestCallerContextReachesDelivery(t *testing.T) {
	var g Group
	if err := g.Open(); err != nil {
		t.Fatal(err)
	}
	caller, cancelCaller := context.WithCancel(context.Background())
	ctx, done, err := g.Enter(caller)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	cancelCaller()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the caller's cancellation did not reach the delivery's context")
	}
	if !errors.Is(context.Cause(ctx), context.Canceled) || errors.Is(context.Cause(ctx), ErrAbandoned) {
		t.Errorf("cause = %v, want the caller's context.Canceled", context.Cause(ctx))
	}
}
