package jsbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/embedded"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

func testStreamConfig() *config.Config {
	return &config.Config{
		MaxBodyBytes: 1 << 20,
		NATS:         config.NATS{Replicas: 1},
		Streams: config.Streams{
			RawMaxAge:          config.Dur(time.Hour),
			RawDuplicateWindow: config.Dur(2 * time.Minute),
		},
	}
}

func rawMsg(id string) *nats.Msg {
	return &nats.Msg{Subject: "raw.test.lead.src", Header: nats.Header{nats.MsgIdHdr: []string{id}}, Data: []byte(`{"id":"` + id + `"}`)}
}

func TestPublisherBatchesAndReportsDuplicates(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	ctx := context.Background()
	if err := streams.Ensure(ctx, js, streams.RawConfig(testStreamConfig())); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sizes []int
	p := New(js, Config{Observe: func(c Commit) { mu.Lock(); sizes = append(sizes, c.Size); mu.Unlock() }})
	defer p.Close()

	// A direct batch of fresh messages is committed as one atomic batch.
	var batch []*pending
	for i := range 5 {
		batch = append(batch, &pending{msg: rawMsg(fmt.Sprintf("a%d", i)), done: make(chan result, 1)})
	}
	p.commitAtomic(context.Background(), batch)
	for i, pd := range batch {
		if r := <-pd.done; r.err != nil || r.pub.Duplicate {
			t.Fatalf("batch message %d: %+v", i, r)
		}
	}
	// A batch holding two redeliveries (one of them twice) is refused by the
	// server as a whole; every message still gets its own answer.
	batch = nil
	for _, id := range []string{"a1", "b1", "a3", "b2", "a3"} {
		batch = append(batch, &pending{msg: rawMsg(id), done: make(chan result, 1)})
	}
	p.commitAtomic(context.Background(), batch)
	wantDup := []bool{true, false, true, false, true}
	for i, pd := range batch {
		r := <-pd.done
		if r.err != nil || r.pub.Duplicate != wantDup[i] {
			t.Fatalf("mixed batch message %d: got %+v, want duplicate=%v", i, r, wantDup[i])
		}
	}
	info, err := js.Stream(ctx, streams.RAW)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 7 {
		t.Fatalf("RAW holds %d messages, want 7 (a0-a4, b1, b2)", n)
	}
	for _, id := range []string{"b1", "b2"} {
		if _, err := js.PublishMsg(ctx, rawMsg(id)); err != nil {
			t.Fatal(err)
		}
	}

	// Concurrent callers: each answered after its own commit.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub, err := p.Publish(ctx, rawMsg(fmt.Sprintf("c%d", i)))
			if err == nil && pub.Duplicate {
				err = errors.New("fresh message reported duplicate")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	info, _ = js.Stream(ctx, streams.RAW)
	if n := info.CachedInfo().State.Msgs; n != 207 {
		t.Fatalf("RAW holds %d messages, want 207", n)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("commit sizes: %v", sizes)
}

func TestPublisherUnavailable(t *testing.T) {
	s := natstest.RunServer(t)
	_, js := natstest.Connect(t, s)
	// No stream behind the subject: nothing can be acknowledged.
	p := New(js, Config{Timeout: 500 * time.Millisecond})
	defer p.Close()
	_, err := p.Publish(context.Background(), rawMsg("x"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	var batch []*pending
	for i := range 3 {
		batch = append(batch, &pending{msg: rawMsg(fmt.Sprint(i)), done: make(chan result, 1)})
	}
	p.commitAtomic(context.Background(), batch)
	for _, pd := range batch {
		if r := <-pd.done; !errors.Is(r.err, ErrUnavailable) {
			t.Fatalf("batch: got %v, want ErrUnavailable", r.err)
		}
	}
	p.Close()
	// Never hangs and never succeeds once closed (select is random among
	// ready cases; this used to take the message and wait forever).
	for i := range 200 {
		if _, err := p.Publish(context.Background(), rawMsg(fmt.Sprint("y", i))); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("after Close: got %v, want ErrUnavailable", err)
		}
	}
}

// TestPublisherTooLarge: a message over the server's max_payload fails
// with ErrTooLarge at once and does not fail the batch it would have joined.
func TestPublisherTooLarge(t *testing.T) {
	ns, err := embedded.Start(embedded.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), MaxPayload: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	nc, js, err := natsconn.Connect(ns.ClientURL(), natsconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := testStreamConfig()
	cfg.MaxBodyBytes = 1 << 10
	if err := streams.Ensure(context.Background(), js, streams.RawConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	p := New(js, Config{})
	defer p.Close()
	huge := rawMsg("huge")
	huge.Data = make([]byte, 16<<10)
	errs := make(chan error, 9)
	for i := range 8 {
		go func() { _, err := p.Publish(context.Background(), rawMsg(fmt.Sprint("ok", i))); errs <- err }()
	}
	_, err = p.Publish(context.Background(), huge)
	if !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("huge message: %v, want ErrTooLarge only", err)
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Errorf("a message beside the huge one: %v", err)
		}
	}
}

// TestPublisherModes: whichever mode commits, every caller gets its own
// answer, the stream holds each message once, and a redelivery is flagged
// duplicate with the sequence of the message it repeats.
func TestPublisherModes(t *testing.T) {
	for _, mode := range []Mode{Adaptive, Atomic, Individual} {
		t.Run(mode.String(), func(t *testing.T) {
			s := natstest.RunServer(t)
			_, js := natstest.Connect(t, s)
			ctx := context.Background()
			if err := streams.Ensure(ctx, js, streams.RawConfig(testStreamConfig())); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			seen := map[bool]int{}
			p := New(js, Config{Mode: mode, Observe: func(c Commit) { mu.Lock(); seen[c.Atomic] += c.Size; mu.Unlock() }})
			defer p.Close()
			seqs := make([]uint64, 300)
			var wg sync.WaitGroup
			for i := range seqs {
				wg.Go(func() {
					pub, err := p.Publish(ctx, rawMsg(fmt.Sprintf("m%d", i)))
					if err != nil || pub.Duplicate {
						t.Errorf("m%d: %+v %v", i, pub, err)
					}
					seqs[i] = pub.Sequence
				})
			}
			wg.Wait()
			st, err := js.Stream(ctx, streams.RAW)
			if err != nil {
				t.Fatal(err)
			}
			if n := st.CachedInfo().State.Msgs; n != 300 {
				t.Fatalf("RAW holds %d messages, want 300", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[true]+seen[false] != 300 {
				t.Fatalf("commits held %v messages, want 300 in all", seen)
			}
			switch mode {
			case Individual:
				if seen[true] != 0 {
					t.Errorf("individual mode committed %d atomically", seen[true])
				}
				for i, seq := range seqs {
					if seq == 0 {
						t.Fatalf("m%d: no sequence from an individual publish", i)
					}
				}
			case Atomic:
				if seen[true] == 0 {
					t.Error("atomic mode made no atomic batch of 300 concurrent callers")
				}
			}
			// A redelivery of m7: flagged, with m7's sequence where known.
			pub, err := p.Publish(ctx, rawMsg("m7"))
			if err != nil || !pub.Duplicate {
				t.Fatalf("redelivery: %+v %v, want a duplicate", pub, err)
			}
			if seqs[7] != 0 && pub.Sequence != seqs[7] {
				t.Errorf("redelivery answered sequence %d, m7 has %d", pub.Sequence, seqs[7])
			}
		})
	}
}
