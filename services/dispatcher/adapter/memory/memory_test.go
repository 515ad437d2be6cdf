package memory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/services/dispatcher/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/adapter/adaptertest"
	"github.com/leadstream/leadstream/services/dispatcher/adapter/memory"
)

// TestContract runs the adapter contract with a function as the shim: the
// LMS's outcome becomes the reference error, no transport in between.
func TestContract(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T, lms *adaptertest.LMS) adapter.Adapter {
		return memory.New(memory.Config{
			Receive: func(ctx context.Context, d adapter.Delivery) error {
				body, err := proto.Marshal(d.Event)
				if err != nil {
					t.Errorf("marshalling event: %v", err)
				}
				o := lms.Receive(ctx, adaptertest.Received{
					EventID: d.Event.GetId(),
					Type:    d.Event.GetType(),
					Attempt: d.Attempt,
					Orphan:  d.Orphan,
					Missing: d.Missing,
					Body:    body,
				})
				return o.Err()
			},
		})
	})
}

func TestRecordsAttempts(t *testing.T) {
	fail := errors.New("lms down")
	a := memory.New(memory.Config{
		Receive: func(_ context.Context, d adapter.Delivery) error {
			if d.Attempt == 1 {
				return fail
			}
			return nil
		},
	})
	ctx := context.Background()
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	ev := adaptertest.Event("evt-1")
	if err := a.Deliver(ctx, &adapter.Delivery{Event: ev, Attempt: 1}); !errors.Is(err, fail) {
		t.Fatalf("first attempt: got %v, want the scripted failure", err)
	}
	missing := []string{"lead.sold"}
	if err := a.Deliver(ctx, &adapter.Delivery{Event: ev, Attempt: 2, Orphan: true, Missing: missing}); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	ev.Type = "changed.after.delivery"
	missing[0] = "changed.after.delivery"

	attempts := a.Attempts()
	if len(attempts) != 2 || !errors.Is(attempts[0].Err, fail) || attempts[1].Err != nil {
		t.Fatalf("attempts = %+v, want a failure then a success", attempts)
	}
	if d := attempts[1].Delivery; !d.Orphan || d.Attempt != 2 || len(d.Missing) != 1 || d.Missing[0] != "lead.sold" {
		t.Errorf("second attempt recorded as %+v, want attempt 2, orphan, missing lead.sold as it was when delivered", d)
	}
	delivered := a.Delivered()
	if len(delivered) != 1 || delivered[0].GetType() != "lead.created" {
		t.Errorf("Delivered = %v, want the one lead.created, as it was when delivered", delivered)
	}
}

func TestWait(t *testing.T) {
	a := memory.New(memory.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		for _, id := range []string{"a", "b", "c"} {
			_ = a.Deliver(ctx, &adapter.Delivery{Event: adaptertest.Event(id), Attempt: 1})
		}
	}()
	if err := a.Wait(ctx, func(at []memory.Attempt) bool { return len(at) == 3 }); err != nil {
		t.Fatalf("Wait for three attempts: %v", err)
	}
	if got := len(a.Delivered()); got != 3 {
		t.Errorf("Delivered %d events, want 3", got)
	}

	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := a.Wait(short, func(at []memory.Attempt) bool { return len(at) == 4 }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait for an attempt that never comes returned %v, want DeadlineExceeded", err)
	}
}

func TestDeliverWithoutEventIsTerminal(t *testing.T) {
	a := memory.New(memory.Config{})
	if err := a.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.Deliver(context.Background(), &adapter.Delivery{Attempt: 1}); !adapter.IsTerminal(err) {
		t.Errorf("Deliver without an event returned %v, want a terminal error", err)
	}
}
