package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// TestEventSearch: the event list finds events by each field and by
// several at once, newest first, from real EVENTS messages the normalizer
// wrote.
func TestEventSearch(t *testing.T) {
	f := newFixture(t, "", nil)
	var evs []*leadstreamv1.Event
	for _, s := range []struct{ source, provider, kind, file, id string }{
		{"offerte", "offerte-adviseur", "lead", "offerte-adviseur/lead-created.json", "a056V7R7NmNRjl70"},
		{"mp-api", "marktplaats-api", "bid", "marktplaats-api/bid-placed.json", "8b0f6c1e-4f7a-4b61-9d0a-2f3c1a7e5d11"},
		{"offerte", "offerte-adviseur", "lead", "offerte-adviseur/lead-sold.json", "b167W8S8OoOSkm81"},
		{"mp-api", "marktplaats-api", "bid", "marktplaats-api/bid-closed.json", "0d4e2b9a-7c31-4f5e-8a06-b1c9d2e3f470"},
		{"mp-api", "marktplaats-api", "asq", "marktplaats-api/asq-created.json", "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"},
	} {
		evs = append(evs, f.ingest(s.source, s.provider, s.kind, s.file, s.id))
	}
	created, bidPlaced, sold, bidClosed, asq := evs[0], evs[1], evs[2], evs[3], evs[4]
	ids := func(evs ...*leadstreamv1.Event) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.GetId())
		}
		return out
	}
	// The time between the second and the third event.
	st, err := f.js.Stream(context.Background(), streams.EVENTS)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := st.GetMsg(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	m3, err := st.GetMsg(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	mid := m2.Time.Add(m3.Time.Sub(m2.Time) / 2)
	if !mid.After(m2.Time) {
		t.Fatalf("events 2 and 3 stored at the same instant %s", m2.Time)
	}

	tests := []struct {
		name  string
		query url.Values
		want  []string
		byID  bool
	}{
		{"everything, newest first", url.Values{}, ids(asq, bidClosed, sold, bidPlaced, created), false},
		{"event id", url.Values{"id": {sold.GetId()}}, ids(sold), true},
		{"provider event id", url.Values{"provider_id": {"8b0f6c1e-4f7a-4b61-9d0a-2f3c1a7e5d11"}}, ids(bidPlaced), true},
		{"aggregate", url.Values{"aggregate": {created.GetAggregateId()}}, ids(sold, created), false},
		{"type", url.Values{"type": {"lead.sold"}}, ids(sold), false},
		{"kind", url.Values{"type": {"bid.*"}}, ids(bidClosed, bidPlaced), false},
		{"kind without action", url.Values{"type": {"lead"}}, ids(sold, created), false},
		{"tenant", url.Values{"tenant": {"t2"}}, ids(sold, created), false},
		{"tenant and kind", url.Values{"tenant": {"t1"}, "type": {"asq.*"}}, ids(asq), false},
		{"from", url.Values{"from": {mid.Format(time.RFC3339Nano)}}, ids(asq, bidClosed, sold), false},
		{"to", url.Values{"to": {mid.Format(time.RFC3339Nano)}}, ids(bidPlaced, created), false},
		{"id and another tenant", url.Values{"id": {sold.GetId()}, "tenant": {"t1"}}, nil, true},
		{"unknown id", url.Values{"id": {"6a0c8b5e-0000-5000-8000-000000000000"}}, nil, false},
		{"limit", url.Values{"limit": {"2"}}, ids(asq, bidClosed), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "/events?"+tc.query.Encode(), nil)
			q, err := parseEventQuery(r)
			if err != nil {
				t.Fatal(err)
			}
			res, err := f.srv.searchEvents(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, row := range res.Rows {
				got = append(got, row.ID)
			}
			if !slices.Equal(got, tc.want) || res.ByID != tc.byID {
				t.Errorf("got %v (by id %v), want %v (by id %v)", got, res.ByID, tc.want, tc.byID)
			}
			// The page lists the same, each with its trace.
			status, body, _ := f.request(http.MethodGet, "/events?"+tc.query.Encode(), nil)
			if status != http.StatusOK {
				t.Fatalf("GET /events: %d", status)
			}
			for _, id := range tc.want {
				if !strings.Contains(body, `href="/trace/`+id+`"`) {
					t.Errorf("the page does not link the trace of %s", id)
				}
			}
		})
	}
	for _, bad := range []string{"type=lead.created.x", "type=LEAD", "tenant=a.b", "tenant=%3E", "from=yesterday", "limit=-1"} {
		if status, _, _ := f.request(http.MethodGet, "/events?"+bad, nil); status != http.StatusBadRequest {
			t.Errorf("GET /events?%s: %d, want 400", bad, status)
		}
	}
}

// TestEventSearchScansBackwards: the search reads EVENTS backwards in
// growing windows and stops at the limit; an id the dedupe bucket does not
// know is found by scanning.
func TestEventSearchScansBackwards(t *testing.T) {
	f := newFixture(t, "", nil)
	ev := f.ingest("offerte", "offerte-adviseur", "lead", "offerte-adviseur/lead-created.json", "a056V7R7NmNRjl70")
	// 3000 more events of another tenant after it, as a busy stream has.
	ctx := context.Background()
	for i := range 3000 {
		e := &leadstreamv1.Event{Id: "filler-" + time.Duration(i).String(), Type: "bid.placed", Tenant: "t1", Source: "mp-api", AggregateId: "mp-api/advertisement/x"}
		f.publishEvent(ctx, e)
	}
	r, _ := http.NewRequest(http.MethodGet, "/events?tenant=t2", nil)
	q, _ := parseEventQuery(r)
	res, err := f.srv.searchEvents(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 || res.Rows[0].ID != ev.GetId() || !res.Complete {
		t.Errorf("tenant t2 behind 3000 others: %+v", res)
	}
	r, _ = http.NewRequest(http.MethodGet, "/events?limit=10", nil)
	q, _ = parseEventQuery(r)
	if res, err = f.srv.searchEvents(ctx, q); err != nil || len(res.Rows) != 10 || res.Complete || res.Rows[0].Seq != 3001 || res.Scanned != firstWindow {
		t.Errorf("newest 10: %d rows, complete %v, first seq %d, scanned %d, %v", len(res.Rows), res.Complete, res.Rows[0].Seq, res.Scanned, err)
	}
	// Not in the dedupe bucket (a hand-made event): found by reading.
	r, _ = http.NewRequest(http.MethodGet, "/events?id=filler-7ns", nil)
	q, _ = parseEventQuery(r)
	if res, err = f.srv.searchEvents(ctx, q); err != nil || len(res.Rows) != 1 || res.ByID {
		t.Errorf("a hand-made event by id: %+v %v", res, err)
	}
}
