// Package kvcas changes a JetStream KV entry by compare-and-set: read the
// value and its revision, compute the new value, and write it only if the
// key is still at that revision, starting over when another writer got
// there first. Several dispatcher processes write the same keys (the
// ordering state in dispatch, the projection in leads), and neither may
// lose the other's update.
//
// It lives under services/dispatcher/internal because its users are the
// dispatcher and its leads projection only; pkg holds what two services
// share.
package kvcas

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/backoff"
)

// ErrContention is returned by Update when every attempt lost to another
// writer of the same key. It is transient: the caller retries later.
var ErrContention = errors.New("too many concurrent updates of one key")

// Attempts bounds Update's tries. Every lost attempt is another writer's
// successful write, so running out takes that many concurrent writes to one
// key during one Update.
const Attempts = 100

// Change computes a key's next value from its current one (nil when the key
// does not exist). It returns write false to leave the key as it is, and an
// error to give up: Update returns that error as it is.
type Change func(current []byte) (next []byte, write bool, err error)

// Update applies change to key's current value and writes the result if no
// other writer changed the key in between (Create for a key that does not
// exist), else waits a jittered, growing pause and starts over, at most
// Attempts times. It returns the revision written (0 when change wrote
// nothing), ErrContention wrapped once the attempts are spent, change's
// error, and KV errors (ctx's included) wrapped.
func Update(ctx context.Context, kv jetstream.KeyValue, key string, change Change) (uint64, error) {
	return update(ctx, kv, key, Attempts, change)
}

func update(ctx context.Context, kv jetstream.KeyValue, key string, attempts int, change Change) (uint64, error) {
	for attempt := range attempts {
		if attempt > 0 {
			if err := Backoff(ctx, attempt); err != nil {
				return 0, fmt.Errorf("updating %s: %w", key, err)
			}
		}
		var (
			cur []byte
			rev uint64
		)
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return 0, fmt.Errorf("reading %s: %w", key, err)
		default:
			cur, rev = e.Value(), e.Revision()
		}
		next, write, err := change(cur)
		if err != nil || !write {
			return 0, err
		}
		if rev == 0 {
			rev, err = kv.Create(ctx, key, next)
		} else {
			rev, err = kv.Update(ctx, key, next, rev)
		}
		if err == nil {
			return rev, nil
		}
		if !Conflict(err) {
			return 0, fmt.Errorf("writing %s: %w", key, err)
		}
	}
	return 0, fmt.Errorf("updating %s: %d attempts lost to other writers: %w", key, attempts, ErrContention)
}

// Conflict reports whether a write failed because another writer changed
// the key first (a Create of a key that exists, an Update at a revision
// that is no longer the last). nats.go maps both server codes to its
// sentinels; the codes are checked too so that a client which does not map
// them still retries.
func Conflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Backoff waits a jittered, exponentially growing pause (1ms up to 100ms)
// before retry number attempt (1 for the first), or until ctx ends, so
// that writers that collided do not collide again in lockstep. Update uses
// it; so can callers that make their own compare-and-set loop.
func Backoff(ctx context.Context, attempt int) error {
	ceiling := backoff.Exponential(time.Millisecond, 100*time.Millisecond, attempt)
	t := time.NewTimer(rand.N(ceiling) + time.Millisecond/2)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
