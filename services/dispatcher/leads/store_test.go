package leads

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/natstest"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// newBuckets starts a JetStream server and creates the leads bucket, plus a
// bucket of the same configuration for each extra name.
func newBuckets(t *testing.T, extra ...string) []jetstream.KeyValue {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []jetstream.KeyValue
	for _, name := range append([]string{Bucket}, extra...) {
		cfg := BucketConfig(1)
		cfg.Bucket = name
		kv, err := js.CreateKeyValue(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kv)
	}
	return out
}

func storedBytes(t *testing.T, kv jetstream.KeyValue, aggregate string) ([]byte, uint64) {
	t.Helper()
	e, err := kv.Get(context.Background(), Key(aggregate))
	if err != nil {
		t.Fatalf("reading %s: %v", aggregate, err)
	}
	return e.Value(), e.Revision()
}

// TestStoreConcurrentApply has several writers (as several dispatcher
// instances would) apply the same events, shuffled and duplicated, to the
// same keys at once: the stored bytes must be those of one writer applying
// them in order.
func TestStoreConcurrentApply(t *testing.T) {
	kvs := newBuckets(t, "leads_sequential")
	concurrent, sequential := NewStore(kvs[0]), NewStore(kvs[1])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	events := history()
	for _, ev := range events {
		if err := sequential.Apply(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}

	seed := testSeed(t)
	const writers = 6
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for _, ev := range shuffled(r, events) {
				if err := concurrent.Apply(ctx, ev); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed %d: %v", seed, err)
	}

	want := marshalAll(t, applyAll(events))
	for agg, w := range want {
		seq, _ := storedBytes(t, kvs[1], agg)
		con, rev := storedBytes(t, kvs[0], agg)
		if !bytes.Equal(seq, w) {
			t.Errorf("%s sequential store:\n got %s\nwant %s", agg, seq, w)
		}
		if !bytes.Equal(con, w) {
			t.Errorf("seed %d: %s concurrent store:\n got %s\nwant %s", seed, agg, con, w)
		}
		// Applying what is already in a state writes nothing.
		for _, ev := range events {
			if ev.GetAggregateId() == agg {
				if err := concurrent.Apply(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, again := storedBytes(t, kvs[0], agg); again != rev {
			t.Errorf("%s: re-applying known events moved the revision from %d to %d", agg, rev, again)
		}
	}
}

func TestStoreGet(t *testing.T) {
	kv := newBuckets(t)[0]
	store := NewStore(kv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	enquiry := "lokalebasen/enquiry/sha256:0a0b3f9b480a23e5a194d68aefefc49e365e602eda841faafc003eb9252e1a58"
	otherTx := txChange("5a5a5a5a-0000-5000-8000-000000000000", "2026-11-22T10:00:00Z",
		leadstreamv1.TransactionStatus_TRANSACTION_STATUS_CREATED, leadstreamv1.TransactionStatus_TRANSACTION_STATUS_PENDING)
	otherTx.AggregateId = "mp-api/transaction/5551" // same id as invoice 5551
	events := append(history(), event("fd1cab40-1c3e-52cf-9be1-5ddad1e17408", "enquiry.created", enquiry, ""), otherTx)
	for _, ev := range events {
		if err := store.Apply(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		query     string
		aggregate string
		err       error
	}{
		{query: offerteLead, aggregate: offerteLead},
		{query: "offerte.lead.12345", aggregate: offerteLead},
		{query: "12345", aggregate: offerteLead},
		{query: "987654", aggregate: transaction},
		{query: "c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394", aggregate: conversation},
		{query: "sha256:0a0b3f9b480a23e5a194d68aefefc49e365e602eda841faafc003eb9252e1a58", aggregate: enquiry},
		{query: "5f1d7c2a-8e43-4b7e-9a51-0c6f2d9b3e10", aggregate: conversation},              // a Marktplaats lead id
		{query: "5a5a5a5a-0000-5000-8000-000000000000", aggregate: "mp-api/transaction/5551"}, // an event id
		{query: "5551", err: ErrAmbiguous},
		{query: "1234", err: ErrNotFound}, // a suffix of a key, not of its id
		{query: "offerte/lead/999", err: ErrNotFound},
		{query: "offerte.lead.999", err: ErrNotFound},
		{query: "no such thing?", err: ErrNotFound},
	}
	for _, tt := range tests {
		s, err := store.Get(ctx, tt.query)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("Get(%q) error %v, want %v", tt.query, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Get(%q): %v", tt.query, err)
			continue
		}
		if s.Aggregate != tt.aggregate {
			t.Errorf("Get(%q) = state of %q, want %q", tt.query, s.Aggregate, tt.aggregate)
		}
	}

	_, err := store.Get(ctx, "5551")
	for _, k := range []string{"offerte.invoice.5551", "mp-api.transaction.5551"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("ambiguous error %v does not name candidate %s", err, k)
		}
	}
}

func TestStoreApplyWithoutAggregate(t *testing.T) {
	store := NewStore(newBuckets(t)[0])
	ev := event("0f0f0f0f-0000-5000-8000-000000000000", "lead.created", "", "2026-11-20T09:00:00Z")
	if err := store.Apply(context.Background(), ev); !errors.Is(err, ErrNoAggregate) {
		t.Errorf("Apply error %v, want ErrNoAggregate", err)
	}
}
