package dispatcher

import (
	"sync"
	"time"
)

// recovery shortens the wait of the aggregates whose heads are backing off
// once their LMS takes a delivery again. Backoff grows to backoff_max
// (minutes) while an LMS is down; without this, a backlog would start to
// drain only when each head's own timer came round, long after the LMS was
// back. The first delivery that succeeds after failures wakes every
// aggregate this process saw fail since, and their next attempts go out at
// once (the circuit breaker has let that first one through, so the LMS is
// taking deliveries). What another process recorded, before a restart or
// a handover, waits for its timer as before.
type recovery struct {
	mu      sync.Mutex
	failing bool
	at      time.Time           // the last recovery
	waiting map[string]struct{} // aggregates that failed since
}

func newRecovery() *recovery { return &recovery{waiting: map[string]struct{}{}} }

// failed notes that a delivery of agg failed and will be retried.
func (r *recovery) failed(agg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failing = true
	r.waiting[agg] = struct{}{}
}

// delivered notes that a delivery of agg went through at now. When it is
// the first after failures, it returns the aggregates to wake.
func (r *recovery) delivered(agg string, now time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, agg)
	if !r.failing {
		return nil
	}
	r.failing, r.at = false, now
	wake := make([]string, 0, len(r.waiting))
	for a := range r.waiting {
		wake = append(wake, a)
	}
	clear(r.waiting)
	return wake
}

// forget drops agg, whose head is gone (dead-lettered).
func (r *recovery) forget(agg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiting, agg)
}

// since reports whether the LMS recovered after a failure at t: a retry
// recorded then need not wait for its time.
func (r *recovery) since(t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.at.After(t)
}
