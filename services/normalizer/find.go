package normalizer

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/streams"
)

// EventSequence says whether the event id of source was normalized, from the
// dedupe bucket, and where it is in EVENTS (0 when a redelivery found it
// there without publishing it again: its sequence was not recorded).
func EventSequence(ctx context.Context, js jetstream.JetStream, source, eventID string) (seq uint64, normalized bool, err error) {
	kv, err := js.KeyValue(ctx, streams.DedupeBucket)
	if err != nil {
		return 0, false, fmt.Errorf("dedupe bucket: %w", err)
	}
	e, err := kv.Get(ctx, dedupeKey(source, eventID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("dedupe bucket: %w", err)
	}
	seq, _ = strconv.ParseUint(string(e.Value()), 10, 64)
	return seq, true, nil
}
