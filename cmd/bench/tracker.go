package main

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
)

// tracker matches the edge's 202s with the LMS's deliveries by event id
// (the webhook-id).
type tracker struct {
	mu sync.Mutex
	// open holds accepted events not delivered yet: when they were sent.
	open map[string]time.Time
	// early holds deliveries seen before their 202 was read.
	early map[string]time.Time
	// seen holds every delivered id, for duplicates.
	seen map[string]struct{}
	// window, when set, says which send times' latencies are kept in
	// latency.
	window  func(time.Time) bool
	latency *benchkit.Latency

	nAccepted, nDelivered, dups atomic.Int64
	failed                      atomic.Int64
}

func newTracker() *tracker {
	return &tracker{open: map[string]time.Time{}, early: map[string]time.Time{}, seen: map[string]struct{}{}}
}

// accepted records the edge's 202 for id, sent at sent.
func (t *tracker) accepted(id string, sent time.Time) {
	t.nAccepted.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.early[id]; ok {
		delete(t.early, id)
		t.keep(sent, at.Sub(sent))
		return
	}
	t.open[id] = sent
}

// delivered records the LMS's 2xx for id at at.
func (t *tracker) delivered(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.seen[id]; ok {
		t.dups.Add(1)
		return
	}
	t.seen[id] = struct{}{}
	t.nDelivered.Add(1)
	if sent, ok := t.open[id]; ok {
		delete(t.open, id)
		t.keep(sent, at.Sub(sent))
		return
	}
	t.early[id] = at
}

func (t *tracker) keep(sent time.Time, d time.Duration) {
	if t.window != nil && t.window(sent) {
		t.latency.Record(d)
	}
}

// backlog is accepted events the LMS has not received yet.
func (t *tracker) backlog() int64 { return t.nAccepted.Load() - t.nDelivered.Load() }

// measureFrom starts keeping the latencies of events sent in [from, until).
func (t *tracker) measureFrom(from, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latency = benchkit.NewLatency()
	t.window = func(s time.Time) bool { return !s.Before(from) && s.Before(until) }
}

// takeLatency stops keeping latencies and returns those kept.
func (t *tracker) takeLatency() *benchkit.Latency {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.latency
	t.latency, t.window = nil, nil
	return l
}

// fakeLMS answers every delivery 204 at once, or 503 while down, and tells
// the tracker what it accepted. It checks no signature: that is an LMS's
// work, not the pipeline's.
type fakeLMS struct {
	srv   *http.Server
	url   string
	down  atomic.Bool
	track *tracker
	// refused counts deliveries answered 503.
	refused atomic.Int64
}

func newFakeLMS() (*fakeLMS, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &fakeLMS{url: "http://" + ln.Addr().String() + "/events"}
	l.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if l.down.Load() {
			l.refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		l.track.delivered(r.Header.Get("webhook-id"), time.Now())
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = l.srv.Serve(ln) }()
	return l, nil
}

func (l *fakeLMS) close() { _ = l.srv.Close() }
