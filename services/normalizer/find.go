package normalizer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/streams"
)

// EventSequence says whether the event id of source was normalized, from the
// dedupe bucket, and where it is in EVENTS (0 when EVENTS no longer holds
// it, or for a record from an older version that did not know it).
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
	seq, subject := parseRecord(e.Value())
	if seq > 0 || subject == "" {
		return seq, true, nil
	}
	// Stored by an atomic batch, whose acknowledgement names only its last
	// sequence. The record followed the event within one handler's run; an
	// hour before the record is ample, and the scan covers one aggregate's
	// subject.
	seq, _, err = findEvent(ctx, js, subject, eventID, e.Created().Add(-time.Hour))
	if err != nil {
		return 0, true, err
	}
	return seq, true, nil
}

// findEvent looks for event id on subject in EVENTS, from a minute before
// since on, and returns its sequence when found. Only a redelivery past the
// duplicate window (and `leadstream trace`) asks, so the scan is rare and
// covers one subject from the RAW message's time on.
func findEvent(ctx context.Context, js jetstream.JetStream, subject, id string, since time.Time) (seq uint64, found bool, err error) {
	start := since.Add(-time.Minute)
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
		HeadersOnly:    true,
	}
	err = streams.Read(ctx, js, streams.EVENTS, cfg, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		if got, _ := envelope.HeaderValue(m.Headers(), envelope.HdrCEID); got == id {
			seq, found = md.Sequence.Stream, true
			return streams.ErrStop
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("looking for event in EVENTS: %w", err)
	}
	return seq, found, nil
}
