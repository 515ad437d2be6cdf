package leads

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/natskey"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/kvcas"
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
// (Create for a new key), retrying on a conflict with another writer (see
// kvcas.Update). An event already contained in the state changes no bytes
// and writes nothing.
//
// It returns ErrNoAggregate for an event without aggregate id,
// ErrContention when every attempt lost to other writers, and KV errors
// (including ctx's) wrapped.
func (s *Store) Apply(ctx context.Context, ev *leadstreamv1.Event) error {
	if ev.GetAggregateId() == "" {
		return fmt.Errorf("applying event %q: %w", ev.GetId(), ErrNoAggregate)
	}
	key := Key(ev.GetAggregateId())
	_, err := kvcas.Update(ctx, s.kv, key, func(old []byte) ([]byte, bool, error) {
		var cur *State
		if old != nil {
			var err error
			if cur, err = Unmarshal(old); err != nil {
				return nil, false, fmt.Errorf("reading state %s: %w", key, err)
			}
		}
		b, err := Marshal(Apply(cur, ev))
		if err != nil {
			return nil, false, err
		}
		return b, !bytes.Equal(b, old), nil
	})
	switch {
	case errors.Is(err, kvcas.ErrContention):
		return fmt.Errorf("applying event %q to %s: %d attempts: %w", ev.GetId(), key, kvcas.Attempts, ErrContention)
	case err != nil:
		return fmt.Errorf("applying event %q to %s: %w", ev.GetId(), key, err)
	}
	return nil
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
