// Package streams declares the JetStream streams leadstream owns and creates
// or updates them at start-up, so that nothing is ever published into a
// stream that does not exist (and no client auto-provisions a wrong one).
package streams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/config"
)

// Stream and bucket names.
const (
	// RAW is the stream of verified webhook requests, the source of truth.
	RAW = "RAW"
	// EVENTS is the stream of normalized events downstream teams subscribe to.
	EVENTS = "EVENTS"
	// DLQ holds what could not be normalized or delivered, with the reason.
	DLQ = "DLQ"
	// DedupeBucket is the normalizer's seen-set of event ids.
	DedupeBucket = "dedupe"
	// DispatchBucket holds the dispatcher's per-adapter, per-aggregate
	// ordering state: delivered facts, parked events, the retry in progress.
	DispatchBucket = "dispatch"
)

// DispatchConfig is the dispatcher's ordering-state bucket.
func DispatchConfig(cfg *config.Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      DispatchBucket,
		Description: "leadstream dispatcher: per adapter and aggregate, delivered facts and parked events",
		History:     1,
		// An aggregate quiet for as long as EVENTS keeps events is forgotten:
		// a late dependent of it waits max_park and goes out as an orphan.
		TTL:      cfg.Streams.EventsMaxAge.Duration,
		Storage:  jetstream.FileStorage,
		Replicas: cfg.NATS.Replicas,
	}
}

// EventsSubject is the EVENTS subject of an event of aggregate agg:
// events.<kind>.<action>.<tenant>.<aggregate token>.
func EventsSubject(kind, action, tenant, agg string) string {
	return "events." + kind + "." + action + "." + tenant + "." + AggregateToken(agg)
}

// AggregateToken is the last token of an event's EVENTS subject: the first
// 8 bytes of the SHA-256 of its aggregate id, in hex. Aggregate ids carry
// payload characters that a subject cannot; a hash of fixed length can,
// and it is what the dispatchers' consumer groups partition on (all events
// of an aggregate in one partition), and what a reader of one aggregate
// subscribes to (events.*.*.*.<token>).
func AggregateToken(agg string) string {
	sum := sha256.Sum256([]byte(agg))
	return hex.EncodeToString(sum[:8])
}

// DLQSubject is the DLQ subject dlq.<stage>.<name>.
func DLQSubject(stage, name string) string { return "dlq." + stage + "." + name }

// EventsConfig is EVENTS' configuration from cfg, with atomic batch
// publishing so the normalizer can commit many events with one sync.
func EventsConfig(cfg *config.Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               EVENTS,
		Description:        "leadstream: normalized events, protobuf leadstream.v1.Event with CloudEvents headers",
		Subjects:           []string{"events.>"},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		MaxAge:             cfg.Streams.EventsMaxAge.Duration,
		Duplicates:         cfg.Streams.EventsDuplicateWindow.Duration,
		Replicas:           cfg.NATS.Replicas,
		AllowAtomicPublish: true,
		AllowDirect:        true,
	}
}

// DLQConfig is DLQ's configuration from cfg.
func DLQConfig(cfg *config.Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DLQ,
		Description: "leadstream: dead letters of every stage, with reason and origin",
		Subjects:    []string{"dlq.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.Streams.DLQMaxAge.Duration,
		Duplicates:  2 * time.Minute,
		Replicas:    cfg.NATS.Replicas,
		AllowDirect: true,
	}
}

// DedupeConfig is the dedupe bucket's configuration: keys expire after
// dedupe_ttl (per key, which needs limit markers). A bucket's configuration
// has no atomic batch publishing: the normalizer's Provision turns it on in
// the bucket's stream, KV_dedupe.
func DedupeConfig(cfg *config.Config) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         DedupeBucket,
		Description:    "leadstream normalizer: event ids already published to EVENTS",
		History:        1,
		TTL:            cfg.DedupeTTL.Duration,
		Storage:        jetstream.FileStorage,
		Replicas:       cfg.NATS.Replicas,
		LimitMarkerTTL: time.Minute,
	}
}

// EnsureKVLeaderReads creates or updates a bucket whose reads must see
// every acknowledged write, and binds to it so: its stream answers no direct
// gets, so that a Get goes to the stream leader rather than to whichever
// replica answers first. On a cluster a follower may lag behind the leader;
// the dispatcher read a state from before its own last write that way, and
// delivered an event again that it had just recorded as delivered.
func EnsureKVLeaderReads(ctx context.Context, js jetstream.JetStream, kvc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if _, err := EnsureKV(ctx, js, kvc); err != nil {
		return nil, err
	}
	st, err := js.Stream(ctx, "KV_"+kvc.Bucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", kvc.Bucket, err)
	}
	if sc := st.CachedInfo().Config; sc.AllowDirect {
		sc.AllowDirect = false
		if _, err := js.UpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("bucket %s: turning direct gets off: %w", kvc.Bucket, err)
		}
	}
	kv, err := js.KeyValue(ctx, kvc.Bucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", kvc.Bucket, err)
	}
	return kv, nil
}

// AllowAtomicPublish turns atomic batch publishing on in a bucket's stream
// (KV_<bucket>), which a bucket's configuration cannot say, so that many
// writes can be committed with one sync. Updating the bucket turns it off
// again (its stream configuration is made anew), so call this after every
// EnsureKV; a batch caught in between is refused as a whole, and its
// writer publishes its messages one by one.
func AllowAtomicPublish(ctx context.Context, js jetstream.JetStream, bucket string) error {
	st, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucket, err)
	}
	sc := st.CachedInfo().Config
	if sc.AllowAtomicPublish {
		return nil
	}
	sc.AllowAtomicPublish = true
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("bucket %s: allowing atomic batches: %w", bucket, err)
	}
	return nil
}

// EnsureKV creates or updates a key-value bucket.
func EnsureKV(ctx context.Context, js jetstream.JetStream, kvc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvc)
	if err != nil {
		return nil, fmt.Errorf("creating or updating bucket %s: %w", kvc.Bucket, err)
	}
	return kv, nil
}

// RawConfig is RAW's configuration from cfg: file storage, the configured
// retention and duplicate window, and atomic batch publishing so the edge can
// commit many requests with one fsync.
func RawConfig(cfg *config.Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               RAW,
		Description:        "leadstream: verified webhook requests, exact bodies plus envelope headers",
		Subjects:           []string{"raw.>"},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxAge:             cfg.Streams.RawMaxAge.Duration,
		Duplicates:         cfg.Streams.RawDuplicateWindow.Duration,
		Replicas:           cfg.NATS.Replicas,
		MaxMsgSize:         int32(cfg.MaxBodyBytes + 64<<10),
		AllowAtomicPublish: true,
		AllowDirect:        true,
	}
}

// Ensure creates each stream or updates it to the given configuration.
func Ensure(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, sc := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("creating or updating stream %s: %w", sc.Name, err)
		}
	}
	return nil
}
