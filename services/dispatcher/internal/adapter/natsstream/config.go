package natsstream

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/streams"
)

// ErrInvalidConfig marks a Config that can never work; each error names
// the field.
var ErrInvalidConfig = errors.New("natsstream: invalid config")

// Config configures an Adapter.
type Config struct {
	// Name identifies the adapter (adapters[].name) in errors, logs and the
	// NATS client name, and gives the stream and subject defaults. Default
	// "nats".
	Name string
	// URL is the NATS servers the ordered stream is on,
	// nats://host:4222[,nats://...]. Required (the config's nats.url by
	// default: see config.Adapter).
	URL string
	// CredsFile is an optional NATS credentials file.
	CredsFile string
	// Stream names the ordered stream. Default streams.OrderedStream(Name),
	// ORDERED_<NAME>.
	Stream string
	// SubjectPrefix starts the stream's subjects,
	// <SubjectPrefix>.<kind>.<action>.<tenant>. Default
	// streams.OrderedPrefix(Name), ordered.<name>.
	SubjectPrefix string
	// Replicas of the stream. Default 1.
	Replicas int
	// MaxAge is how long the stream keeps an event. Default 720h, as EVENTS.
	MaxAge time.Duration
	// DuplicateWindow is the stream's Nats-Msg-Id window: an event published
	// again within it (a retry whose PubAck was lost, a dispatcher restarted
	// between the PubAck and recording the delivery) is stored once. Make it
	// longer than the adapter's max_age, over which the dispatcher retries.
	// Default 2h.
	DuplicateWindow time.Duration
	// Timeout bounds one publish, until its PubAck. Default 10s.
	Timeout time.Duration
}

// ConfigFrom maps an adapters[] entry of type nats onto a Config; what the
// entry leaves unset gets the Config's defaults.
func ConfigFrom(a config.Adapter) Config {
	return Config{
		Name:            a.Name,
		URL:             a.URL,
		CredsFile:       a.CredsFile,
		Stream:          a.Stream,
		SubjectPrefix:   a.SubjectPrefix,
		Replicas:        a.Replicas,
		MaxAge:          a.StreamMaxAge.Duration,
		DuplicateWindow: a.DuplicateWindow.Duration,
		Timeout:         a.Timeout.Duration,
	}
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "nats"
	}
	if c.Stream == "" {
		c.Stream = streams.OrderedStream(c.Name)
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = streams.OrderedPrefix(c.Name)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MaxAge == 0 {
		c.MaxAge = 30 * 24 * time.Hour
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = 2 * time.Hour
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
}

// Validate reports every field that can never work, each error wrapping
// ErrInvalidConfig. It never quotes the URL, which may hold a password.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if c.URL == "" {
		add("url", "required")
	}
	for _, u := range strings.Split(c.URL, ",") {
		if c.URL == "" {
			break
		}
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, p.Scheme) || p.Host == "" {
			add("url", "want nats://host:port[,nats://...] (or tls://, ws://, wss://)")
			break
		}
	}
	if c.Stream == "" || strings.ContainsAny(c.Stream, ".*> \t\r\n/\\") {
		add("stream", "want a JetStream stream name (no '.', '*', '>', white space or path separators), got %q", c.Stream)
	}
	// A subject under the prefix must be publishable, and the prefix must
	// not be a wildcard that would capture other streams' subjects.
	if err := natskey.CheckSubject(c.SubjectPrefix + ".x"); err != nil || strings.HasPrefix(c.SubjectPrefix, "$") {
		add("subject_prefix", "want literal subject tokens such as %q, got %q", streams.OrderedPrefix("crm"), c.SubjectPrefix)
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		add("replicas", "must be between 1 and 5, got %d", c.Replicas)
	}
	if c.MaxAge < 0 {
		add("stream_max_age", "must not be negative, got %s", c.MaxAge)
	}
	if c.DuplicateWindow < 0 || c.DuplicateWindow > c.MaxAge {
		add("duplicate_window", "must be between 0 and stream_max_age (%s), got %s", c.MaxAge, c.DuplicateWindow)
	}
	if c.Timeout < 0 {
		add("timeout", "must not be negative, got %s", c.Timeout)
	}
	return errors.Join(errs...)
}

// ordered is the stream c publishes to.
func (c Config) ordered() streams.Ordered {
	return streams.Ordered{Stream: c.Stream, SubjectPrefix: c.SubjectPrefix, MaxAge: c.MaxAge, DuplicateWindow: c.DuplicateWindow, Replicas: c.Replicas}
}
