package leads

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// State is the merged current state of one aggregate, as stored (JSON) under
// Key(Aggregate) in the bucket.
//
// Every part is a lattice whose join is order-independent: the identity
// strings take the larger value (they are equal for events of one
// aggregate), Status and each Field keep the larger register, Events is a
// set union, FirstAt/LastAt are min/max. Build States with Apply and Merge;
// a State built by hand is fine as long as its strings are valid UTF-8.
type State struct {
	// Aggregate is the aggregate id, e.g. "offerte/lead/12345".
	Aggregate string `json:"aggregate,omitempty"`
	// Tenant owns the aggregate.
	Tenant string `json:"tenant,omitempty"`
	// Source is the webhook source the events arrived at.
	Source string `json:"source,omitempty"`
	// Kind is the aggregate id's middle segment: lead, conversation,
	// transaction, invoice, advertisement, call, enquiry.
	Kind string `json:"kind,omitempty"`
	// Status is the furthest status the aggregate reached; the zero Status
	// when no event carried one (e.g. a conversation of chat messages only).
	Status Status `json:"status,omitzero"`
	// Fields holds the latest value of every typed data field, keyed by its
	// flattened protojson path ("lead.buyer.name", "chatMessage.text").
	Fields map[string]Register `json:"fields,omitempty"`
	// Events are the ids of the merged events, sorted, without duplicates.
	Events []string `json:"events,omitempty"`
	// FirstAt and LastAt are the earliest and latest event time (provider
	// time, else receipt time); zero when no event had a time.
	FirstAt time.Time `json:"firstAt,omitzero"`
	LastAt  time.Time `json:"lastAt,omitzero"`
}

// Status is a rank-ordered register: of two statuses the one with the higher
// Rank wins, then the later At, then the larger Event id, so a status never
// moves backwards whatever the arrival order.
//
// Values and ranks by kind of event:
//   - lead: CREATED 1 < SOLD 2 < INVOICED 3 < PAID 4 (chat messages set none)
//   - transaction: CREATED 1 < PENDING 2 < EXPIRED, CANCELLED, COMPLETED,
//     FAILED 3 < REFUNDED, CHARGEBACK 4 (a change's old status counts too)
//   - invoice: CREATED 1 < PAID 2
//   - advertisement: RECEIVED 1 (a question) < PLACED 2 < CLOSED 3 (bids)
//   - call, enquiry: RECEIVED 1
type Status struct {
	Value string    `json:"value"`
	Rank  int       `json:"rank"`
	At    time.Time `json:"at,omitzero"`
	Event string    `json:"event,omitempty"`
}

// Register is a last-writer-wins register: of two registers the one with the
// later At wins, then the larger Event id (then the larger Value, which only
// matters for malformed input that reuses an event id).
type Register struct {
	Value string    `json:"value"`
	At    time.Time `json:"at,omitzero"`
	Event string    `json:"event,omitempty"`
}

// Merge returns the join of a and b: commutative, associative and
// idempotent. Either may be nil (the empty state); neither is modified.
func Merge(a, b *State) *State {
	if a == nil {
		a = &State{}
	}
	if b == nil {
		b = &State{}
	}
	out := &State{
		Aggregate: max(a.Aggregate, b.Aggregate),
		Tenant:    max(a.Tenant, b.Tenant),
		Source:    max(a.Source, b.Source),
		Kind:      max(a.Kind, b.Kind),
		Status:    maxBy(a.Status, b.Status, compareStatus),
		FirstAt:   minTime(a.FirstAt, b.FirstAt),
		LastAt:    maxTime(a.LastAt, b.LastAt),
	}
	if n := len(a.Fields) + len(b.Fields); n > 0 {
		out.Fields = make(map[string]Register, n)
		for _, fields := range []map[string]Register{a.Fields, b.Fields} {
			for k, r := range fields {
				if cur, ok := out.Fields[k]; ok {
					r = maxBy(cur, r, compareRegister)
				}
				out.Fields[k] = r
			}
		}
	}
	if n := len(a.Events) + len(b.Events); n > 0 {
		ev := make([]string, 0, n)
		ev = append(append(ev, a.Events...), b.Events...)
		slices.Sort(ev)
		out.Events = slices.Compact(ev)
	}
	return out
}

func compareStatus(a, b Status) int {
	return cmp.Or(
		cmp.Compare(a.Rank, b.Rank),
		a.At.Compare(b.At),
		cmp.Compare(a.Event, b.Event),
		cmp.Compare(a.Value, b.Value),
	)
}

func compareRegister(a, b Register) int {
	return cmp.Or(
		a.At.Compare(b.At),
		cmp.Compare(a.Event, b.Event),
		cmp.Compare(a.Value, b.Value),
	)
}

func maxBy[T any](a, b T, compare func(T, T) int) T {
	if compare(b, a) > 0 {
		return b
	}
	return a
}

// minTime is the earlier of two times, a zero time counting as unset.
func minTime(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// maxTime is the later of two times; a zero time is earlier than any other.
func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Marshal encodes s canonically: equal States give equal bytes. Map keys
// are sorted (encoding/json), Events are sorted and deduplicated, times are
// UTC, HTML characters are not escaped and there is no trailing newline. A
// nil s is the empty state.
func Marshal(s *State) ([]byte, error) {
	c := canonical(s)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encoding state of %q: %w", c.Aggregate, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// canonical returns a copy of s with the representation choices that do not
// change its meaning fixed: sorted unique Events, UTC times.
func canonical(s *State) *State {
	if s == nil {
		return &State{}
	}
	c := *s
	c.Status.At = utc(c.Status.At)
	c.FirstAt, c.LastAt = utc(c.FirstAt), utc(c.LastAt)
	if len(c.Fields) > 0 {
		c.Fields = make(map[string]Register, len(s.Fields))
		for k, r := range s.Fields {
			r.At = utc(r.At)
			c.Fields[k] = r
		}
	}
	if len(c.Events) > 0 {
		c.Events = slices.Compact(slices.Sorted(slices.Values(s.Events)))
	}
	return &c
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// Unmarshal decodes a State written by Marshal. It rejects unknown fields:
// a dispatcher that does not know a field written by a newer one must fail
// rather than drop it on its next write.
func Unmarshal(b []byte) (*State, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding state: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decoding state: data after the JSON object")
	}
	return &s, nil
}
