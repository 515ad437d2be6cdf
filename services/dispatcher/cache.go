package dispatcher

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// A lane keeps, for the aggregates it is working on, their ordering state
// as it last read or wrote it (with its revision), and the events it holds:
// admitted in memory but not yet written to the bucket, their group
// messages not yet acked. That saves, per delivery, the reads of the
// state before admitting, before delivering and before recording (each a
// request to the bucket's leader), the admission's own write (the record
// writes the event and its delivery at once), and reading the event back
// from EVENTS (a held event's body is at hand).
//
// Every write is still a compare-and-set on the revision the lane knows:
// when another writer got there first (a member that has not noticed that
// it lost the partition, a `dlq replay`), the write fails, the lane reads
// the state again and starts over. And a state is trusted for a delivery
// decision only for stateFresh after it was read or written: a member
// paused long enough to lose its partitions finds every state it knew
// stale when it resumes, and reads it again before it delivers, as it
// always did.
//
// A held event's message stays unacked until a write holds the event, so
// a crash before that write loses nothing: the message comes back to the
// member that takes the partition (delivered again only if it had gone
// out, as a delivery in flight always could be). Events are held only
// while that is cheap and safe: the aggregate is deliverable here, the
// event's prerequisites are established, no retry holds the aggregate
// back, and not for longer than holdFor; everything else is admitted at
// once, as before.

// stateFresh is how long a state read from or written to the bucket is
// trusted for deciding what to deliver. It is well below the shortest
// time in which another member can take a partition over from a live one
// that does not say so (a member is removed as dead after three looks,
// reapEvery apart).
const stateFresh = 2 * time.Second

// maxHeld bounds the events held per aggregate: more are admitted at once.
const maxHeld = 32

// held is an event admitted in memory only: its message is acked once a
// write of the ordering state holds it.
type held struct {
	e  *entry
	m  jetstream.Msg
	ev *leadstreamv1.Event
	// at is when it was held (the process's clock): after holdFor it is
	// written whatever happens to its aggregate.
	at time.Time
}

// aggMem is what a lane knows in memory of one aggregate. mu serializes
// the lane's reads, changes and writes of its state.
type aggMem struct {
	mu  sync.Mutex
	agg string
	key string
	// st is the state at revision rev (0: no key yet), as last read or
	// written at read; nil when not known. It is replaced, never changed
	// in place.
	st   *aggState
	rev  uint64
	read time.Time
	// held are the events admitted here and not yet written, in arrival
	// order: they come after st's queue.
	held []*held
	// heldSince is when the oldest held event was held, in Unix
	// nanoseconds, 0 when none is: read without mu by the flusher.
	heldSince atomic.Int64
	// stale is set when someone else may have written the state (a wake
	// from `dlq replay`, a sweep that read a later revision, a change of
	// partitions): the next look reads it again.
	stale atomic.Bool
	// evicted is set when the cache dropped it: a goroutine that still
	// has it looks it up again.
	evicted bool
	// unread is the highest EVENTS sequence admitted into the state's
	// overflow: until it is read back, the pump looks again
	// (overflowRetry).
	unread uint64
}

// fresh reports whether st can be trusted now.
func (am *aggMem) fresh(now time.Time) bool {
	return am.st != nil && !am.stale.Load() && now.Sub(am.read) < stateFresh
}

// set records st at revision rev as read or written at now.
func (am *aggMem) set(st *aggState, rev uint64, now time.Time) {
	am.st, am.rev, am.read = st, rev, now
	am.stale.Store(false)
}

// view is the state with the held events at the end of its queue: what
// the lane delivers from. It shares st's parts; it is only read.
func (am *aggMem) view() *aggState {
	if len(am.held) == 0 {
		return am.st
	}
	v := *am.st
	v.Queue = make([]*entry, 0, len(am.st.Queue)+len(am.held))
	v.Queue = append(v.Queue, am.st.Queue...)
	for _, h := range am.held {
		v.Queue = append(v.Queue, h.e)
	}
	return &v
}

// heldFor returns the held event with id id, or nil.
func (am *aggMem) heldFor(id string) *held {
	for _, h := range am.held {
		if h.e.ID == id {
			return h
		}
	}
	return nil
}

// hold adds h to the held events.
func (am *aggMem) hold(h *held) {
	am.held = append(am.held, h)
	if len(am.held) == 1 {
		am.heldSince.Store(h.at.UnixNano())
	}
}

// release drops hs from the held events (they were written, or will never
// be).
func (am *aggMem) release(hs []*held) {
	am.held = slices.DeleteFunc(am.held, func(h *held) bool { return slices.Contains(hs, h) })
	if len(am.held) == 0 {
		am.heldSince.Store(0)
	} else {
		am.heldSince.Store(am.held[0].at.UnixNano())
	}
}

// aggCache holds a lane's aggMems by aggregate.
type aggCache struct {
	mu sync.Mutex
	m  map[string]*aggMem
}

func newAggCache() *aggCache { return &aggCache{m: map[string]*aggMem{}} }

// lock returns agg's aggMem, made if needed, with its mu held.
func (c *aggCache) lock(agg, key string) *aggMem {
	for {
		c.mu.Lock()
		am := c.m[agg]
		if am == nil {
			am = &aggMem{agg: agg, key: key}
			c.m[agg] = am
		}
		c.mu.Unlock()
		am.mu.Lock()
		if !am.evicted {
			return am
		}
		am.mu.Unlock()
	}
}

// peek returns agg's aggMem if the cache has one, without locking it.
func (c *aggCache) peek(agg string) *aggMem {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[agg]
}

// holding returns the aggMems that hold events since before t (all that
// hold any when t is zero).
func (c *aggCache) holding(t time.Time) []*aggMem {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*aggMem
	for _, am := range c.m {
		if since := am.heldSince.Load(); since != 0 && (t.IsZero() || since < t.UnixNano()) {
			out = append(out, am)
		}
	}
	return out
}

// staleAll marks every state stale: the partitions moved, and what this
// process knew of an aggregate it owned before may be old.
func (c *aggCache) staleAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, am := range c.m {
		am.stale.Store(true)
	}
}

// evict drops the aggMems that hold nothing, are not in use, and whose
// state is no longer fresh (it would be read again anyway): the cache
// holds the aggregates of the last few seconds only.
func (c *aggCache) evict(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for agg, am := range c.m {
		if am.heldSince.Load() != 0 || !am.mu.TryLock() {
			continue
		}
		if len(am.held) == 0 && !am.fresh(now) {
			am.evicted = true
			delete(c.m, agg)
		}
		am.mu.Unlock()
	}
}
