package kvcas

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/natstest"
)

func newBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	_, js := natstest.Connect(t, natstest.RunServer(t))
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "cas", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// increment is a Change that adds one to a decimal counter.
func increment(cur []byte) ([]byte, bool, error) {
	n := 0
	if cur != nil {
		var err error
		if n, err = strconv.Atoi(string(cur)); err != nil {
			return nil, false, err
		}
	}
	return []byte(strconv.Itoa(n + 1)), true, nil
}

// TestConcurrentWritersLoseNoUpdate: writers incrementing the same counter
// at once, the first of them creating it, end with every increment in it.
func TestConcurrentWritersLoseNoUpdate(t *testing.T) {
	kv := newBucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := Update(ctx, kv, "counter", increment); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e, err := kv.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(e.Value()); got != strconv.Itoa(writers*each) {
		t.Fatalf("counter = %s after %d increments", got, writers*each)
	}
}

// TestGivesUpAfterItsBound: a key that another writer changes between
// every read and write is tried exactly the bound's number of times, then
// Update returns ErrContention, leaving the other writer's value.
func TestGivesUpAfterItsBound(t *testing.T) {
	kv := newBucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var calls atomic.Int32
	rival := func(cur []byte) ([]byte, bool, error) {
		n := calls.Add(1)
		if _, err := kv.Put(ctx, "hot", fmt.Appendf(nil, "rival %d", n)); err != nil {
			return nil, false, err
		}
		return []byte("mine"), true, nil
	}
	const bound = 5
	_, err := update(ctx, kv, "hot", bound, rival)
	if !errors.Is(err, ErrContention) {
		t.Fatalf("err = %v, want ErrContention", err)
	}
	if n := calls.Load(); n != bound {
		t.Fatalf("change called %d times, want %d", n, bound)
	}
	e, err := kv.Get(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(e.Value()); got != fmt.Sprintf("rival %d", bound) {
		t.Fatalf("hot = %q, want the rival's last write", got)
	}
}

// TestChangeDecides: a change that writes nothing leaves the revision, and
// one that fails returns its error unwrapped without writing.
func TestChangeDecides(t *testing.T) {
	kv := newBucket(t)
	ctx := context.Background()
	rev, err := Update(ctx, kv, "k", func(cur []byte) ([]byte, bool, error) {
		if cur != nil {
			t.Errorf("a new key's current value is %q, want nil", cur)
		}
		return []byte("v1"), true, nil
	})
	if err != nil || rev == 0 {
		t.Fatalf("creating: revision %d, %v", rev, err)
	}
	if got, err := Update(ctx, kv, "k", func([]byte) ([]byte, bool, error) { return nil, false, nil }); got != 0 || err != nil {
		t.Fatalf("unchanged: revision %d, %v; want 0, nil", got, err)
	}
	boom := errors.New("boom")
	if _, err := Update(ctx, kv, "k", func([]byte) ([]byte, bool, error) { return []byte("v2"), true, boom }); err != boom {
		t.Fatalf("err = %v, want the change's own", err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision() != rev || string(e.Value()) != "v1" {
		t.Fatalf("k = %q at revision %d, want v1 at %d", e.Value(), e.Revision(), rev)
	}
}
