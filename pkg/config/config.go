// Package config loads and validates leadstream's YAML configuration: the
// shape of the design contract, ${ENV_VAR} expanded, defaults filled in and
// every error naming the field it is about.
package config

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Provider ids, as they appear in config and in RAW subjects.
const (
	ProviderMarktplaatsLMS  = "marktplaats-lms"
	ProviderMarktplaatsAPI  = "marktplaats-api"
	ProviderOfferteAdviseur = "offerte-adviseur"
	ProviderLokalebasen     = "lokalebasen"
)

// Providers lists every supported provider id.
var Providers = []string{ProviderMarktplaatsLMS, ProviderMarktplaatsAPI, ProviderOfferteAdviseur, ProviderLokalebasen}

// Signature headers: the request headers a provider's authenticity check
// reads, as the providers spell them. Lokalebasen sends none (its token is
// never stored).
const (
	// HeaderDigest is Marktplaats LMS's "SHA-256=<hex>" of the body, which
	// its cavage signature covers.
	HeaderDigest = "Digest"
	// HeaderSignature is Marktplaats LMS's cavage HTTP signature.
	HeaderSignature = "Signature"
	// HeaderEcgSignature is Marktplaats API's hex HMAC-SHA256 of the body.
	HeaderEcgSignature = "X-Ecg-Signature"
	// HeaderOfferteAdviseurSignature is Offerte Adviseur's hex HMAC-SHA256
	// of the body.
	HeaderOfferteAdviseurSignature = "X-Offerte-Adviseur-Signature"
)

// Marktplaats LMS key ids: the cavage keyId names the webhook that signed a
// request, and picks the public key configured under that name
// (sources[].public_keys).
const (
	// KeyIDLeadDelivery signs the Lead Delivery Webhook (leads).
	KeyIDLeadDelivery = "leadDeliveryKey"
	// KeyIDChatMessagePush signs the Chat Message Webhook (chat messages).
	KeyIDChatMessagePush = "chatMessagePushKey"
)

// Config is the whole of leadstream's configuration.
type Config struct {
	// Listen is the edge's HTTP address. Default ":8080".
	Listen string `yaml:"listen"`
	// MaxBodyBytes is the largest webhook body the edge accepts (413 above). Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxInFlight is how many webhook requests the edge verifies and commits
	// to RAW at once before answering 429. A request takes its slot only once
	// its body is read, so slow senders cannot hold slots. Default 4096.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxReadingBytes bounds the bodies being read at once: each request
	// reserves its Content-Length (max_body_bytes when it sends none) until
	// its body is read, and a request that does not fit gets 429. It bounds
	// the memory of bodies in transit and keeps clients that send their
	// bodies slowly from starving the rest. At least max_body_bytes.
	// Default 64 MiB.
	MaxReadingBytes int64 `yaml:"max_reading_bytes"`
	// BodyReadTimeout is how long a request may take to send its body once
	// its headers have arrived; a slower one is answered 408 and its
	// connection closed. Default "10s".
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
	// PublishTimeout bounds the wait for JetStream's PubAck; past it the edge
	// answers 503. Default "5s".
	PublishTimeout Duration `yaml:"publish_timeout"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM. Default "25s".
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// Log configures logging.
	Log Log `yaml:"log"`
	// NATS says where JetStream is.
	NATS NATS `yaml:"nats"`
	// Streams holds retention settings of the streams leadstream creates.
	Streams Streams `yaml:"streams"`
	// Normalizer configures the normalizer's consumers.
	Normalizer Normalizer `yaml:"normalizer"`
	// DedupeTTL is how long the normalizer remembers an event id. Default "168h".
	DedupeTTL Duration `yaml:"dedupe_ttl"`
	// Sources are the webhook endpoints, one per provider account.
	Sources []Source `yaml:"sources"`
	// Adapters are the downstream LMS integrations.
	Adapters []Adapter `yaml:"adapters"`
	// Dispatcher configures delivery to the adapters.
	Dispatcher Dispatcher `yaml:"dispatcher"`
	// Tracing exports OpenTelemetry traces; off (and free) by default.
	Tracing Tracing `yaml:"tracing"`
	// DemoLMS, when its listen address is set, runs a demo LMS in `run`.
	DemoLMS DemoLMS `yaml:"demo_lms"`
	// Console is the operators' web console of `run` and `leadstream console`.
	Console Console `yaml:"console"`

	// Dir is the directory of the config file; relative key paths resolve against it.
	Dir string `yaml:"-"`
}

// Log configures zap.
type Log struct {
	// Format is "json" (production, default) or "console" (development).
	Format string `yaml:"format"`
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
}

// NATS says how to reach JetStream.
type NATS struct {
	// URL of the NATS servers (nats://host:4222[,...]). Empty runs an embedded
	// JetStream server in this process (dev mode).
	URL string `yaml:"url"`
	// StoreDir is the embedded server's file store. Default ".data/nats".
	StoreDir string `yaml:"store_dir"`
	// Listen is the embedded server's client address. Default "127.0.0.1:4222";
	// port 0 picks a free one.
	Listen string `yaml:"listen"`
	// Replicas of every stream: 1 on a single server, 3 on a cluster. Default 1.
	Replicas int `yaml:"replicas"`
	// CredsFile is an optional NATS credentials file.
	CredsFile string `yaml:"creds_file"`
}

// Streams holds stream retention settings.
type Streams struct {
	// RawMaxAge is how long RAW keeps requests. Default "720h" (30 days).
	RawMaxAge Duration `yaml:"raw_max_age"`
	// RawDuplicateWindow is JetStream's Nats-Msg-Id window on RAW. Default "2m".
	RawDuplicateWindow Duration `yaml:"raw_duplicate_window"`
	// EventsMaxAge is how long EVENTS keeps normalized events. Default "720h".
	EventsMaxAge Duration `yaml:"events_max_age"`
	// EventsDuplicateWindow is the Nats-Msg-Id window on EVENTS: a normalizer
	// redelivery within it is a JetStream duplicate. Default "2h".
	EventsDuplicateWindow Duration `yaml:"events_duplicate_window"`
	// DLQMaxAge is how long dead letters are kept. Default "2160h" (90 days).
	DLQMaxAge Duration `yaml:"dlq_max_age"`
}

// DefaultNormalizerMaxAckPending is normalizer.max_ack_pending's default.
const DefaultNormalizerMaxAckPending = 1024

// Normalizer configures the normalizer's consumers.
type Normalizer struct {
	// AckWait is how long JetStream waits for an ack before redelivering; it
	// must exceed HandlerTimeout. Default "30s".
	AckWait Duration `yaml:"ack_wait"`
	// HandlerTimeout bounds one attempt at one message. Default "10s".
	HandlerTimeout Duration `yaml:"handler_timeout"`
	// MaxDeliver is how often JetStream delivers a message. A message still
	// failing (transiently) at its last delivery is dead-lettered with reason
	// "retries_exhausted"; redeliveries back off from 1s to 1m. Default 20.
	MaxDeliver int `yaml:"max_deliver"`
	// MaxAckPending is how many messages a kind's consumer has in flight.
	// The normalizer commits what its handlers write meanwhile together (one
	// sync for many events), so this bounds its batches as well as its
	// memory. Default DefaultNormalizerMaxAckPending (1024), for a process
	// per kind; with every kind in one process (`leadstream run`) a few
	// hundred in all do as well and cost less.
	MaxAckPending int `yaml:"max_ack_pending"`
	// Retries is how often a failing message is retried in process before it
	// is nacked (transient errors) or dead-lettered (a panic). Default 3.
	Retries int `yaml:"retries"`
	// Subscribers is the number of subscriptions per kind, each handling one
	// message at a time: the kind's concurrent handlers. At most
	// MaxAckPending (more would wait for messages that are never in flight).
	// Default: MaxAckPending.
	Subscribers int `yaml:"subscribers"`
}

// Source is one webhook endpoint: POST /hooks/<name>.
type Source struct {
	// Name is the URL segment and the last RAW subject token: [a-z0-9_-], at most 64.
	Name string `yaml:"name"`
	// Provider is one of Providers.
	Provider string `yaml:"provider"`
	// Tenant owns the events of this source; a subject token like Name.
	Tenant string `yaml:"tenant"`
	// PublicKeys maps a cavage keyId to a PEM public key file (marktplaats-lms).
	PublicKeys map[string]string `yaml:"public_keys"`
	// MaxClockSkew is how far a cavage `created` may be from now. Default "5m".
	MaxClockSkew Duration `yaml:"max_clock_skew"`
	// PublicPath is the request target the provider signs, for a proxy in
	// front of the edge that rewrites paths. Default: the path as received.
	PublicPath string `yaml:"public_path"`
	// Secrets are the HMAC secrets (marktplaats-api, offerte-adviseur); several for rotation.
	Secrets []string `yaml:"secrets"`
	// Token is the shared token of a token source (lokalebasen).
	Token string `yaml:"token"`
	// Tokens are more tokens, for rotation.
	Tokens []string `yaml:"tokens"`
	// AllowCIDRs optionally restricts a token source to these networks.
	AllowCIDRs []string `yaml:"allow_cidrs"`

	// Keys are the parsed PublicKeys.
	Keys map[string]*rsa.PublicKey `yaml:"-"`
	// Allow are the parsed AllowCIDRs.
	Allow []netip.Prefix `yaml:"-"`
}

// AllTokens returns Token and Tokens together.
func (s *Source) AllTokens() []string {
	var all []string
	if s.Token != "" {
		all = append(all, s.Token)
	}
	return append(all, s.Tokens...)
}

// Adapter is one downstream LMS integration.
type Adapter struct {
	// Name identifies the adapter in subjects and metrics.
	Name string `yaml:"name"`
	// Type is the adapter kind, e.g. "webhook".
	Type string `yaml:"type"`
	// URL the webhook adapter posts to; for type nats, the NATS servers
	// (nats://host:4222[,...]) its ordered stream is on. Default for nats:
	// nats.url, or the embedded server at nats.listen in dev mode.
	URL string `yaml:"url"`
	// Secret is the Standard Webhooks signing secret (whsec_...).
	Secret string `yaml:"secret"`
	// Secrets are more signing secrets, for rotation.
	Secrets []string `yaml:"secrets"`
	// Types filters event types ("lead.*"); empty means all.
	Types []string `yaml:"types"`
	// Tenants filters tenants; empty means all.
	Tenants []string `yaml:"tenants"`
	// Timeout bounds one delivery attempt. Default "10s".
	Timeout Duration `yaml:"timeout"`
	// MaxAttempts and MaxAge: a failing delivery is given up (and
	// dead-lettered) only once BOTH are passed. Defaults 10 and "1h".
	MaxAttempts int      `yaml:"max_attempts"`
	MaxAge      Duration `yaml:"max_age"`
	// BackoffInitial and BackoffMax bound the exponential backoff (with
	// jitter) between attempts; an LMS's Retry-After is honoured on top.
	// Defaults "1s" and "5m".
	BackoffInitial Duration `yaml:"backoff_initial"`
	BackoffMax     Duration `yaml:"backoff_max"`
	// BreakerFailures consecutive failures open the adapter's circuit
	// breaker for BreakerCooldown. Defaults 5 and "30s".
	BreakerFailures int      `yaml:"breaker_failures"`
	BreakerCooldown Duration `yaml:"breaker_cooldown"`

	// The fields below are for type nats only: it publishes each event, in
	// causal order per aggregate, to an ordered stream of its own.

	// CredsFile is a NATS credentials file for url. Default nats.creds_file
	// when url is left to its default.
	CredsFile string `yaml:"creds_file"`
	// Stream names the ordered stream. Default ORDERED_<NAME>: the adapter's
	// name upper-cased, '-' written '_'.
	Stream string `yaml:"stream"`
	// SubjectPrefix starts the ordered stream's subjects,
	// <subject_prefix>.<kind>.<action>.<tenant>. Default ordered.<name>.
	SubjectPrefix string `yaml:"subject_prefix"`
	// Replicas of the ordered stream. Default nats.replicas.
	Replicas int `yaml:"replicas"`
	// StreamMaxAge is how long the ordered stream keeps events. Default
	// streams.events_max_age.
	StreamMaxAge Duration `yaml:"stream_max_age"`
	// DuplicateWindow is the ordered stream's Nats-Msg-Id window: an event
	// published again within it (a retry whose PubAck was lost, a dispatcher
	// restarted after a crash) is stored once. Default
	// streams.events_duplicate_window.
	DuplicateWindow Duration `yaml:"duplicate_window"`
}

// AllSecrets returns Secret and Secrets together.
func (a *Adapter) AllSecrets() []string {
	var all []string
	if a.Secret != "" {
		all = append(all, a.Secret)
	}
	return append(all, a.Secrets...)
}

// Dispatcher configures delivery to the adapters.
type Dispatcher struct {
	// MaxPark is how long an event waits for its causal prerequisite before
	// it is delivered with an orphan marker. Default "15m".
	MaxPark Duration `yaml:"max_park"`
	// Workers per adapter: events of one aggregate always go to the same
	// worker, in order; other aggregates flow past. Default 16.
	Workers int `yaml:"workers"`
	// MaxAckPending is how many EVENTS messages an adapter's consumer has in
	// flight. Default 256.
	MaxAckPending int `yaml:"max_ack_pending"`
	// AckWait is how long JetStream waits before redelivering an EVENTS
	// message a crashed dispatcher had taken but not yet parked. Default "30s".
	// (A dispatcher that died is noticed sooner: the others remove it from
	// the adapter's consumer group after three looks 2s apart.)
	AckWait Duration `yaml:"ack_wait"`
	// Partitions is the number of partitions of each adapter's consumer
	// group: the aggregates are spread over them, and each partition is
	// delivered by one dispatcher replica at a time. It is also the most
	// replicas of one adapter that get work. Changing it means deleting the
	// groups (see the README). Default 16.
	Partitions int `yaml:"partitions"`
	// Member is this process's name in the adapters' consumer groups (a
	// JetStream consumer name: letters, digits, '-' and '_'). Give each
	// replica its own, stable across restarts where the platform has one
	// (the pod name: "${POD_NAME}"). Default: the host name and process id.
	Member string `yaml:"member"`
}

// Tracing exports each webhook's trace (edge, normalizer, dispatcher, LMS
// request) to an OpenTelemetry collector over OTLP.
type Tracing struct {
	// OTLPEndpoint is the collector's host:port (gRPC, usually 4317; HTTP,
	// usually 4318). Empty: nothing is traced or exported. Default "".
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Protocol is "grpc" or "http". Default "grpc".
	Protocol string `yaml:"protocol"`
	// Insecure sends to the collector without TLS. Default false.
	Insecure bool `yaml:"insecure"`
	// SampleRatio is the share of new traces recorded (a provider's sampled
	// traceparent is always followed). Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
}

// DemoLMS runs the demo LMS inside `leadstream run` (first-time users).
type DemoLMS struct {
	// Listen is its address, e.g. "127.0.0.1:9000"; empty turns it off.
	Listen string `yaml:"listen"`
	// Secret is the Standard Webhooks secret it verifies with.
	Secret string `yaml:"secret"`
}

// DefaultConsoleListen is console.listen's default: loopback only.
const DefaultConsoleListen = "127.0.0.1:8081"

// Console configures the operators' web console, which `run` serves on its
// admin port and `leadstream console` alone. Its pages show what arrived and
// what became of it; its actions replay and drop dead letters and reveal
// personal fields.
type Console struct {
	// Listen is the console's address. Default DefaultConsoleListen
	// ("127.0.0.1:8081"); "off" or "" turns it off. An address that is not
	// loopback needs Token or BasicAuth, and then every page does.
	Listen string `yaml:"listen"`
	// Token is a bearer token (at least 16 characters): sent as
	// "Authorization: Bearer <token>", or typed into the console's sign-in
	// form. Where it or BasicAuth is set, every action (replay, drop,
	// reveal) needs it, on loopback too.
	Token string `yaml:"token"`
	// BasicAuth is a user and password for HTTP basic authentication, as an
	// alternative or in addition to Token.
	BasicAuth BasicAuth `yaml:"basic_auth"`

	// DefaultListen is true when Listen was not configured and holds the
	// default: `run` then goes on without a console when that address is
	// taken (another run, a test), rather than fail.
	DefaultListen bool `yaml:"-"`
	// listenSet records that the YAML named listen (possibly as "").
	listenSet bool
}

// BasicAuth is a user and password for HTTP basic authentication.
type BasicAuth struct {
	// User must not contain ':'.
	User string `yaml:"user"`
	// Password is at least 12 characters.
	Password string `yaml:"password"`
}

// consoleFields are the keys of the console section.
var consoleFields = []string{"listen", "token", "basic_auth"}

// UnmarshalYAML decodes the console section, recording whether listen was
// given: absent, it defaults; given empty, the console is off.
func (c *Console) UnmarshalYAML(n *yaml.Node) error {
	type plain Console
	// Node.Decode does not keep the strict decoder's KnownFields: the keys
	// are checked here, as the decoder would.
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if !slices.Contains(consoleFields, k.Value) {
				return fmt.Errorf("line %d: field %s not found in type config.Console", k.Line, k.Value)
			}
			if k.Value == "listen" {
				c.listenSet = true
			}
		}
	}
	return n.Decode((*plain)(c))
}

// Enabled reports whether the console is to be served.
func (c *Console) Enabled() bool { return c.Listen != "" }

// Loopback reports whether Listen binds to loopback only: localhost, or
// an IP address of the loopback range. ":8081" binds every interface.
func (c *Console) Loopback() bool { return loopbackAddr(c.Listen) }

// AuthConfigured reports whether a token or basic auth is set.
func (c *Console) AuthConfigured() bool { return c.Token != "" || c.BasicAuth.User != "" }

// SetListen replaces Listen (`leadstream console --listen`) and checks it
// as validation does.
func (c *Console) SetListen(addr string) error {
	c.Listen, c.listenSet, c.DefaultListen = addr, true, false
	return errors.Join(c.setDefaultsAndValidate()...)
}

// Duration is a time.Duration written as a Go duration string ("5m", "168h").
// It is parsed during validation so that an error can name its field.
type Duration struct {
	time.Duration
	raw string
	// notScalar records a list or map where a duration was expected: its
	// Value is "", which would otherwise pass for an absent field.
	notScalar bool
}

// UnmarshalYAML keeps the text; Validate parses it.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	d.raw = n.Value
	d.notScalar = n.Kind != yaml.ScalarNode
	return nil
}

// MarshalYAML writes the duration back as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.Duration.String(), nil }

// Dur makes a Duration.
func Dur(d time.Duration) Duration { return Duration{Duration: d} }

// Load reads, expands, parses and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := Parse(data, dir)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse expands ${ENV_VAR}s in data, decodes it strictly (unknown fields are
// errors), fills defaults and validates. Relative file paths resolve against dir.
func Parse(data []byte, dir string) (*Config, error) {
	expanded, err := expandEnv(data)
	if err != nil {
		return nil, err
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	// An empty file decodes to the zero config, which then fails validation.
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing yaml: %w", err)
	}
	cfg.Dir = dir
	if err := cfg.setDefaultsAndValidate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Source returns the source named name.
func (c *Config) Source(name string) (*Source, bool) {
	for i := range c.Sources {
		if c.Sources[i].Name == name {
			return &c.Sources[i], true
		}
	}
	return nil, false
}
