package leads

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/natstest"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// newWriterBuckets starts a JetStream server and creates a leads bucket for
// each name, its stream taking atomic batches when atomic says so.
func newWriterBuckets(t *testing.T, atomic bool, names ...string) (jetstream.JetStream, []jetstream.KeyValue) {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []jetstream.KeyValue
	for _, name := range names {
		cfg := BucketConfig(1)
		cfg.Bucket = name
		kv, err := js.CreateKeyValue(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if atomic {
			st, err := js.Stream(ctx, "KV_"+name)
			if err != nil {
				t.Fatal(err)
			}
			sc := st.CachedInfo().Config
			sc.AllowAtomicPublish = true
			if _, err := js.UpdateStream(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, kv)
	}
	return js, out
}

// manyAggregates is history() over n copies of each of its aggregates,
// each copy with event ids of its own: enough aggregates in one batch for
// an atomic commit.
func manyAggregates(n int) []*leadstreamv1.Event {
	var out []*leadstreamv1.Event
	for i := range n {
		for _, ev := range history() {
			c := proto.Clone(ev).(*leadstreamv1.Event)
			c.AggregateId = fmt.Sprintf("%s-%d", c.AggregateId, i)
			c.Id = fmt.Sprintf("%s-%d", c.Id, i)
			out = append(out, c)
		}
	}
	return out
}

// batches cuts events into batches of random sizes up to max.
func batches(r *rand.Rand, events []*leadstreamv1.Event, max int) [][]*leadstreamv1.Event {
	var out [][]*leadstreamv1.Event
	for len(events) > 0 {
		n := min(1+r.IntN(max), len(events))
		out = append(out, events[:n])
		events = events[n:]
	}
	return out
}

func applyBatches(t *testing.T, w *Writer, bs [][]*leadstreamv1.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, b := range bs {
		for i, err := range w.Apply(ctx, b) {
			if err != nil {
				t.Fatalf("event %s: %v", b[i].GetId(), err)
			}
		}
	}
}

// TestWriterMatchesApply: events shuffled, duplicated and cut into batches
// of every size, from one event (pipelined writes) to more aggregates than
// an atomic commit needs, end up stored as the pure merge of all of them,
// byte for byte; so they do when the bucket's stream refuses atomic
// batches although the Writer was told it takes them (every such commit
// fails and its states are written one by one).
func TestWriterMatchesApply(t *testing.T) {
	for _, tc := range []struct {
		name             string
		atomic, streamOK bool
	}{
		{"atomic batches", true, true},
		{"pipelined only", false, false},
		{"atomic refused", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, kvs := newWriterBuckets(t, tc.streamOK, Bucket)
			events := manyAggregates(12)
			seed := testSeed(t)
			r := rand.New(rand.NewPCG(seed, 1))
			load := append(shuffled(r, events), shuffled(r, events[:len(events)/2])...)
			w := NewWriter(js, kvs[0], tc.atomic)
			applyBatches(t, w, batches(r, load, 4*atomicMin))
			for agg, want := range marshalAll(t, applyAll(events)) {
				if got, _ := storedBytes(t, kvs[0], agg); !bytes.Equal(got, want) {
					t.Errorf("seed %d: %s:\n got %s\nwant %s", seed, agg, got, want)
				}
			}
			// Each way of writing was taken where it should be, and a
			// batch's revisions were kept right: no write had to be made
			// again unless the stream refused the batches.
			t.Logf("states written: %+v", w.wrote)
			switch {
			case w.wrote.pipelined == 0:
				t.Errorf("no pipelined write: %+v", w.wrote)
			case tc.atomic && tc.streamOK && (w.wrote.atomic == 0 || w.wrote.again > 0):
				t.Errorf("atomic batches: %+v", w.wrote)
			case tc.atomic && !tc.streamOK && (w.wrote.atomic > 0 || w.wrote.again == 0):
				t.Errorf("atomic batches refused: %+v", w.wrote)
			case !tc.atomic && (w.wrote.atomic > 0 || w.wrote.again > 0):
				t.Errorf("pipelined only: %+v", w.wrote)
			}
		})
	}
}

// TestWriterWritesEachAggregateOnce: a batch with many events of one
// aggregate writes its state once, and a batch of events the stored state
// holds already writes nothing.
func TestWriterWritesEachAggregateOnce(t *testing.T) {
	js, kvs := newWriterBuckets(t, true, Bucket)
	w := NewWriter(js, kvs[0], true)
	var conv []*leadstreamv1.Event
	for _, ev := range history() {
		if ev.GetAggregateId() == conversation {
			conv = append(conv, ev)
		}
	}
	applyBatches(t, w, [][]*leadstreamv1.Event{conv})
	// The bucket's first write has revision 1.
	if _, rev := storedBytes(t, kvs[0], conversation); rev != 1 {
		t.Fatalf("%d events of one aggregate made %d writes, want 1", len(conv), rev)
	}
	applyBatches(t, w, [][]*leadstreamv1.Event{conv[:2]})
	// A Writer that knows nothing reads the state and finds them too.
	applyBatches(t, NewWriter(js, kvs[0], true), [][]*leadstreamv1.Event{conv[1:]})
	if _, again := storedBytes(t, kvs[0], conversation); again != 1 {
		t.Fatalf("re-applying known events moved the revision from 1 to %d", again)
	}
}

// TestWritersConcurrent: two Writers (two dispatcher processes sharing the
// projection's consumer) and a Store write the same keys at once, each
// from what it keeps or reads: compare-and-set makes every stale write fail
// and be made again, so no event is lost and the stored bytes are those of
// the merge of all events.
func TestWritersConcurrent(t *testing.T) {
	js, kvs := newWriterBuckets(t, true, Bucket)
	events := manyAggregates(8)
	seed := testSeed(t)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			applyBatches(t, NewWriter(js, kvs[0], true), batches(r, shuffled(r, events), 2*atomicMin))
		})
	}
	wg.Go(func() {
		r := rand.New(rand.NewPCG(seed, 2))
		store := NewStore(kvs[0])
		for _, ev := range shuffled(r, events)[:len(events)/3] {
			if err := store.Apply(context.Background(), ev); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	for agg, want := range marshalAll(t, applyAll(events)) {
		if got, _ := storedBytes(t, kvs[0], agg); !bytes.Equal(got, want) {
			t.Errorf("seed %d: %s:\n got %s\nwant %s", seed, agg, got, want)
		}
	}
}

// TestWriterStaleState: a state another writer changed since this Writer
// wrote it is not overwritten with what the Writer kept: its write fails,
// and it merges into the state as stored.
func TestWriterStaleState(t *testing.T) {
	js, kvs := newWriterBuckets(t, true, Bucket)
	conv := manyAggregates(1)[6:11] // the conversation: lead and chat messages
	w := NewWriter(js, kvs[0], true)
	applyBatches(t, w, [][]*leadstreamv1.Event{conv[:2]})
	if err := NewStore(kvs[0]).Apply(context.Background(), conv[2]); err != nil {
		t.Fatal(err)
	}
	applyBatches(t, w, [][]*leadstreamv1.Event{conv[3:]})
	agg := conv[0].GetAggregateId()
	want := mustMarshal(t, applyAll(conv)[agg])
	if got, _ := storedBytes(t, kvs[0], agg); !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", agg, got, want)
	}
}

// TestWriterErrors: only the events that cannot be stored fail, each with
// its reason, also in a batch with others of the same aggregate: one
// without aggregate id, and one whose state would exceed the server's
// max_payload.
func TestWriterErrors(t *testing.T) {
	js, kvs := newWriterBuckets(t, true, Bucket)
	w := NewWriter(js, kvs[0], true)
	conv := manyAggregates(1)[6:11]
	huge := proto.Clone(conv[2]).(*leadstreamv1.Event)
	huge.Id = "huge"
	huge.OccurredAt = ts("2026-11-21T00:00:00Z") // its text is the latest
	huge.GetChatMessage().Text = strings.Repeat("x", int(js.Conn().MaxPayload()))
	noAgg := proto.Clone(conv[3]).(*leadstreamv1.Event)
	noAgg.Id, noAgg.AggregateId = "no-aggregate", ""
	// Other aggregates, enough for an atomic commit.
	batch := append(manyAggregates(8)[len(history()):], conv[0], conv[1], huge, noAgg, conv[4])
	errs := w.Apply(context.Background(), batch)
	for i, err := range errs {
		switch batch[i].GetId() {
		case "huge":
			if !errors.Is(err, nats.ErrMaxPayload) {
				t.Errorf("huge event: error %v, want ErrMaxPayload", err)
			}
		case "no-aggregate":
			if !errors.Is(err, ErrNoAggregate) {
				t.Errorf("event without aggregate: error %v, want ErrNoAggregate", err)
			}
		default:
			if err != nil {
				t.Errorf("event %s: %v", batch[i].GetId(), err)
			}
		}
	}
	agg := conv[0].GetAggregateId()
	want := mustMarshal(t, applyAll([]*leadstreamv1.Event{conv[0], conv[1], conv[4]})[agg])
	if got, _ := storedBytes(t, kvs[0], agg); !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", agg, got, want)
	}
	if k := Key(agg); natskey.CheckKey(k) != nil {
		t.Fatalf("key %q: %v", k, natskey.CheckKey(k))
	}
}
