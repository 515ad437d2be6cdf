package leads

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/natskey"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// Bucket is the name of the KV bucket holding the projection.
const Bucket = "leads"

// BucketConfig is the configuration of the projection's bucket: file
// storage, no TTL, one revision per key (the state is a merge of all events,
// so older revisions hold nothing the latest does not).
func BucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "leadstream dispatcher: order-independent current state per aggregate",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	}
}

// maxAttempts bounds Store.Apply's compare-and-set retries. Every lost
// attempt is another writer's successful write, so running out takes that
// many concurrent writes to one aggregate during one Apply.
const maxAttempts = 100

// Store keeps States in a KV bucket. It is safe for concurrent use, also by
// several processes on the same bucket.
type Store struct {
	kv jetstream.KeyValue
}

// NewStore returns a Store over kv (created with BucketConfig).
func NewStore(kv jetstream.KeyValue) *Store {
	return &Store{kv: kv}
}

// Apply merges ev into its aggregate's stored state. It reads the state and
// its revision, merges, and writes only if the revision is still current
// (Create for a new key), retrying on a conflict with another writer. An
// event already contained in the state changes no bytes and writes nothing.
//
// It returns ErrNoAggregate for an event without aggregate id,
// ErrContention when every attempt lost to other writers, and KV errors
// (including ctx's) wrapped.
func (s *Store) Apply(ctx context.Context, ev *leadstreamv1.Event) error {
	if ev.GetAggregateId() == "" {
		return fmt.Errorf("applying event %q: %w", ev.GetId(), ErrNoAggregate)
	}
	key := Key(ev.GetAggregateId())
	for attempt := range maxAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return fmt.Errorf("applying event %q to %s: %w", ev.GetId(), key, err)
			}
		}
		var (
			cur *State
			old []byte
			rev uint64
		)
		entry, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("reading state %s: %w", key, err)
		default:
			old, rev = entry.Value(), entry.Revision()
			if cur, err = Unmarshal(old); err != nil {
				return fmt.Errorf("reading state %s: %w", key, err)
			}
		}
		b, err := Marshal(Apply(cur, ev))
		if err != nil {
			return fmt.Errorf("applying event %q to %s: %w", ev.GetId(), key, err)
		}
		if rev != 0 && bytes.Equal(b, old) {
			return nil
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, b)
		} else {
			_, err = s.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("writing state %s: %w", key, err)
		}
	}
	return fmt.Errorf("applying event %q to %s: %d attempts: %w", ev.GetId(), key, maxAttempts, ErrContention)
}

// backoff waits a jittered, exponentially growing pause (1ms up to 100ms)
// so that writers that collided do not collide again in lockstep.
func backoff(ctx context.Context, attempt int) error {
	ceiling := min(time.Millisecond<<min(attempt-1, 7), 100*time.Millisecond)
	t := time.NewTimer(rand.N(ceiling) + time.Millisecond/2)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Get returns the stored state named by aggregateOrKey, which is one of:
//   - an aggregate id, "offerte/lead/12345";
//   - a key, "offerte.lead.12345";
//   - the id part alone, "12345": the one aggregate whose key ends in
//     "."+Key(id). This lists every key in the bucket, so it is meant for
//     operators, not for the hot path;
//   - else a lead id ("lead.leadId", e.g. a Marktplaats lead id, whose
//     aggregate is its conversation) or an event id merged into the state:
//     this reads every state in the bucket.
//
// It returns ErrNotFound when nothing matches and ErrAmbiguous, naming the
// candidates, when a bare id matches several aggregates.
func (s *Store) Get(ctx context.Context, aggregateOrKey string) (*State, error) {
	key := aggregateOrKey
	if strings.Contains(aggregateOrKey, "/") {
		key = Key(aggregateOrKey)
	}
	st, err := s.get(ctx, key)
	if !errors.Is(err, ErrNotFound) || strings.Contains(aggregateOrKey, "/") {
		return st, err
	}
	key, err = s.keyBySuffix(ctx, "."+Key(aggregateOrKey))
	if errors.Is(err, ErrNotFound) {
		key, err = s.keyByContent(ctx, aggregateOrKey)
	}
	if err != nil {
		return nil, fmt.Errorf("looking up %q: %w", aggregateOrKey, err)
	}
	return s.get(ctx, key)
}

// keyByContent returns the key of the one state whose lead id is id or that
// merged the event with id id.
func (s *Store) keyByContent(ctx context.Context, id string) (string, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return "", fmt.Errorf("reading states: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var matches []string
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return "", fmt.Errorf("reading states: %w", ctx.Err())
		}
		if e == nil {
			break // every current value is in
		}
		st, err := Unmarshal(e.Value())
		if err != nil {
			continue
		}
		if st.Fields["lead.leadId"].Value == id || slices.Contains(st.Events, id) {
			matches = append(matches, e.Key())
		}
	}
	switch len(matches) {
	case 0:
		return "", ErrNotFound
	case 1:
		return matches[0], nil
	}
	slices.Sort(matches)
	return "", fmt.Errorf("%w: %s", ErrAmbiguous, strings.Join(matches, ", "))
}

func (s *Store) get(ctx context.Context, key string) (*State, error) {
	// An operator's or an admin request's id becomes the key here: one NATS
	// would refuse (or close the connection over) names no state.
	if err := natskey.CheckKey(key); err != nil {
		return nil, fmt.Errorf("reading state: %w: %w", ErrNotFound, err)
	}
	entry, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrInvalidKey):
		return nil, fmt.Errorf("reading state %s: %w", key, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("reading state %s: %w", key, err)
	}
	st, err := Unmarshal(entry.Value())
	if err != nil {
		return nil, fmt.Errorf("reading state %s: %w", key, err)
	}
	return st, nil
}

// keyBySuffix returns the one key that ends in suffix.
func (s *Store) keyBySuffix(ctx context.Context, suffix string) (string, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("listing keys: %w", err)
	}
	var matches []string
	// Drain the channel whatever we find: the lister's goroutine blocks on
	// it otherwise.
	for k := range lister.Keys() {
		if strings.HasSuffix(k, suffix) {
			matches = append(matches, k)
		}
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("listing keys: %w", err)
	}
	slices.Sort(matches)
	matches = slices.Compact(matches)
	switch len(matches) {
	case 0:
		return "", ErrNotFound
	case 1:
		return matches[0], nil
	}
	return "", fmt.Errorf("%w: %s", ErrAmbiguous, strings.Join(matches, ", "))
}
