package dispatcher

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// TestEventMissing: an event that left EVENTS while its delivery was being
// retried (purged here, aged out in life) is dead-lettered as
// event_missing; one that is only not yet on the replica asked is retried
// instead (mayLag), which the cluster test exercises.
func TestEventMissing(t *testing.T) {
	lms := newFakeLMS(t)
	var purged atomic.Bool
	lms.setRespond(func(received) int {
		if purged.Load() {
			return http.StatusNoContent
		}
		return http.StatusServiceUnavailable
	})
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, "max_attempts: 1000, max_age: 1h"))
	f.start()
	f.publish(event("lead-1", "lead.created", "conv/1", t0))
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		lms.mu.Lock()
		defer lms.mu.Unlock()
		if lms.tries["lead-1"] < 2 {
			return fmt.Errorf("LMS tried lead-1 %d times, want a retry going on", lms.tries["lead-1"])
		}
		return nil
	})
	ev, err := f.js.Stream(context.Background(), streams.EVENTS)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	purged.Store(true)
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		letters, err := dlq.List(context.Background(), f.js, dlq.Filter{Stage: dlq.StageDeliver})
		if err != nil {
			return err
		}
		if len(letters) != 1 || letters[0].Reason != "event_missing" || letters[0].Sequence != 1 {
			return fmt.Errorf("dead letters %+v, want one event_missing for EVENTS #1", letters)
		}
		return nil
	})
	if got := lms.received(); len(got) != 0 {
		t.Fatalf("LMS accepted %v, want nothing: the event is gone", got)
	}
}
