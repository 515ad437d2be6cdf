// Package normalizer turns RAW webhooks into leadstream.v1 events: one
// watermill handler per event kind, each on its own durable JetStream
// consumer, mapping provider payloads to the normalized model, deduping on
// event id in two phases (publish with Nats-Msg-Id, then record the key,
// then ack) and dead-lettering what it cannot map.
package normalizer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/jsbatch"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/tracing"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/normalizer/internal/mapping"
)

// Options are the normalizer's dependencies.
type Options struct {
	// Config is the validated configuration.
	Config *config.Config
	// URL is the NATS URL; each kind's subscriber opens its own connection,
	// so one kind draining never stops another.
	URL string
	// JetStream publishes events and dead letters, and reads the dedupe
	// bucket when URL is empty (else New reads it on a connection of its
	// own).
	JetStream jetstream.JetStream
	// Logger is required.
	Logger *zap.Logger
	// Registry receives metrics; nil makes a private one.
	Registry prometheus.Registerer
	// Kinds to consume; empty means all (envelope.Kinds).
	Kinds []string
}

// Service is a running set of normalizer consumers.
type Service struct {
	cfg    *config.Config
	url    string
	js     jetstream.JetStream
	log    *zap.Logger
	kinds  []string
	dedupe jetstream.KeyValue
	// seen is the dedupe bucket read on a connection of its own (readConn;
	// nil when s.js's is used): see New.
	seen     jetstream.KeyValue
	readConn *nats.Conn
	metrics  *metrics
	now      func() time.Time

	// events and records are the group commits of EVENTS and of the dedupe
	// bucket (commit.go).
	events, records *jsbatch.Publisher
	// recordTTL is the dedupe records' Nats-TTL header value.
	recordTTL string

	// Test hooks: a fault after the EVENTS publish, or after the dedupe
	// write, stands for a crash at that point (the message is not acked);
	// beforePublish runs just before the event joins the group commit.
	afterPublish, afterDedupe func(eventID string) error
	beforePublish             func(eventID string)
}

// New validates o and binds to the topology `leadstream provision` made
// (Provision): EVENTS, DLQ, the dedupe bucket and the durable consumer of
// every kind it runs. What is missing is named in an error wrapping
// streams.ErrNotProvisioned; nothing is created here. Close releases it.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Config == nil || o.JetStream == nil || o.Logger == nil {
		return nil, errors.New("normalizer: Config, JetStream and Logger are required")
	}
	kinds, err := kindsOf(o.Kinds)
	if err != nil {
		return nil, err
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s := &Service{cfg: o.Config, url: o.URL, js: o.JetStream, log: o.Logger, kinds: kinds, metrics: newMetrics(o.Registry), now: time.Now}
	need := streams.Need{Streams: []string{streams.RAW, streams.EVENTS, streams.DLQ}, Buckets: []string{streams.DedupeBucket}}
	for _, k := range kinds {
		need.Consumers = append(need.Consumers, [2]string{streams.RAW, Durable(k)})
	}
	if err := need.Check(ctx, s.js); err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	kv, err := s.js.KeyValue(ctx, streams.DedupeBucket)
	if err != nil {
		return nil, fmt.Errorf("normalizer: %w", err)
	}
	s.dedupe, s.seen = kv, kv
	// nats-server answers a direct get within the reading connection's own
	// read loop, and a get waits while the bucket's stream stores a write:
	// on the connection that publishes the events, every dedupe read would
	// hold up the publishes behind it for as long as a commit of the
	// bucket takes.
	if o.URL != "" {
		nc, js, err := natsconn.Connect(o.URL, natsconn.Options{Name: "leadstream-normalizer-dedupe", CredsFile: o.Config.NATS.CredsFile, Logger: o.Logger})
		if err != nil {
			return nil, fmt.Errorf("normalizer: %w", err)
		}
		if s.seen, err = js.KeyValue(ctx, streams.DedupeBucket); err != nil {
			nc.Close()
			return nil, fmt.Errorf("normalizer: %w", err)
		}
		s.readConn = nc
	}
	if err := s.startCommits(ctx, jsbatch.Adaptive); err != nil {
		if s.readConn != nil {
			s.readConn.Close()
		}
		return nil, err
	}
	return s, nil
}

// Provision creates or updates what the normalizer of kinds (all when
// empty) uses, as cfg describes it: EVENTS, DLQ, the dedupe bucket and a
// durable consumer per kind on RAW (which must exist). `leadstream
// provision` calls it; the services only bind.
func Provision(ctx context.Context, js jetstream.JetStream, cfg *config.Config, kinds []string) error {
	kinds, err := kindsOf(kinds)
	if err != nil {
		return err
	}
	if err := streams.Ensure(ctx, js, streams.EventsConfig(cfg), streams.DLQConfig(cfg)); err != nil {
		return err
	}
	if _, err := streams.EnsureKV(ctx, js, streams.DedupeConfig(cfg)); err != nil {
		return err
	}
	if err := streams.AllowAtomicPublish(ctx, js, streams.DedupeBucket); err != nil {
		return err
	}
	for _, k := range kinds {
		if _, err := js.CreateOrUpdatePushConsumer(ctx, streams.RAW, consumerConfig(cfg, k)); err != nil {
			return fmt.Errorf("normalizer: consumer for %s: %w", k, err)
		}
	}
	return nil
}

// kindsOf checks kinds, and gives every kind for none.
func kindsOf(kinds []string) ([]string, error) {
	if len(kinds) == 0 {
		return envelope.Kinds, nil
	}
	for _, k := range kinds {
		if !slices.Contains(envelope.Kinds, k) {
			return nil, fmt.Errorf("normalizer: unknown kind %q (want some of %v)", k, envelope.Kinds)
		}
	}
	return kinds, nil
}

// Durable is the name of a kind's durable consumer on RAW; it is also its
// queue group, so instances of one kind share the work.
func Durable(kind string) string { return "normalizer-" + kind }

func consumerConfig(cfg *config.Config, kind string) jetstream.ConsumerConfig {
	n := cfg.Normalizer
	return jetstream.ConsumerConfig{
		Durable:        Durable(kind),
		Description:    "leadstream normalizer for kind " + kind,
		FilterSubject:  "raw.*." + kind + ".*",
		DeliverSubject: "leadstream.deliver." + Durable(kind),
		DeliverGroup:   Durable(kind),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        n.AckWait.Duration,
		MaxDeliver:     n.MaxDeliver,
		MaxAckPending:  n.MaxAckPending,
		ReplayPolicy:   jetstream.ReplayInstantPolicy,
	}
}

// Outcome is what processing did with one RAW message.
type Outcome int

const (
	// Normalized: the event was published to EVENTS.
	Normalized Outcome = iota
	// Deduplicated: the event was already in EVENTS; nothing was published.
	Deduplicated
)

// deadLetter marks an error that no retry will cure: the message goes to
// DLQ with reason.
type deadLetter struct {
	reason string
	err    error
}

func (d *deadLetter) Error() string { return d.err.Error() }
func (d *deadLetter) Unwrap() error { return d.err }

// Process normalizes one RAW message: skip it when its event id is in the
// dedupe set, else map it, publish it to EVENTS with Nats-Msg-Id = event id,
// then record the id. The caller acks only after Process returns nil, so a
// crash anywhere before that means a redelivery, which the JetStream window,
// the dedupe set or (past the window) a look into EVENTS turns into a no-op.
// Both writes go through group commits shared by all of the service's
// handlers (commit.go); each waits for its own acknowledgement, so the
// order (event stored, then record, then ack) holds for every message.
//
// stored is when RAW stored the message and redelivered says whether it was
// delivered before. An error wrapping a *deadLetter must be dead-lettered;
// any other error is transient.
func (s *Service) Process(ctx context.Context, raw *envelope.Raw, ref *leadstreamv1.RawRef, stored time.Time, redelivered bool) (Outcome, error) {
	key := dedupeKey(raw.Source, raw.EventID)
	if _, err := s.seen.Get(ctx, key); err == nil {
		return Deduplicated, nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("reading dedupe key: %w", err)
	}
	ev, err := mapping.Map(raw, ref)
	if err != nil {
		return 0, &deadLetter{reason: mapping.Reason(err), err: err}
	}
	kind, action := mapping.Kind(ev.Type)
	subject := streams.EventsSubject(kind, action, ev.Tenant, ev.AggregateId)
	if err := natskey.CheckSubject(subject); err != nil {
		// The tenant comes from the envelope; the edge writes a configured
		// one, so this is a RAW message written by something else.
		return 0, &deadLetter{reason: "bad_envelope", err: fmt.Errorf("EVENTS subject from the envelope's tenant: %w", err)}
	}

	// An earlier attempt may have published and then crashed before the
	// dedupe write. Within EVENTS' duplicate window JetStream drops the
	// second publish; past it, look.
	if redelivered && s.now().Sub(stored) > s.cfg.Streams.EventsDuplicateWindow.Duration {
		seq, found, err := findEvent(ctx, s.js, subject, ev.Id, stored)
		if err != nil {
			return 0, err
		}
		if found {
			return Deduplicated, s.remember(ctx, key, seq, subject)
		}
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return 0, &deadLetter{reason: "unmarshalable", err: fmt.Errorf("encoding event: %w", err)}
	}
	msg := envelope.EventMsg(subject, ev, data)
	tracing.Inject(ctx, msg.Header) // the webhook's trace goes on to the dispatchers
	// An event carries the RAW body and its typed data, about twice the
	// body, so a body that fit in RAW may not fit the server's max_payload
	// here, and no retry would change that: publishEvent says so with a
	// *deadLetter.
	if s.beforePublish != nil {
		s.beforePublish(ev.Id)
	}
	ack, err := s.publishEvent(ctx, msg)
	if err != nil {
		return 0, err
	}
	if s.afterPublish != nil {
		if err := s.afterPublish(ev.Id); err != nil {
			return 0, err
		}
	}
	if err := s.remember(ctx, key, ack.Sequence, subject); err != nil {
		return 0, err
	}
	if s.afterDedupe != nil {
		if err := s.afterDedupe(ev.Id); err != nil {
			return 0, err
		}
	}
	if ack.Duplicate {
		return Deduplicated, nil
	}
	return Normalized, nil
}

// dedupeKey is the dedupe bucket key <source>.<event id>. Both come from
// the envelope, where the edge puts a configured source name and a UUID; a
// pair that makes no valid key (natskey.CheckKey: a longer one would make
// nats-server close the connection) is keyed by "=" and the hex SHA-256 of
// the pair instead, which no source name starts with.
func dedupeKey(source, eventID string) string {
	if k := source + "." + eventID; natskey.CheckKey(k) == nil {
		return k
	}
	sum := sha256.Sum256([]byte(source + "\x00" + eventID))
	return "=" + hex.EncodeToString(sum[:])
}

// tooLarge reports a publish refused for its size, by nats.go (the
// server's max_payload) or by the stream (its max_msg_size).
func tooLarge(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}
