package dlq_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// A deliver-stage letter is made from an EVENTS message read by direct get,
// which carries JetStream's Nats-Stream/-Sequence/-Subject/-Time-Stamp
// headers. None of them may reach the letter: ls, show, replay and drop
// must all name the letter's own DLQ sequence.
func TestLetterFromDirectGetKeepsItsOwnSequence(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	cfg := &config.Config{}
	cfg.Streams.EventsMaxAge.Duration = 0
	if err := streams.Ensure(ctx, js, streams.EventsConfig(cfg), streams.DLQConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	events, err := js.Stream(ctx, streams.EVENTS)
	if err != nil {
		t.Fatal(err)
	}
	// Enough events that an EVENTS sequence cannot equal a DLQ sequence.
	for i := range 40 {
		ev := &leadstreamv1.Event{Id: fmt.Sprint("ev-", i), Type: "lead.created", Tenant: "t1", Source: "src"}
		msg := envelope.EventMsg("events.lead.created.t1", ev, []byte(fmt.Sprint(i)))
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	var wrote []uint64
	for _, seq := range []uint64{17, 23, 31} {
		raw, err := events.GetMsg(ctx, seq) // direct get: AllowDirect is on
		if err != nil {
			t.Fatal(err)
		}
		if raw.Header.Get(jetstream.SequenceHeader) == "" {
			t.Fatal("the direct get returned no Nats-Sequence header: the test no longer covers the bug")
		}
		l := &dlq.Letter{Stage: dlq.StageDeliver, Name: "crm", Reason: "terminal", Subject: raw.Subject, Sequence: seq, Attempts: 1, Header: raw.Header, Body: raw.Data}
		ack, err := js.PublishMsg(ctx, l.Msg())
		if err != nil {
			t.Fatal(err)
		}
		wrote = append(wrote, ack.Sequence)
	}

	letters, err := dlq.List(ctx, js, dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 3 {
		t.Fatalf("listed %d letters, want 3", len(letters))
	}
	for i, l := range letters {
		if l.Seq != wrote[i] {
			t.Errorf("ls: letter %d has seq %d, want its DLQ sequence %d", i, l.Seq, wrote[i])
		}
		for k := range l.Header {
			if len(k) >= 5 && k[:5] == "Nats-" {
				t.Errorf("ls: letter %d kept JetStream header %s", l.Seq, k)
			}
		}
		got, err := dlq.Get(ctx, js, l.Seq)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := envelope.HeaderValue(got.Header, envelope.HdrCEID)
		if got.Seq != l.Seq || got.Sequence != l.Sequence || id != fmt.Sprint("ev-", l.Sequence-1) {
			t.Errorf("show %d: seq %d, original sequence %d, ce-id %q; want %d, %d, ev-%d", l.Seq, got.Seq, got.Sequence, id, l.Seq, l.Sequence, l.Sequence-1)
		}
	}
	// Drop by the printed sequence removes exactly that letter.
	if err := dlq.Drop(ctx, js, letters[1].Seq); err != nil {
		t.Fatal(err)
	}
	left, err := dlq.List(ctx, js, dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 2 || left[0].Sequence != 17 || left[1].Sequence != 31 {
		t.Fatalf("after dropping the letter of EVENTS #23 the DLQ holds %v", left)
	}
}

// TestNewest: the list's newest n letters of a filter come newest first,
// with the total that matches, their fields but not their bodies; fewer
// than n, and none, work too.
func TestNewest(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	if err := streams.Ensure(ctx, js, streams.DLQConfig(&config.Config{})); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		name := "crm"
		if i%3 == 0 {
			name = "erp"
		}
		l := &dlq.Letter{Stage: dlq.StageDeliver, Name: name, Reason: "terminal", Subject: "events.lead.created.t1.x", Sequence: uint64(100 + i), Attempts: i, Body: []byte("personal data")}
		if _, err := js.PublishMsg(ctx, l.Msg()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		filter    dlq.Filter
		n         int
		total     int
		sequences []uint64
	}{
		{dlq.Filter{}, 3, 12, []uint64{111, 110, 109}},
		{dlq.Filter{Name: "crm"}, 5, 8, []uint64{111, 110, 108, 107, 105}},
		{dlq.Filter{Name: "erp"}, 10, 4, []uint64{109, 106, 103, 100}},
		{dlq.Filter{Name: "none"}, 10, 0, nil},
		{dlq.Filter{}, 0, 12, nil},
	} {
		letters, total, err := dlq.Newest(ctx, js, c.filter, c.n)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, l := range letters {
			got = append(got, l.Sequence)
			if len(l.Body) != 0 || l.Reason != "terminal" || l.Attempts != int(l.Sequence-100) {
				t.Errorf("%+v: letter of #%d: body %q, reason %q, attempts %d", c.filter, l.Sequence, l.Body, l.Reason, l.Attempts)
			}
		}
		if total != c.total || fmt.Sprint(got) != fmt.Sprint(c.sequences) {
			t.Errorf("Newest(%+v, %d) = %v of %d, want %v of %d", c.filter, c.n, got, total, c.sequences, c.total)
		}
	}
}
