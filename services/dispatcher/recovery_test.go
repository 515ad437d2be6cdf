package dispatcher

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leadstream/leadstream/pkg/natstest"
)

// TestRecoveryWakesBackingOff: heads backing off for an hour go out as
// soon as the LMS takes a delivery again, not when their timers come.
func TestRecoveryWakesBackingOff(t *testing.T) {
	lms := newFakeLMS(t)
	var down atomic.Bool
	down.Store(true)
	lms.setRespond(func(received) int {
		if down.Load() {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, "max_attempts: 1000, max_age: 2h, backoff_initial: 1h, backoff_max: 1h, breaker_failures: 1000"))
	s, _ := f.start()
	for i := range 3 {
		f.publish(event(fmt.Sprint("l", i), "lead.created", fmt.Sprint("lead/", i), t0))
	}
	// All three have failed and wait an hour for their next attempt.
	natstest.CheckFor(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := testutil.ToFloat64(s.m.deliveries.WithLabelValues("crm", "retry")); n < 3 {
			return fmt.Errorf("%v retries recorded, want 3", n)
		}
		return nil
	})
	down.Store(false)
	f.publish(event("l3", "lead.created", "lead/3", t0)) // the LMS's first success since
	lms.waitFor(4)
	for i := range 3 {
		if got := lms.ids(fmt.Sprint("lead/", i)); len(got) != 1 {
			t.Errorf("lead/%d delivered as %v, want once", i, got)
		}
	}
}
