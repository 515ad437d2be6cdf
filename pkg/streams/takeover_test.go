package streams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// A holder that died with messages unacknowledged: TakeOver makes them
// deliverable at once, although AckWait is an hour.
func TestTakeOverRedeliversWhatADeadHolderHeld(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	cons := setup(ctx, t, js, 10)

	// The holder takes six messages and dies without acking: its connection closes.
	dead, djs := natstest.Connect(t, srv)
	dc, err := djs.Consumer(ctx, "S", "C")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := dc.Fetch(6, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		if n < 2 {
			_ = m.DoubleAck(ctx) // acked: the floor moves to 2
		}
		n++
	}
	if n != 6 {
		t.Fatalf("holder fetched %d messages, want 6", n)
	}
	dead.Close()

	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumWaiting != 0 {
			return fmt.Errorf("server still sees %d pull requests of the dead holder", info.NumWaiting)
		}
		return nil
	})
	upTo, err := streams.TakeOver(ctx, js, "S", "C")
	if err != nil {
		t.Fatal(err)
	}
	if upTo != 6 {
		t.Fatalf("TakeOver returned %d, want 6 (the last sequence delivered)", upTo)
	}
	// Everything after the ack floor comes at once, from sequence 3 on.
	got := fetchSeqs(t, cons, 8)
	if len(got) != 8 || got[0] != 3 || got[7] != 10 {
		t.Fatalf("after the take-over got sequences %v, want 3..10", got)
	}
}

// A live holder keeps what it holds: TakeOver leaves the consumer alone.
func TestTakeOverLeavesALiveHolderAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	cons := setup(ctx, t, js, 4)

	_, ljs := natstest.Connect(t, srv)
	lc, err := ljs.Consumer(ctx, "S", "C")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := lc.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}
	// The live holder waits for more: a pull request is pending.
	cc, err := lc.Consume(func(jetstream.Msg) {}, jetstream.PullMaxMessages(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	natstest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumWaiting == 0 {
			return fmt.Errorf("no pull request pending yet")
		}
		return nil
	})
	before, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	upTo, err := streams.TakeOver(ctx, js, "S", "C")
	if err != nil {
		t.Fatal(err)
	}
	after, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if upTo != 0 || after.NumAckPending < before.NumAckPending || after.Delivered.Stream < before.Delivered.Stream {
		t.Fatalf("TakeOver reset a consumer with a live holder: returned %d, ack pending %d -> %d, delivered %d -> %d",
			upTo, before.NumAckPending, after.NumAckPending, before.Delivered.Stream, after.Delivered.Stream)
	}
}

func setup(ctx context.Context, t *testing.T, js jetstream.JetStream, n int) jetstream.Consumer {
	t.Helper()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "S", jetstream.ConsumerConfig{
		Durable: "C", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Hour, MaxAckPending: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := js.Publish(ctx, fmt.Sprintf("s.%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	return cons
}

func fetchSeqs(t *testing.T, cons jetstream.Consumer, n int) []uint64 {
	t.Helper()
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, md.Sequence.Stream)
		_ = m.Ack()
	}
	return seqs
}

// TestEnsureKVLeaderReads: the bucket's stream answers no direct gets, also
// after a second ensure (which nats.go's CreateOrUpdateKeyValue would turn
// back on), and the handle it returns reads what was just written.
func TestEnsureKVLeaderReads(t *testing.T) {
	ctx := context.Background()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	kvc := jetstream.KeyValueConfig{Bucket: "b", History: 1}
	for range 2 {
		kv, err := streams.EnsureKVLeaderReads(ctx, js, kvc)
		if err != nil {
			t.Fatal(err)
		}
		st, err := js.Stream(ctx, "KV_b")
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.AllowDirect {
			t.Fatal("KV_b still answers direct gets")
		}
		if _, err := kv.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if e, err := kv.Get(ctx, "k"); err != nil || string(e.Value()) != "v" {
			t.Fatalf("Get after Put: %v %v", e, err)
		}
	}
}
