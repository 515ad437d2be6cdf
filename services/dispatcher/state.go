package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/services/dispatcher/internal/kvcas"
)

// aggState is one adapter's ordering state for one aggregate, kept in the
// dispatch bucket so that it survives restarts: what has been established
// (facts), the events waiting (queue: parked, or next in line), and the
// delivery being retried, which holds back the rest of its aggregate.
type aggState struct {
	// Aggregate is the aggregate id, kept only when the key is a hash of it
	// (see stateKey): the sweep cannot read it back from such a key.
	Aggregate string   `json:"aggregate,omitempty"`
	Facts     []string `json:"facts,omitempty"`
	Delivered []string `json:"delivered,omitempty"`
	Queue     []*entry `json:"queue,omitempty"`
	Retry     *retry   `json:"retry,omitempty"`
	// Overflow, once the queue was full, is where the aggregate's later
	// events wait: in EVENTS (overflow.go).
	Overflow *overflow `json:"overflow,omitempty"`
	// MaxSeq is the highest EVENTS sequence admitted into Queue: an
	// overflow starts above it, so that nothing admitted is read back.
	MaxSeq uint64 `json:"max_seq,omitempty"`
}

// entry is a waiting event, by its EVENTS sequence.
type entry struct {
	ID       string    `json:"id"`
	Seq      uint64    `json:"seq"`
	Type     string    `json:"type"`
	Requires []string  `json:"requires,omitempty"`
	Provides []string  `json:"provides,omitempty"`
	Since    time.Time `json:"since"`
}

// retry is the delivery in progress of one queued event.
type retry struct {
	ID       string    `json:"id"`
	Attempts int       `json:"attempts"`
	First    time.Time `json:"first"`
	// At is when the last attempt failed: an LMS that took a delivery
	// since has recovered (recovery.go), and Next need not be waited for.
	At   time.Time `json:"at,omitzero"`
	Next time.Time `json:"next"`
	Log  []string  `json:"log,omitempty"`
	// DeadLetter is the reason of a dead letter DLQ did not take: at Next
	// the event goes to DLQ with it and Error, not to the LMS again.
	DeadLetter string `json:"dead_letter,omitempty"`
	Error      string `json:"error,omitempty"`
}

// maxDelivered bounds the ids remembered per aggregate to drop a
// redelivered EVENTS message instead of delivering it twice.
const maxDelivered = 64

// maxLog bounds the attempt outcomes kept for a dead letter.
const maxLog = 50

// clone returns a copy of st whose slices can be changed without changing
// st's (entries and the retry are shared: they are replaced, never changed
// in place).
func (st *aggState) clone() *aggState {
	c := *st
	c.Facts = slices.Clone(st.Facts)
	c.Delivered = slices.Clone(st.Delivered)
	c.Queue = slices.Clone(st.Queue)
	return &c
}

// has reports whether event id is queued in st or was done with lately.
func (st *aggState) has(id string) bool {
	return st.index(id) >= 0 || slices.Contains(st.Delivered, id)
}

func (st *aggState) satisfied(e *entry) bool {
	for _, f := range e.Requires {
		if !slices.Contains(st.Facts, f) {
			return false
		}
	}
	return true
}

func (st *aggState) index(id string) int {
	return slices.IndexFunc(st.Queue, func(e *entry) bool { return e.ID == id })
}

// next is the entry to deliver now, and whether it goes as an orphan: the
// retrying one if any (it holds back its aggregate), else the first whose
// prerequisites are established, else an orphan: the first that waited
// maxPark, unless what it waits for is queued too. Then that goes first,
// once it waited maxPark itself (a lead.paid that arrived before a
// lead.invoiced, which waits for a lead.sold that never comes, goes out
// after the lead.invoiced, not before it).
func (st *aggState) next(now time.Time, maxPark time.Duration) (*entry, bool) {
	if st.Retry != nil {
		if i := st.index(st.Retry.ID); i >= 0 {
			e := st.Queue[i]
			return e, !st.satisfied(e)
		}
	}
	for _, e := range st.Queue {
		if st.satisfied(e) {
			return e, false
		}
	}
	for _, e := range st.Queue {
		if now.Sub(e.Since) < maxPark {
			continue
		}
		if r := st.root(e); now.Sub(r.Since) >= maxPark {
			return r, true
		}
	}
	return nil, false
}

// due is when the aggregate has to be pumped next: now when next has an
// entry for it (and no retry waits) or events may wait in EVENTS to be read
// back (overflow.go), else the retry's time, else the
// earliest time one of its parked entries (and what it waits behind) has
// waited maxPark. False when nothing is queued.
func (st *aggState) due(now time.Time, maxPark time.Duration) (time.Time, bool) {
	if st.Overflow != nil && len(st.Queue) < refillBelow() && (st.Retry == nil || !st.Retry.Next.After(now)) {
		return now, true // events may wait in EVENTS: the pump looks
	}
	if len(st.Queue) == 0 {
		return time.Time{}, false
	}
	if st.Retry != nil && st.index(st.Retry.ID) >= 0 {
		if st.Retry.Next.After(now) {
			return st.Retry.Next, true
		}
		return now, true
	}
	if e, _ := st.next(now, maxPark); e != nil {
		return now, true
	}
	var due time.Time
	for _, e := range st.Queue {
		since := e.Since
		if r := st.root(e); r.Since.After(since) {
			since = r.Since
		}
		if at := since.Add(maxPark); due.IsZero() || at.Before(due) {
			due = at
		}
	}
	return due, true
}

// root follows what e misses to the queued entries that would establish
// it, and those entries' own misses, to the first that waits for nothing
// queued: what has to go out before e for the aggregate's order to hold.
// Chains in the data may loop (a transaction back to a status it had), so
// each entry is followed once.
func (st *aggState) root(e *entry) *entry {
	seen := map[string]bool{e.ID: true}
	for {
		var p *entry
		for _, f := range missing(st, e) {
			i := slices.IndexFunc(st.Queue, func(q *entry) bool { return !seen[q.ID] && slices.Contains(q.Provides, f) })
			if i >= 0 {
				p = st.Queue[i]
				break
			}
		}
		if p == nil {
			return e
		}
		seen[p.ID] = true
		e = p
	}
}

// done removes entry id after its delivery (or dead-lettering) and, when
// delivered, records what it established.
func (st *aggState) done(id string, delivered bool) {
	i := st.index(id)
	if i < 0 {
		return
	}
	e := st.Queue[i]
	st.Queue = slices.Delete(st.Queue, i, i+1)
	if st.Retry != nil && st.Retry.ID == id {
		st.Retry = nil
	}
	if delivered {
		for _, f := range e.Provides {
			if !slices.Contains(st.Facts, f) {
				st.Facts = append(st.Facts, f)
			}
		}
		slices.Sort(st.Facts)
	}
	st.Delivered = append(st.Delivered, id)
	if len(st.Delivered) > maxDelivered {
		st.Delivered = st.Delivered[len(st.Delivered)-maxDelivered:]
	}
}

// stateKey is the dispatch bucket key of an adapter's aggregate: aggregate
// ids carry payload characters, so they are base64url-encoded. One too long
// for a key (natskey.MaxKeyLen: a longer one would make nats-server close
// the connection) is replaced by "=" and its hex SHA-256, which no
// base64url text starts with; shorter keys are as they always were, so
// stored state is found.
func stateKey(adapter, aggregate string) string {
	if k := adapter + "." + base64.RawURLEncoding.EncodeToString([]byte(aggregate)); len(k) <= natskey.MaxKeyLen {
		return k
	}
	sum := sha256.Sum256([]byte(aggregate))
	return adapter + "." + hashedKeyMark + hex.EncodeToString(sum[:])
}

// hashedKeyMark starts the aggregate part of a hashed state key.
const hashedKeyMark = "="

// hashedKey reports whether key is the hash of its aggregate rather than
// its encoding.
func hashedKey(key, adapter string) bool {
	return strings.HasPrefix(key, adapter+"."+hashedKeyMark)
}

// aggregateOf reads the aggregate back from a key; a hashed key gives
// false (its state keeps the aggregate itself).
func aggregateOf(key, adapter string) (string, bool) {
	if len(key) <= len(adapter)+1 || key[:len(adapter)+1] != adapter+"." || hashedKey(key, adapter) {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(key[len(adapter)+1:])
	return string(b), err == nil
}

// states reads and writes aggStates with compare-and-set, so that two
// dispatcher instances of one adapter never lose each other's updates.
type states struct {
	kv jetstream.KeyValue
}

func (s states) load(ctx context.Context, key string) (*aggState, uint64, error) {
	if err := natskey.CheckKey(key); err != nil {
		return nil, 0, fmt.Errorf("reading ordering state: %w", err)
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &aggState{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading ordering state: %w", err)
	}
	st := &aggState{}
	if err := json.Unmarshal(e.Value(), st); err != nil {
		return nil, 0, fmt.Errorf("decoding ordering state %s: %w", key, err)
	}
	return st, e.Revision(), nil
}

// put stores st under key if the key is still at revision rev (0: if it
// does not exist), and returns the new revision. A write that lost to
// another writer returns an error for which kvcas.Conflict is true.
func (s states) put(ctx context.Context, key string, st *aggState, rev uint64) (uint64, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("encoding ordering state %s: %w", key, err)
	}
	if rev == 0 {
		rev, err = s.kv.Create(ctx, key, data)
	} else {
		rev, err = s.kv.Update(ctx, key, data, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("writing ordering state %s: %w", key, err)
	}
	return rev, nil
}

// update applies f to the current state and stores the result; f returns
// false when it changed nothing. On a concurrent write it starts over, a
// bounded number of times (kvcas.Update): past that it returns an error
// wrapping kvcas.ErrContention, which the caller retries later.
func (s states) update(ctx context.Context, key string, f func(*aggState) bool) (*aggState, error) {
	if err := natskey.CheckKey(key); err != nil {
		return nil, fmt.Errorf("writing ordering state: %w", err)
	}
	var st *aggState
	_, err := kvcas.Update(ctx, s.kv, key, func(cur []byte) ([]byte, bool, error) {
		st = &aggState{}
		if cur != nil {
			if err := json.Unmarshal(cur, st); err != nil {
				return nil, false, fmt.Errorf("decoding ordering state %s: %w", key, err)
			}
		}
		if !f(st) {
			return nil, false, nil
		}
		data, err := json.Marshal(st)
		return data, true, err
	})
	if err != nil {
		return nil, fmt.Errorf("writing ordering state: %w", err)
	}
	return st, nil
}
