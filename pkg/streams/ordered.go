package streams

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Ordered describes the ordered stream of one adapter of type nats: the
// events that adapter receives, in the order the dispatcher delivers them
// (causal per aggregate), for NATS subscribers that need that order. EVENTS
// stays in arrival order.
type Ordered struct {
	// Stream is the stream's name; OrderedStream gives the default.
	Stream string
	// SubjectPrefix starts every subject of the stream; OrderedPrefix gives
	// the default. The stream takes <SubjectPrefix>.>.
	SubjectPrefix string
	// MaxAge is how long the stream keeps an event.
	MaxAge time.Duration
	// DuplicateWindow is the Nats-Msg-Id window: a publish of an event id
	// already stored within it is acknowledged as a duplicate, not stored.
	DuplicateWindow time.Duration
	// Replicas of the stream.
	Replicas int
}

// OrderedStream is the default ordered stream of the adapter named adapter:
// ORDERED_<NAME>, upper-cased with '-' written '_' (adapter names are
// [a-z0-9_-], so the result is a valid stream name).
func OrderedStream(adapter string) string {
	return "ORDERED_" + strings.ToUpper(strings.ReplaceAll(adapter, "-", "_"))
}

// OrderedPrefix is the default subject prefix of the adapter named adapter:
// ordered.<adapter>, so that two nats adapters never share subjects.
func OrderedPrefix(adapter string) string { return "ordered." + adapter }

// OrderedSubject is an ordered stream's subject of an event of aggregate
// agg, <prefix>.<kind>.<action>.<tenant>.<aggregate token>: the EVENTS
// subject under the stream's prefix, so that the same filters work on both.
func OrderedSubject(prefix, kind, action, tenant, agg string) string {
	return prefix + "." + kind + "." + action + "." + tenant + "." + AggregateToken(agg)
}

// Config is the stream's configuration: file storage like every leadstream
// stream, limits retention (subscribers read it, nobody works it off), and
// direct gets for operators looking up one event.
func (o Ordered) Config() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "leadstream: events in causal order per aggregate (dispatcher adapter of type nats), protobuf leadstream.v1.Event with CloudEvents headers",
		Subjects:    []string{o.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      o.MaxAge,
		Duplicates:  o.DuplicateWindow,
		Replicas:    o.Replicas,
		AllowDirect: true,
	}
}
