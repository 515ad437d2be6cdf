package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/normalizer"
)

// Bounds of a search: it lists the newest matching events, at most
// maxLimit, and reads at most maxScan messages of EVENTS back from the end
// (or from the `to` time), so that a page never reads the whole stream. A
// search that stops there says so; a time range reaches further back.
const (
	defaultLimit = 50
	maxLimit     = 500
	maxScan      = 200_000
	firstWindow  = 1024
)

// eventQuery is the event list's search: every field given must match.
type eventQuery struct {
	// ID is a leadstream event id (the 202's id, the LMS's webhook-id).
	ID string
	// ProviderID is the provider's own event id.
	ProviderID string
	// Aggregate is an aggregate id ("offerte/lead/12345").
	Aggregate string
	// Type is "lead.created", "lead.*" or "lead".
	Type string
	// Tenant is a tenant name.
	Tenant string
	// From and To bound the time the event was stored in EVENTS; zero is
	// open.
	From, To time.Time
	Limit    int
}

// eventRow is one event of the list: ids and names only, nothing personal.
type eventRow struct {
	Seq             uint64
	ID              string
	Type            string
	Tenant          string
	Source          string
	ProviderEventID string
	Aggregate       string
	Occurred        time.Time
	Stored          time.Time
}

// eventResult is a search's answer: the newest matches first, and how far
// back it looked.
type eventResult struct {
	Rows []eventRow
	// Scanned is how many stream sequences the search covered; Complete
	// means it reached the start of EVENTS (or From), so there are no older
	// matches.
	Scanned  uint64
	Complete bool
	// OldestScanned is the time of the oldest message looked at.
	OldestScanned time.Time
	// ByID: found by its id in the dedupe bucket, without a scan.
	ByID bool
}

var (
	typePart  = regexp.MustCompile(`^[a-z_]+$`)
	tenantTok = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
)

// errBadQuery is a search field that cannot be a subject token or a time.
var errBadQuery = errors.New("bad search")

// parseEventQuery reads the search form.
func parseEventQuery(r *http.Request) (eventQuery, error) {
	get := func(k string) string { return strings.TrimSpace(r.URL.Query().Get(k)) }
	q := eventQuery{ID: get("id"), ProviderID: get("provider_id"), Aggregate: get("aggregate"), Type: get("type"), Tenant: get("tenant"), Limit: defaultLimit}
	var errs []error
	if q.Type != "" {
		kind, action, _ := strings.Cut(q.Type, ".")
		if !typePart.MatchString(kind) || (action != "" && action != "*" && !typePart.MatchString(action)) {
			errs = append(errs, fmt.Errorf("%w: type %q: want <kind>.<action>, <kind>.* or <kind> (lead.created, lead.*, lead)", errBadQuery, q.Type))
		}
	}
	if q.Tenant != "" && !tenantTok.MatchString(q.Tenant) {
		errs = append(errs, fmt.Errorf("%w: tenant %q: want a tenant name as in the config", errBadQuery, q.Tenant))
	}
	for _, f := range []struct {
		name string
		t    *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := get(f.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %s %q: want RFC 3339 (2026-11-20T10:15:00Z) or 2026-11-20T10:15 (UTC)", errBadQuery, f.name, v))
			}
			*f.t = t
		}
	}
	if v := get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("%w: limit %q", errBadQuery, v))
		}
		q.Limit = min(max(n, 1), maxLimit)
	}
	return q, errors.Join(errs...)
}

// parseTime takes RFC 3339, or what an HTML datetime-local field sends
// (read as UTC).
func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errBadQuery
}

// filterSubjects are the EVENTS subjects q can match, for the server to
// filter on: events.<kind>.<action>.<tenant>.<aggregate token>. Events
// stored before subjects gained the aggregate token have four tokens and
// are matched too, unless an aggregate is asked for. Nil is every subject.
func (q eventQuery) filterSubjects() []string {
	if q.Type == "" && q.Tenant == "" && q.Aggregate == "" {
		return nil
	}
	kind, action, tenant := "*", "*", "*"
	if q.Type != "" {
		k, a, _ := strings.Cut(q.Type, ".")
		kind = k
		if a != "" {
			action = a
		}
	}
	if q.Tenant != "" {
		tenant = q.Tenant
	}
	four := "events." + kind + "." + action + "." + tenant
	if q.Aggregate != "" {
		return []string{four + "." + streams.AggregateToken(q.Aggregate)}
	}
	return []string{four, four + ".*"}
}

// matches reports whether row is what q asks for (the subject filter
// already took care of type and tenant; this checks everything again, and
// what a subject cannot say).
func (q eventQuery) matches(row *eventRow) bool {
	switch {
	case q.ID != "" && row.ID != q.ID,
		q.ProviderID != "" && row.ProviderEventID != q.ProviderID,
		q.Aggregate != "" && row.Aggregate != q.Aggregate,
		q.Tenant != "" && row.Tenant != q.Tenant,
		!q.From.IsZero() && row.Stored.Before(q.From),
		!q.To.IsZero() && !row.Stored.Before(q.To):
		return false
	}
	if q.Type != "" {
		kind, action, _ := strings.Cut(q.Type, ".")
		rk, ra, _ := strings.Cut(row.Type, ".")
		if rk != kind || (action != "" && action != "*" && ra != action) {
			return false
		}
	}
	return true
}

// decodeEvent reads one EVENTS message into a row.
func decodeEvent(seq uint64, stored time.Time, subject string, h nats.Header, data []byte) (eventRow, error) {
	row := eventRow{Seq: seq, Stored: stored}
	em, err := envelope.FromEventMsg(&nats.Msg{Subject: subject, Header: h, Data: data})
	if err != nil {
		return row, err
	}
	row.ID, row.Type, row.Tenant, row.Aggregate, row.Occurred = em.ID, em.Type, em.Tenant, em.Subject, em.Time
	var ev leadstreamv1.Event
	if err := proto.Unmarshal(data, &ev); err == nil {
		row.Source, row.ProviderEventID = ev.GetSource(), ev.GetProviderEventId()
	}
	return row, nil
}

// searchEvents answers q: by id straight from the dedupe bucket when an id
// is asked for and known there, else by reading EVENTS backwards from its
// end (or from q.To) in growing windows, newest matches first, until
// q.Limit matches, q.From, the start of the stream or maxScan.
func (s *Server) searchEvents(ctx context.Context, q eventQuery) (*eventResult, error) {
	if rows, ok, err := s.eventsByID(ctx, q); err != nil || ok {
		return &eventResult{Rows: rows, ByID: true, Complete: true}, err
	}
	st, err := s.js.Stream(ctx, streams.EVENTS)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", streams.EVENTS, err)
	}
	state := st.CachedInfo().State
	res := &eventResult{}
	if state.Msgs == 0 {
		res.Complete = true
		return res, nil
	}
	lo, hi := state.FirstSeq, state.LastSeq
	if !q.From.IsZero() {
		if lo, err = firstSeqAt(ctx, st, q.From, hi); err != nil {
			return nil, err
		}
	}
	if !q.To.IsZero() {
		to, err := firstSeqAt(ctx, st, q.To, hi)
		if err != nil {
			return nil, err
		}
		hi = to - 1
	}
	// The candidates' ids, when an id is asked for (a provider's id gives
	// one per source).
	ids := s.candidateIDs(q)
	filter := q.filterSubjects()
	size := uint64(firstWindow)
	if hi < lo {
		res.Complete = true // nothing stored in the time range
	}
	for hi >= lo && hi > 0 && len(res.Rows) < q.Limit && res.Scanned < maxScan {
		start := lo
		if hi >= lo+size {
			start = hi - size + 1
		}
		var chunk []eventRow
		var matched []uint64 // by id, read headers only: the bodies of these are fetched
		err := readRange(ctx, st, start, hi, filter, len(ids) > 0, func(seq uint64, stored time.Time, subject string, h nats.Header, data []byte) {
			if res.OldestScanned.IsZero() || stored.Before(res.OldestScanned) {
				res.OldestScanned = stored
			}
			if len(ids) > 0 {
				if id, _ := envelope.HeaderValue(h, envelope.HdrCEID); ids[id] {
					matched = append(matched, seq)
				}
				return
			}
			row, err := decodeEvent(seq, stored, subject, h, data)
			if err == nil && q.matches(&row) {
				chunk = append(chunk, row)
			}
		})
		if err != nil {
			return nil, err
		}
		for _, seq := range matched {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				continue // gone since (max age)
			}
			if row, err := decodeEvent(seq, m.Time, m.Subject, m.Header, m.Data); err == nil && q.matches(&row) {
				chunk = append(chunk, row)
			}
		}
		res.Scanned += hi - start + 1
		for i := len(chunk) - 1; i >= 0 && len(res.Rows) < q.Limit; i-- {
			res.Rows = append(res.Rows, chunk[i])
		}
		if start == lo {
			res.Complete = true
			break
		}
		hi = start - 1
		size *= 2
	}
	return res, nil
}

// candidateIDs are the event ids q's id fields stand for: the id itself,
// and a provider's id as each configured source would have made it.
func (s *Server) candidateIDs(q eventQuery) map[string]bool {
	ids := map[string]bool{}
	for _, c := range s.candidates(q) {
		ids[c.id] = true
	}
	return ids
}

// candidate is an event id and the source whose dedupe records may hold it.
type candidate struct{ source, id string }

// candidates pairs q's id with every source, or a provider's id with each
// source's event id for it.
func (s *Server) candidates(q eventQuery) []candidate {
	var out []candidate
	for _, src := range s.cfg.Sources {
		switch {
		case q.ID != "":
			out = append(out, candidate{src.Name, q.ID})
		case q.ProviderID != "":
			out = append(out, candidate{src.Name, eventid.New(src.Name, q.ProviderID)})
		}
	}
	return out
}

// eventsByID finds the events q names by id through the normalizer's
// dedupe records, which hold each event's EVENTS sequence: no scan. ok is
// false when q names no id, or the records do not know it (expired, or an
// older record without a sequence): then the caller scans.
func (s *Server) eventsByID(ctx context.Context, q eventQuery) (rows []eventRow, ok bool, err error) {
	cands := s.candidates(q)
	if len(cands) == 0 {
		return nil, false, nil
	}
	st, err := s.js.Stream(ctx, streams.EVENTS)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", streams.EVENTS, err)
	}
	seen := map[uint64]bool{}
	for _, c := range cands {
		seq, normalized, err := normalizer.EventSequence(ctx, s.js, c.source, c.id)
		if err != nil {
			return nil, false, err
		}
		if !normalized || seq == 0 || seen[seq] {
			continue
		}
		seen[seq] = true
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("reading %s #%d: %w", streams.EVENTS, seq, err)
		}
		row, err := decodeEvent(seq, m.Time, m.Subject, m.Header, m.Data)
		if err != nil || row.ID != c.id {
			continue
		}
		ok = true
		if q.matches(&row) {
			rows = append(rows, row)
		}
	}
	return rows, ok, nil
}

// firstSeqAt is the sequence of the first message stored at or after t,
// or last+1 when there is none.
func firstSeqAt(ctx context.Context, st jetstream.Stream, t time.Time, last uint64) (uint64, error) {
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t, HeadersOnly: true})
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", streams.EVENTS, err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(time.Second))
	if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return last + 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", streams.EVENTS, err)
	}
	md, err := m.Metadata()
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", streams.EVENTS, err)
	}
	return md.Sequence.Stream, nil
}

// readRange calls f for every message of st from sequence lo to hi that
// filter selects (every one when nil), in order; with headersOnly, without
// their bodies.
func readRange(ctx context.Context, st jetstream.Stream, lo, hi uint64, filter []string, headersOnly bool, f func(seq uint64, stored time.Time, subject string, h nats.Header, data []byte)) error {
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: lo,
		FilterSubjects: filter, HeadersOnly: headersOnly})
	if err != nil {
		return fmt.Errorf("reading %s: %w", streams.EVENTS, err)
	}
	for {
		batch, err := c.FetchNoWait(256)
		if err != nil {
			return fmt.Errorf("reading %s: %w", streams.EVENTS, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("reading %s: %w", streams.EVENTS, err)
			}
			if md.Sequence.Stream > hi {
				return nil
			}
			f(md.Sequence.Stream, md.Timestamp, m.Subject(), m.Headers(), m.Data())
			if md.NumPending == 0 || md.Sequence.Stream == hi {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("reading %s: %w", streams.EVENTS, err)
		}
		if n == 0 {
			return nil
		}
	}
}

type eventsView struct {
	Query  eventQuery
	Form   map[string]string
	Result *eventResult
	Error  string
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	q, err := parseEventQuery(r)
	v := eventsView{Query: q, Form: map[string]string{}}
	for _, k := range []string{"id", "provider_id", "aggregate", "type", "tenant", "from", "to"} {
		v.Form[k] = r.URL.Query().Get(k)
	}
	if err != nil {
		v.Error = err.Error()
		s.render(w, r, http.StatusBadRequest, "events", "Events", "events", v)
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	if v.Result, err = s.searchEvents(ctx, q); err != nil {
		s.failErr(w, r, "searching EVENTS", err)
		return
	}
	s.render(w, r, http.StatusOK, "events", "Events", "events", v)
}
