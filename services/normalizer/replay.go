package normalizer

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/tracing"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/normalizer/internal/mapping"
)

// ReplayFrom says where a replay starts in RAW: a sequence, or a time.
type ReplayFrom struct {
	Seq  uint64
	Time time.Time
}

// ReplayReport counts what a replay did.
type ReplayReport struct {
	// Read is how many RAW messages were read.
	Read int
	// Published is how many events were (re)published to EVENTS.
	Published int
	// Present is how many events EVENTS already held (nothing published).
	Present int
	// Failed is how many RAW messages could not be mapped (they are, or will
	// be, in DLQ from the consumer).
	Failed int
}

// Replay re-normalizes RAW from `from` on, for the given kinds (all when
// empty), into EVENTS. It is idempotent: event ids are deterministic, and an
// event EVENTS already holds is not published again, whatever the dedupe set
// says. So a replay over an intact EVENTS adds nothing, and after EVENTS was
// purged it rebuilds the same events (same ids, same content).
func (s *Service) Replay(ctx context.Context, from ReplayFrom, kinds []string) (*ReplayReport, error) {
	present, err := s.eventIDs(ctx)
	if err != nil {
		return nil, err
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case from.Seq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from.Seq
	case !from.Time.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from.Time
	}
	for _, k := range kinds {
		cfg.FilterSubjects = append(cfg.FilterSubjects, "raw.*."+k+".*")
	}
	rep := &ReplayReport{}
	err = streams.Read(ctx, s.js, streams.RAW, cfg, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		rep.Read++
		raw, err := envelope.FromMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		if err != nil {
			rep.Failed++
			return nil
		}
		ev, err := mapping.Map(raw, &leadstreamv1.RawRef{Stream: streams.RAW, Sequence: md.Sequence.Stream, Subject: m.Subject()})
		if err != nil {
			rep.Failed++
			return nil
		}
		if present[ev.Id] {
			rep.Present++
			return nil
		}
		// A replay is new work on an old webhook: its span is linked to the
		// webhook's trace, not part of it.
		pctx, span := tracing.Start(ctx, "replay "+raw.Kind, m.Headers(), true, trace.WithAttributes(attribute.String("leadstream.event_id", ev.Id)))
		err = s.publish(pctx, ev)
		span.End()
		if err != nil {
			return err
		}
		present[ev.Id] = true
		rep.Published++
		return nil
	})
	return rep, err
}

// publish publishes ev to EVENTS and records its id in the dedupe set.
//
// Without Nats-Msg-Id: the caller has looked into EVENTS already, and
// JetStream's duplicate window survives a purge, so the id would make the
// server drop exactly the events a replay after a purge must restore.
func (s *Service) publish(ctx context.Context, ev *leadstreamv1.Event) error {
	data, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encoding event %s: %w", ev.Id, err)
	}
	kind, action := mapping.Kind(ev.Type)
	msg := envelope.EventMsg(streams.EventsSubject(kind, action, ev.Tenant, ev.AggregateId), ev, data)
	msg.Header.Del(nats.MsgIdHdr)
	tracing.Inject(ctx, msg.Header)
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("publishing event %s: %w", ev.Id, err)
	}
	key := dedupeKey(ev.Source, ev.Id)
	if _, err := s.dedupe.Put(ctx, key, recordValue(ack.Sequence, msg.Subject)); err != nil {
		return fmt.Errorf("recording dedupe key: %w", err)
	}
	return nil
}

// eventIDs reads the id of every event in EVENTS (headers only).
func (s *Service) eventIDs(ctx context.Context) (map[string]bool, error) {
	ids := map[string]bool{}
	err := streams.Read(ctx, s.js, streams.EVENTS, jetstream.OrderedConsumerConfig{HeadersOnly: true}, func(m jetstream.Msg, _ *jetstream.MsgMetadata) error {
		// An id that does not decode is no event id a replay makes.
		if id, err := envelope.HeaderValue(m.Headers(), envelope.HdrCEID); err == nil {
			ids[id] = true
		}
		return nil
	})
	return ids, err
}

// ReplayDeadLetter normalizes a normalize-stage dead letter again (after a
// mapping fix, say). On success the letter is dropped from DLQ; on failure
// it stays, and the error says why.
func (s *Service) ReplayDeadLetter(ctx context.Context, seq uint64) (Outcome, error) {
	l, err := dlq.Get(ctx, s.js, seq)
	if err != nil {
		return 0, err
	}
	if l.Stage != dlq.StageNormalize {
		return 0, fmt.Errorf("dead letter %d is from stage %q, not %q", seq, l.Stage, dlq.StageNormalize)
	}
	raw, err := envelope.FromMsg(&nats.Msg{Subject: l.Subject, Header: l.Header, Data: l.Body})
	if err != nil {
		return 0, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	ref := &leadstreamv1.RawRef{Stream: streams.RAW, Sequence: l.Sequence, Subject: l.Subject}
	// As a redelivery from long ago: a look into EVENTS guards against a
	// second event if an earlier attempt got as far as publishing.
	// Linked to the webhook's trace (the letter keeps RAW's headers).
	pctx, span := tracing.Start(ctx, "dlq replay normalize", l.Header, true, trace.WithAttributes(attribute.String("leadstream.event_id", raw.EventID)))
	out, err := s.Process(pctx, raw, ref, time.Unix(0, 0), true)
	span.End()
	if err != nil {
		return 0, fmt.Errorf("dead letter %d still fails: %w", seq, err)
	}
	if err := dlq.Drop(ctx, s.js, seq); err != nil {
		return out, err
	}
	return out, nil
}
