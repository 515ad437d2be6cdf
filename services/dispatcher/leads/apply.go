package leads

import (
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// Apply returns s with ev merged in: Merge(s, the state of ev alone). It is
// pure (s is not modified; nil is the empty state) and never fails: an
// event with fields it does not understand contributes what it can.
//
// The event's time is its occurred_at, else its received_at (Lokalebasen
// sends no time of its own); an invalid timestamp counts as unset. That
// time orders the event's field values against other events' and its
// status against statuses of equal rank.
func Apply(s *State, ev *leadstreamv1.Event) *State {
	return Merge(s, eventState(ev))
}

// eventState is the state of one event on its own.
func eventState(ev *leadstreamv1.Event) *State {
	if ev == nil {
		return nil
	}
	// Strings are made valid UTF-8 here, where they enter the state, because
	// JSON would replace invalid bytes on the way to the bucket: a state
	// compared in memory and the same state read back must order alike.
	agg := validUTF8(ev.GetAggregateId())
	id := validUTF8(ev.GetId())
	at := eventTime(ev)
	s := &State{
		Aggregate: agg,
		Tenant:    validUTF8(ev.GetTenant()),
		Source:    validUTF8(ev.GetSource()),
		Kind:      kindOf(agg),
		FirstAt:   at,
		LastAt:    at,
	}
	if id != "" {
		s.Events = []string{id}
	}
	for _, st := range statuses(ev) {
		st.At, st.Event = at, id
		s.Status = maxBy(s.Status, st, compareStatus)
	}
	if fields := flatten(ev); len(fields) > 0 {
		s.Fields = make(map[string]Register, len(fields))
		for k, v := range fields {
			s.Fields[k] = Register{Value: v, At: at, Event: id}
		}
	}
	return s
}

func eventTime(ev *leadstreamv1.Event) time.Time {
	for _, ts := range []*timestamppb.Timestamp{ev.GetOccurredAt(), ev.GetReceivedAt()} {
		if ts != nil && ts.CheckValid() == nil {
			return ts.AsTime()
		}
	}
	return time.Time{}
}

// kindOf is the middle segment of "<source>/<kind>/<id>", or "" for an id of
// another shape.
func kindOf(aggregate string) string {
	parts := strings.SplitN(aggregate, "/", 3)
	if len(parts) < 3 {
		return ""
	}
	return parts[1]
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
