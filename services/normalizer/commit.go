package normalizer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/jsbatch"
	"github.com/leadstream/leadstream/pkg/streams"
)

// Both writes of a normalization, the event and then its dedupe record, go
// through a group commit (pkg/jsbatch): the handlers of every kind in this
// process write concurrently, and what they write while a commit is in
// flight leaves together in the next, as one atomic batch where that is
// cheaper. With a sync before every ack, one sync then stores many events.
// Each handler still waits for its own event's acknowledgement before it
// writes the record, and for the record's before it acks RAW: batching
// changes how writes travel, not their order.

// dedupeStream is the dedupe bucket's stream, and dedupePrefix the subject
// prefix of its keys.
const (
	dedupeStream = "KV_" + streams.DedupeBucket
	dedupePrefix = "$KV." + streams.DedupeBucket + "."
)

// startCommits starts the group commits of EVENTS and of the dedupe bucket,
// in mode; Adaptive picks the cheaper way for each commit. A stream that
// does not take atomic batches (not provisioned by this version) is written
// by individual publishes, pipelined: slower, and just as safe.
func (s *Service) startCommits(ctx context.Context, mode jsbatch.Mode) error {
	pubs := make([]*jsbatch.Publisher, 0, 2)
	for _, name := range []string{streams.EVENTS, dedupeStream} {
		st, err := s.js.Stream(ctx, name)
		if err != nil {
			for _, p := range pubs {
				p.Close()
			}
			return fmt.Errorf("normalizer: stream %s: %w", name, err)
		}
		streamMode := mode
		if !st.CachedInfo().Config.AllowAtomicPublish && mode != jsbatch.Individual {
			streamMode = jsbatch.Individual
			s.log.Warn("stream takes no atomic batches, publishing one by one: run leadstream provision", zap.String("stream", name))
		}
		label := "events"
		if name == dedupeStream {
			label = "dedupe"
		}
		pubs = append(pubs, jsbatch.New(s.js, jsbatch.Config{
			// A handler gives up at its timeout; a commit outliving it only
			// holds up the commits behind it.
			Timeout: s.cfg.Normalizer.HandlerTimeout.Duration,
			Mode:    streamMode,
			Observe: func(c jsbatch.Commit) { s.metrics.observeCommit(label, c) },
		}))
	}
	s.events, s.records = pubs[0], pubs[1]
	s.recordTTL = ttlHeader(s.cfg.DedupeTTL.Duration)
	return nil
}

// Close stops the group commits, whose writes still waiting fail as
// transient errors (their messages are redelivered), and closes the dedupe
// bucket's reading connection. Call it after Run has returned; Process
// fails once it is called.
func (s *Service) Close() {
	s.events.Close()
	s.records.Close()
	if s.readConn != nil {
		s.readConn.Close()
	}
}

// publishEvent stores msg in EVENTS through the group commit. An error
// wrapping a *deadLetter means msg can never be stored.
func (s *Service) publishEvent(ctx context.Context, msg *nats.Msg) (jsbatch.Published, error) {
	pub, err := s.commit(ctx, s.events, msg)
	switch {
	case err == nil:
		return pub, nil
	case errors.Is(err, jsbatch.ErrTooLarge), tooLarge(err):
		// Over the server's max_payload, or EVENTS' max_msg_size.
		return pub, &deadLetter{reason: "too_large", err: fmt.Errorf("publishing event: %w", err)}
	default:
		return pub, fmt.Errorf("publishing event: %w", err)
	}
}

// remember records key in the dedupe bucket, for the event on subject at
// EVENTS sequence seq (0: not known), and returns once the record is
// durable.
//
// The record is a plain put with the key's TTL (Nats-TTL), not a KV Create:
// Create's expected-last-sequence check would make an atomic batch holding
// two records of one key (two deliveries of one event, handled at once)
// fail as a whole. Nothing is lost by the put: the record is written only
// once the event is in EVENTS, so two records of a key say the same thing,
// and the later one only starts the TTL again.
func (s *Service) remember(ctx context.Context, key string, seq uint64, subject string) error {
	if _, err := s.commit(ctx, s.records, recordMsg(key, seq, subject, s.recordTTL)); err != nil {
		return fmt.Errorf("recording dedupe key: %w", err)
	}
	return nil
}

// commit stores msg through the group commit p. When JetStream refused the
// commit (an API error: it answered, and stored none of it), msg is
// published once more on its own: an atomic batch is refused as a whole
// for any one message in it (one event over EVENTS' max_msg_size, say), and
// alone each message gets its own answer. That is safe for the events too:
// a second publish of one that was stored is a duplicate to JetStream.
func (s *Service) commit(ctx context.Context, p *jsbatch.Publisher, msg *nats.Msg) (jsbatch.Published, error) {
	pub, err := p.Publish(ctx, msg)
	var apiErr *jetstream.APIError
	if err == nil || !errors.As(err, &apiErr) {
		return pub, err
	}
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return jsbatch.Published{}, err
	}
	return jsbatch.Published{Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// recordMsg is the dedupe record of key; ttl is its Nats-TTL value
// (ttlHeader), "" to leave it to the bucket's max age.
func recordMsg(key string, seq uint64, subject string, ttl string) *nats.Msg {
	m := &nats.Msg{Subject: dedupePrefix + key, Data: recordValue(seq, subject)}
	if ttl != "" {
		m.Header = nats.Header{jetstream.MsgTTLHeader: []string{ttl}}
	}
	return m
}

// ttlHeader is the Nats-TTL value of a per-key TTL, "" for none.
func ttlHeader(ttl time.Duration) string {
	if ttl <= 0 {
		return ""
	}
	return ttl.String()
}

// recordValue is a dedupe record's value: the event's EVENTS sequence and
// its subject, "<seq> <subject>". An atomic batch's acknowledgement names
// only its last sequence, so seq may be 0: the subject then still leads to
// the event (EventSequence). Records from before subjects were kept hold
// only the sequence.
func recordValue(seq uint64, subject string) []byte {
	return []byte(strconv.FormatUint(seq, 10) + " " + subject)
}

// parseRecord reads a dedupe record's value, of either form.
func parseRecord(v []byte) (seq uint64, subject string) {
	n, subject, _ := strings.Cut(string(v), " ")
	seq, _ = strconv.ParseUint(n, 10, 64)
	return seq, subject
}
