package dispatcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/leads"
)

// TestLongAggregate: events whose aggregate id is thousands of bytes long
// (as an older normalizer wrote them from a hostile conversationId) are
// delivered in causal order and projected; the connection the dispatcher
// shares stays up, and ordinary events keep flowing after them.
func TestLongAggregate(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.start()
	agg := "mp-leads/conversation/" + strings.Repeat("c", 3000)
	f.publish(event("chat-long", "chat.message", agg, t0.Add(time.Minute)))
	f.publish(event("lead-long", "lead.created", agg, t0))
	lms.waitFor(2)
	if got := lms.ids(agg); len(got) != 2 || got[0] != "lead-long" || got[1] != "chat-long" {
		t.Fatalf("long aggregate delivered as %v, want lead-long, chat-long", got)
	}
	if st := f.nc.Status(); st != nats.CONNECTED {
		t.Fatalf("connection %s after the long aggregate", st)
	}
	f.publish(event("bid-after", "bid.placed", "ad/1", t0))
	lms.waitFor(3)
	kv, err := f.js.KeyValue(context.Background(), leads.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		_, err := leads.NewStore(kv).Get(context.Background(), agg)
		return err
	})
	if k := leads.Key(agg); natskey.CheckKey(k) != nil {
		t.Fatalf("leads key of the long aggregate is invalid: %v", natskey.CheckKey(k))
	}
	if st := f.nc.Status(); st != nats.CONNECTED {
		t.Fatalf("connection %s at the end", st)
	}
}

// TestStateKey: keys of ordinary aggregates are what they always were
// (state already in the bucket is found); one too long for NATS is hashed,
// valid, bounded and told apart.
func TestStateKey(t *testing.T) {
	long := "mp-leads/conversation/" + strings.Repeat("c", 3000)
	tests := []struct {
		aggregate, key string
		readBack       bool
	}{
		{"offerte/lead/12345", "crm.b2ZmZXJ0ZS9sZWFkLzEyMzQ1", true},
		{"mp-leads/conversation/c2b7e4d0", "crm.bXAtbGVhZHMvY29udmVyc2F0aW9uL2MyYjdlNGQw", true},
		{"a b/é", "crm.YSBiL8Op", true},
		{long, "crm.=" + sha256Hex(long), false},
	}
	for _, tt := range tests {
		k := stateKey("crm", tt.aggregate)
		if k != tt.key {
			t.Errorf("stateKey(%.40q) = %.80q, want %.80q", tt.aggregate, k, tt.key)
		}
		if err := natskey.CheckKey(k); err != nil {
			t.Errorf("stateKey(%.40q): %v", tt.aggregate, err)
		}
		agg, ok := aggregateOf(k, "crm")
		if ok != tt.readBack || (ok && agg != tt.aggregate) {
			t.Errorf("aggregateOf(%.80q) = %.40q, %v", k, agg, ok)
		}
		if hashedKey(k, "crm") == tt.readBack {
			t.Errorf("hashedKey(%.80q) = %v", k, !tt.readBack)
		}
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// FuzzStateKey: whatever the aggregate, the dispatch key and the leads key
// are valid KV keys within natskey.MaxKeyLen, and the timer's message id is
// bounded.
func FuzzStateKey(f *testing.F) {
	for _, s := range []string{"offerte/lead/12345", "", "a b", strings.Repeat("x", 5000), "\xff/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, agg string) {
		if agg == "" {
			return // dead-lettered as no_aggregate before any key is built
		}
		if err := natskey.CheckKey(stateKey("crm", agg)); err != nil {
			t.Fatalf("stateKey(%q): %v", agg, err)
		}
		if err := natskey.CheckKey(leads.Key(agg)); err != nil {
			t.Fatalf("leads.Key(%q): %v", agg, err)
		}
		if id := natskey.ID(agg); len(id) > natskey.MaxIDLen {
			t.Fatalf("timer id part of %q is %d bytes", agg, len(id))
		}
	})
}

// TestNoAggregate: an event without aggregate id cannot be ordered; it is
// dead-lettered with its reason instead of being retried forever, and the
// next event goes out.
func TestNoAggregate(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.start()
	f.publish(event("bid-none", "bid.placed", "", t0))
	f.publish(event("bid-next", "bid.placed", "ad/2", t0))
	lms.waitFor(1)
	var letters []*dlq.Letter
	natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() (err error) {
		letters, err = dlq.List(context.Background(), f.js, dlq.Filter{Stage: dlq.StageDeliver, Name: "crm"})
		if err == nil && len(letters) != 1 {
			err = fmt.Errorf("%d dead letters", len(letters))
		}
		return err
	})
	if l := letters[0]; l.Reason != "no_aggregate" || len(l.Body) == 0 {
		t.Fatalf("dead letter %+v", l)
	}
	if got := lms.ids(""); len(got) != 1 || got[0] != "bid-next" {
		t.Fatalf("LMS got %v", got)
	}
	// The projection has no key for it either: it lets go instead of
	// retrying it forever.
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		c, err := f.js.Consumer(context.Background(), streams.EVENTS, projectionConsumer.Durable)
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumPending+uint64(info.NumAckPending)+uint64(info.NumRedelivered) != 0 {
			return fmt.Errorf("projection: %d pending, %d unacked, %d redelivered", info.NumPending, info.NumAckPending, info.NumRedelivered)
		}
		return nil
	})
}

// TestEncodedAggregate: ce-subject is percent-encoded on the wire; the
// dispatcher orders on the aggregate id it stands for, the one replay and
// the leads projection use too, not on its encoding.
func TestEncodedAggregate(t *testing.T) {
	lms := newFakeLMS(t)
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.start()
	agg := "mp-leads/conversation/a b%é"
	for _, ev := range []*leadstreamv1.Event{event("chat-enc", "chat.message", agg, t0.Add(time.Minute)), event("lead-enc", "lead.created", agg, t0)} {
		data, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		kind, action, _ := strings.Cut(ev.Type, ".")
		msg := envelope.EventMsg(streams.EventsSubject(kind, action, ev.Tenant, ev.AggregateId), ev, data)
		if msg.Header.Get(envelope.HdrCESubject) == agg {
			t.Fatal("ce-subject is not encoded: the test tests nothing")
		}
		if _, err := f.js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	lms.waitFor(2)
	if got := lms.ids(""); len(got) != 2 || got[0] != "lead-enc" {
		t.Fatalf("delivered %v, want lead-enc first", got)
	}
	kv, err := f.js.KeyValue(context.Background(), streams.DispatchBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), stateKey("crm", agg)); err != nil {
		t.Fatalf("no ordering state under the decoded aggregate's key: %v", err)
	}
}
