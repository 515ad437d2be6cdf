package leads

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

var (
	seedFlag = flag.Uint64("seed", 0, "seed of the randomized order tests; 0 picks one from the clock")
	update   = flag.Bool("update", false, "rewrite the golden state files in testdata/state")
)

// testSeed returns the seed for a randomized test and logs it, so that a
// failure can be replayed with -seed.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay: go test -run '^%s$' -seed=%d)", seed, t.Name(), seed)
	return seed
}

// applyAll applies events in the given order and returns each aggregate's
// state.
func applyAll(events []*leadstreamv1.Event) map[string]*State {
	states := make(map[string]*State)
	for _, ev := range events {
		states[ev.GetAggregateId()] = Apply(states[ev.GetAggregateId()], ev)
	}
	return states
}

func mustMarshal(t testing.TB, s *State) []byte {
	t.Helper()
	b, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshalAll(t testing.TB, states map[string]*State) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte, len(states))
	for agg, s := range states {
		out[agg] = mustMarshal(t, s)
	}
	return out
}

// shuffled returns events in a random order with random duplicates (up to
// as many again).
func shuffled(r *rand.Rand, events []*leadstreamv1.Event) []*leadstreamv1.Event {
	out := append([]*leadstreamv1.Event(nil), events...)
	for range r.IntN(len(events) + 1) {
		out = append(out, events[r.IntN(len(events))])
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func rank(s *State) int {
	if s == nil {
		return 0
	}
	return s.Status.Rank
}

// TestApplyOrderIndependent is the projection's contract: whatever the
// arrival order and duplicates, the stored bytes are those of in-order
// application, statuses never fall back on the way, and merging states
// built from any partition of the events gives the same bytes too.
func TestApplyOrderIndependent(t *testing.T) {
	events := history()
	want := marshalAll(t, applyAll(events))
	if len(want) != 4 {
		t.Fatalf("history has %d aggregates, want 4", len(want))
	}
	seed := testSeed(t)
	for i := range 500 {
		r := rand.New(rand.NewPCG(seed, uint64(i)))
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d, iteration %d: %s", seed, i, fmt.Sprintf(format, args...))
		}
		seq := shuffled(r, events)

		// One event at a time, as the Store does, sometimes through the
		// bucket's encoding.
		states := make(map[string]*State)
		for _, ev := range seq {
			agg := ev.GetAggregateId()
			next := Apply(states[agg], ev)
			if rank(next) < rank(states[agg]) {
				fail("%s: status went back from %+v to %+v on event %s", agg, states[agg].Status, next.Status, ev.GetId())
			}
			if r.IntN(3) == 0 {
				var err error
				if next, err = Unmarshal(mustMarshal(t, next)); err != nil {
					fail("round trip: %v", err)
				}
			}
			states[agg] = next
		}
		for agg, b := range marshalAll(t, states) {
			if !bytes.Equal(b, want[agg]) {
				fail("%s after Apply in shuffled order:\n got %s\nwant %s", agg, b, want[agg])
			}
			if again := mustMarshal(t, Merge(states[agg], states[agg])); !bytes.Equal(again, b) {
				fail("%s: Merge(s, s) != s:\n got %s\nwant %s", agg, again, b)
			}
		}

		// Random partitions, each applied on its own, merged in a random
		// tree: commutativity and associativity of Merge.
		parts := make([][]*leadstreamv1.Event, 1+r.IntN(6))
		for _, ev := range seq {
			k := r.IntN(len(parts))
			parts[k] = append(parts[k], ev)
		}
		partial := make([]map[string]*State, len(parts))
		for k, p := range parts {
			partial[k] = applyAll(p)
		}
		for len(partial) > 1 {
			k := r.IntN(len(partial) - 1)
			a, b := partial[k], partial[k+1]
			if r.IntN(2) == 0 {
				a, b = b, a
			}
			m := make(map[string]*State)
			for _, agg := range []string{offerteLead, offerteInv, conversation, transaction} {
				if a[agg] != nil || b[agg] != nil {
					m[agg] = Merge(a[agg], b[agg])
				}
			}
			partial = append(partial[:k], append([]map[string]*State{m}, partial[k+2:]...)...)
		}
		for agg, b := range marshalAll(t, partial[0]) {
			if !bytes.Equal(b, want[agg]) {
				fail("%s after Merge of %d partitions:\n got %s\nwant %s", agg, len(parts), b, want[agg])
			}
		}
	}
}

// TestStatusNeverMovesBackwards applies events in orders that would move a
// last-writer-wins status backwards.
func TestStatusNeverMovesBackwards(t *testing.T) {
	h := history()
	byID := make(map[string]*leadstreamv1.Event)
	for _, ev := range h {
		byID[ev.GetId()[:8]] = ev
	}
	const (
		created  = "2feb2204"
		sold     = "3b68420c"
		invoiced = "b3aa0b6f"
		paid     = "1a174153"
		mpLead   = "626de9e6"
		msg      = "9d4bfb09"
		toPend   = "0b1c2d3e"
		toDone   = "a85bc2f3"
		toRefund = "c9d8e7f6"
		invNew   = "1fa1b2a4"
		invPaid  = "46279c6e"
	)
	tests := []struct {
		name   string
		order  []string
		status string
		rank   int
	}{
		{"older lead.sold after lead.paid", []string{created, paid, sold}, "PAID", 4},
		{"paid first, then the rest", []string{paid, invoiced, sold, created}, "PAID", 4},
		{"sold without created", []string{sold}, "SOLD", 2},
		{"chat message sets no status", []string{msg}, "", 0},
		{"chat message after lead.created keeps CREATED", []string{mpLead, msg}, "CREATED", 1},
		{"refund before completion", []string{toRefund, toDone, toPend}, "REFUNDED", 4},
		{"old status implies at least it", []string{toRefund}, "REFUNDED", 4},
		{"completion after pending", []string{toPend, toDone}, "COMPLETED", 3},
		{"completion before pending", []string{toDone, toPend}, "COMPLETED", 3},
		{"invoice paid before created", []string{invPaid, invNew}, "PAID", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *State
			for _, id := range tt.order {
				s = Apply(s, byID[id])
			}
			if s.Status.Value != tt.status || s.Status.Rank != tt.rank {
				t.Errorf("status %q rank %d, want %q rank %d", s.Status.Value, s.Status.Rank, tt.status, tt.rank)
			}
		})
	}

	t.Run("old status alone", func(t *testing.T) {
		// A change whose new status this version does not know still proves
		// the old one.
		ev := txChange("d0d0d0d0-0000-5000-8000-000000000000", "2026-11-22T15:00:00Z",
			leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING, leadstreamv1.TransactionStatus(99))
		s := Apply(nil, ev)
		if s.Status.Value != "PENDING" || s.Status.Rank != 2 {
			t.Errorf("status %+v, want PENDING rank 2", s.Status)
		}
	})

	t.Run("bids and questions on an advertisement", func(t *testing.T) {
		const ad = "mp-api/advertisement/m2034567890"
		closed := event("3cd3614e-9321-503c-a277-c49fed8c35e3", "bid.closed", ad, "2026-11-21T08:00:00Z")
		closed.Data = &leadstreamv1.Event_Bid{Bid: &leadstreamv1.Bid{BidId: "2", ClosedBySeller: true}}
		placed := event("1ceaa3b0-619f-580c-9454-c2422de53733", "bid.placed", ad, "2026-11-20T10:20:00Z")
		placed.Data = &leadstreamv1.Event_Bid{Bid: &leadstreamv1.Bid{BidId: "2"}}
		asq := event("bd883fe2-17b1-547a-95aa-d50bfa237869", "asq.created", ad, "2026-11-22T11:02:13Z")
		asq.Data = &leadstreamv1.Event_Asq{Asq: &leadstreamv1.AskSellerQuestion{Message: "Zit er een trekhaak op?"}}
		s := Apply(Apply(Apply(nil, closed), asq), placed)
		if s.Status.Value != "CLOSED" {
			t.Errorf("status %+v, want CLOSED", s.Status)
		}
		if s.Kind != "advertisement" {
			t.Errorf("kind %q, want advertisement", s.Kind)
		}
	})
}

// TestLaterTimeWins checks the per-field registers: the later provider time
// wins whatever the order, equal times go to the larger event id, and a
// field a later event leaves out keeps its value.
func TestLaterTimeWins(t *testing.T) {
	older := offerteCreated()
	older.Id = "bbbbbbbb-0000-5000-8000-000000000000"
	older.GetLead().Buyer.Email = "sanne@example.nl"
	newer := offerteCreated()
	newer.Id = "aaaaaaaa-0000-5000-8000-000000000000" // smaller id: time must decide
	newer.OccurredAt = ts("2026-11-20T09:05:00Z")
	newer.GetLead().Buyer.Name = "Sanne de Jong"
	newer.GetLead().Buyer.LastName = "de Jong"

	for _, order := range [][]*leadstreamv1.Event{{older, newer}, {newer, older}} {
		s := applyAll(order)[offerteLead]
		for path, want := range map[string]string{
			"lead.buyer.name":      "Sanne de Jong",
			"lead.buyer.lastName":  "de Jong",
			"lead.buyer.firstName": "Sanne",
			"lead.buyer.email":     "sanne@example.nl", // only the older event has it
		} {
			if got := s.Fields[path].Value; got != want {
				t.Errorf("order %s first: %s = %q, want %q", order[0].GetId()[:8], path, got, want)
			}
		}
		if got := s.Fields["lead.buyer.name"].Event; got != newer.GetId() {
			t.Errorf("lead.buyer.name from event %s, want %s", got, newer.GetId())
		}
		if !s.FirstAt.Equal(older.GetOccurredAt().AsTime()) || !s.LastAt.Equal(newer.GetOccurredAt().AsTime()) {
			t.Errorf("FirstAt %v LastAt %v, want the older and newer event's times", s.FirstAt, s.LastAt)
		}
	}

	// Same second: the larger event id wins, in either order.
	tie := offerteCreated()
	tie.Id = "cccccccc-0000-5000-8000-000000000000"
	tie.OccurredAt = older.OccurredAt
	tie.GetLead().Buyer.Name = "S. Jansen"
	for _, order := range [][]*leadstreamv1.Event{{older, tie}, {tie, older}} {
		if got := applyAll(order)[offerteLead].Fields["lead.buyer.name"].Value; got != "S. Jansen" {
			t.Errorf("tie, order %s first: name %q, want the larger id's %q", order[0].GetId()[:8], got, "S. Jansen")
		}
	}
}

// TestFields checks the flattened paths and values of typed data.
func TestFields(t *testing.T) {
	states := applyAll(history())
	tests := []struct {
		aggregate, path, want string
	}{
		{offerteLead, "lead.buyer.address.houseNumber", "12a"},
		{offerteLead, "lead.createdAt", "2026-11-20T09:00:00Z"},
		{offerteLead, "leadStatus.status", "LEAD_STATUS_PAID"},
		{offerteLead, "leadStatus.invoiceId", "5551"},
		{conversation, "lead.requests", `["testDrive","financing"]`},
		{conversation, "lead.tradeIn.year", "2015"},
		{conversation, "lead.tradeIn.mileageKm", "128000"},
		{conversation, "lead.advertisement.price.amountCents", "1895000"},
		{conversation, "lead.advertisement.url", "https://www.marktplaats.nl/v/auto-s/volkswagen/m2034567890?a=1&b=2"},
		{conversation, "chatMessage.text", "Is de prijs nog bespreekbaar?"},
		{conversation, "chatMessage.sender", "SENDER_ROLE_BUYER"},
		{transaction, "transaction.newStatus", "TRANSACTION_STATUS_REFUNDED"},
		{transaction, "transaction.oldStatus", "TRANSACTION_STATUS_COMPLETED"},
		{transaction, "transaction.shippingCosts.amountCents", "695"},
		{offerteInv, "invoice.leadIds", `["12345"]`},
		{offerteInv, "invoice.status", "INVOICE_STATUS_PAID"},
		{offerteInv, "invoice.createdAt", "2026-11-30T08:00:00Z"},
	}
	for _, tt := range tests {
		if got := states[tt.aggregate].Fields[tt.path].Value; got != tt.want {
			t.Errorf("%s %s = %q, want %q", tt.aggregate, tt.path, got, tt.want)
		}
	}
	if s := states[conversation]; s.Kind != "conversation" || s.Source != "mp-leads" || s.Tenant != "demo-dealer" {
		t.Errorf("conversation identity: kind %q source %q tenant %q", s.Kind, s.Source, s.Tenant)
	}
	if n := len(states[conversation].Events); n != 5 {
		t.Errorf("conversation has %d events, want 5", n)
	}

	// Lokalebasen sends no time: receipt time orders the fields.
	enq := event("fd1cab40-1c3e-52cf-9be1-5ddad1e17408", "enquiry.created",
		"lokalebasen/enquiry/sha256:0a0b3f9b480a23e5a194d68aefefc49e365e602eda841faafc003eb9252e1a58", "")
	enq.Data = &leadstreamv1.Event_Enquiry{Enquiry: &leadstreamv1.Enquiry{
		Type:    leadstreamv1.EnquiryType_ENQUIRY_TYPE_EXTRA,
		Client:  &leadstreamv1.Person{Name: "Angela Baker", Company: "Bakers Inc."},
		Comment: "I would like something with a grand view over the city.",
	}}
	s := Apply(nil, enq)
	if r := s.Fields["enquiry.client.name"]; r.Value != "Angela Baker" || !r.At.Equal(enq.GetReceivedAt().AsTime()) {
		t.Errorf("enquiry.client.name = %+v, want Angela Baker at the receipt time", r)
	}
	if s.Status.Value != "RECEIVED" || s.Kind != "enquiry" {
		t.Errorf("enquiry status %+v kind %q", s.Status, s.Kind)
	}
}

// TestGoldenState pins the stored encoding: a change to it changes the bytes
// of states already in the bucket, so it must be deliberate (-update).
func TestGoldenState(t *testing.T) {
	states := applyAll(history())
	for agg, s := range states {
		path := filepath.Join("testdata", "state", Key(agg)+".json")
		got := mustMarshal(t, s)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", agg, got, want)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	s := applyAll(history())[conversation]
	b := mustMarshal(t, s)
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if again := mustMarshal(t, back); !bytes.Equal(again, b) {
		t.Errorf("round trip changed the bytes:\n got %s\nwant %s", again, b)
	}

	for _, bad := range []string{
		`{"aggregate":"a/b/c","futureField":1}`,
		`{"fields":{"x":{"value":"v","weight":2}}}`,
		`{"aggregate":"a/b/c"} {}`,
		`{"aggregate":`,
	} {
		if _, err := Unmarshal([]byte(bad)); err == nil {
			t.Errorf("Unmarshal(%s) succeeded, want an error", bad)
		}
	}
}

// TestInvalidUTF8 checks that invalid strings are fixed where they enter the
// state, so the state in memory and the state read back order alike.
func TestInvalidUTF8(t *testing.T) {
	// Same event id and time, so the text decides. Raw, "\xff" sorts above
	// "\uFFFD!"; once JSON has replaced it by "\uFFFD" it sorts below.
	a := chat("9d4bfb09-6a15-5408-8859-19dd0b36e7f9", "2026-11-20T10:16:30Z", 1, "caf\xff")
	b := chat("9d4bfb09-6a15-5408-8859-19dd0b36e7f9", "2026-11-20T10:16:30Z", 1, "caf\uFFFD!")
	viaBucket := Apply(mustUnmarshal(t, mustMarshal(t, Apply(nil, a))), b)
	inMemory := Apply(Apply(nil, b), a)
	if x, y := mustMarshal(t, viaBucket), mustMarshal(t, inMemory); !bytes.Equal(x, y) {
		t.Errorf("order changed the bytes:\n%s\n%s", x, y)
	}
}

func mustUnmarshal(t *testing.T, b []byte) *State {
	t.Helper()
	s, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMarshalCanonical(t *testing.T) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	a := &State{Aggregate: "x/lead/1", Events: []string{"b", "a", "b"}, FirstAt: at, LastAt: at}
	b := &State{Aggregate: "x/lead/1", Events: []string{"a", "b"}, FirstAt: at.UTC(), LastAt: at.UTC()}
	if x, y := mustMarshal(t, a), mustMarshal(t, b); !bytes.Equal(x, y) {
		t.Errorf("equal states, different bytes:\n%s\n%s", x, y)
	}
	if got := string(mustMarshal(t, nil)); got != "{}" {
		t.Errorf("Marshal(nil) = %s, want {}", got)
	}
}
