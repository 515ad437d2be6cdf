package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bounds on what the edge copies from the config into every RAW envelope, so
// that the envelope's headers have a known largest size.
const (
	maxPublicPath = 1024
	maxKeyID      = 128
)

// keyIDPattern is a cavage keyId as a config may name it.
var keyIDPattern = regexp.MustCompile(fmt.Sprintf(`^[!-~]{1,%d}$`, maxKeyID))

// token is what a name must look like to be used as a NATS subject token and
// a URL path segment.
var token = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// fieldErr builds an error that names its field, e.g. "sources[1].provider: ...".
func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
}

func (d *Duration) resolve(field string, def time.Duration) error {
	if d.notScalar {
		return fieldErr(field, "want a duration string (e.g. \"90s\", \"5m\", \"168h\"), got a list or map")
	}
	if d.raw == "" {
		if d.Duration == 0 {
			d.Duration = def
		}
		return nil
	}
	v, err := time.ParseDuration(d.raw)
	if err != nil {
		return fieldErr(field, "invalid duration %q (want e.g. \"90s\", \"5m\", \"168h\")", d.raw)
	}
	if v <= 0 {
		return fieldErr(field, "duration must be positive, got %q", d.raw)
	}
	d.Duration = v
	return nil
}

// setDefaultsAndValidate fills defaults and returns every problem found, each
// naming its field.
func (c *Config) setDefaultsAndValidate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxBodyBytes < 0 {
		add(fieldErr("max_body_bytes", "must be positive, got %d", c.MaxBodyBytes))
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = 4096
	}
	if c.MaxInFlight < 0 {
		add(fieldErr("max_in_flight", "must be positive, got %d", c.MaxInFlight))
	}
	if c.MaxReadingBytes == 0 {
		c.MaxReadingBytes = 64 << 20
	}
	if c.MaxReadingBytes < c.MaxBodyBytes {
		// A body of max_body_bytes could then never be read.
		add(fieldErr("max_reading_bytes", "must be at least max_body_bytes (%d), got %d", c.MaxBodyBytes, c.MaxReadingBytes))
	}
	add(c.BodyReadTimeout.resolve("body_read_timeout", 10*time.Second))
	add(c.PublishTimeout.resolve("publish_timeout", 5*time.Second))
	add(c.ShutdownTimeout.resolve("shutdown_timeout", 25*time.Second))
	add(c.DedupeTTL.resolve("dedupe_ttl", 168*time.Hour))
	add(c.Streams.RawMaxAge.resolve("streams.raw_max_age", 30*24*time.Hour))
	add(c.Streams.RawDuplicateWindow.resolve("streams.raw_duplicate_window", 2*time.Minute))
	add(c.Streams.EventsMaxAge.resolve("streams.events_max_age", 30*24*time.Hour))
	add(c.Streams.EventsDuplicateWindow.resolve("streams.events_duplicate_window", 2*time.Hour))
	add(c.Streams.DLQMaxAge.resolve("streams.dlq_max_age", 90*24*time.Hour))
	for _, err := range c.Normalizer.setDefaultsAndValidate() {
		add(err)
	}

	switch c.Log.Format {
	case "":
		c.Log.Format = "json"
	case "json", "console":
	default:
		add(fieldErr("log.format", "unknown format %q (want json or console)", c.Log.Format))
	}
	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		add(fieldErr("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level))
	}

	if c.NATS.URL == "" {
		if c.NATS.StoreDir == "" {
			c.NATS.StoreDir = ".data/nats"
		}
		if c.NATS.Listen == "" {
			c.NATS.Listen = "127.0.0.1:4222"
		}
		if _, err := netip.ParseAddrPort(c.NATS.Listen); err != nil {
			add(fieldErr("nats.listen", "want host:port with an IP host, got %q", c.NATS.Listen))
		}
		c.NATS.StoreDir = c.path(c.NATS.StoreDir)
	}
	if c.NATS.Replicas == 0 {
		c.NATS.Replicas = 1
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		add(fieldErr("nats.replicas", "must be between 1 and 5, got %d", c.NATS.Replicas))
	}
	if c.NATS.CredsFile != "" {
		c.NATS.CredsFile = c.path(c.NATS.CredsFile)
	}

	if len(c.Sources) == 0 {
		add(fieldErr("sources", "at least one source is required"))
	}
	seen := map[string]int{}
	for i := range c.Sources {
		field := fmt.Sprintf("sources[%d]", i)
		s := &c.Sources[i]
		if prev, dup := seen[s.Name]; dup && s.Name != "" {
			add(fieldErr(field+".name", "duplicate source name %q (also sources[%d])", s.Name, prev))
		}
		seen[s.Name] = i
		for _, err := range c.validateSource(field, s) {
			add(err)
		}
	}
	// An adapter's name is its durable consumer and DLQ subject token: two
	// adapters with one name would share a consumer and split its events.
	seenAdapters := map[string]int{}
	if c.Tracing.Protocol == "" {
		c.Tracing.Protocol = "grpc"
	}
	if c.Tracing.Protocol != "grpc" && c.Tracing.Protocol != "http" {
		add(fieldErr("tracing.protocol", "want grpc or http, got %q", c.Tracing.Protocol))
	}
	if c.Tracing.SampleRatio == nil {
		one := 1.0
		c.Tracing.SampleRatio = &one
	}
	if r := *c.Tracing.SampleRatio; r < 0 || r > 1 {
		add(fieldErr("tracing.sample_ratio", "want 0 to 1, got %v", r))
	}
	for _, err := range c.Dispatcher.setDefaultsAndValidate() {
		add(err)
	}
	// After a crash, an event's prerequisite may come back only once the
	// stages before the dispatcher have waited out their ack_wait: parked
	// for less, its dependent would go out as an orphan ahead of it.
	redelivery := c.Normalizer.AckWait.Duration + c.Dispatcher.AckWait.Duration
	if c.Dispatcher.MaxPark.Duration > 0 && c.Dispatcher.MaxPark.Duration <= redelivery {
		add(fieldErr("dispatcher.max_park", "must exceed normalizer.ack_wait (%s) + dispatcher.ack_wait (%s) = %s, the longest a prerequisite may be held up by a crash, got %s: raise it or shorten the ack waits",
			c.Normalizer.AckWait.Duration, c.Dispatcher.AckWait.Duration, redelivery, c.Dispatcher.MaxPark.Duration))
	}
	if c.DemoLMS.Listen != "" && c.DemoLMS.Secret == "" {
		add(fieldErr("demo_lms.secret", "required when demo_lms.listen is set"))
	}
	for _, err := range c.Console.setDefaultsAndValidate() {
		add(err)
	}
	adapterNames := map[string]int{}
	for i := range c.Adapters {
		if prev, dup := adapterNames[c.Adapters[i].Name]; dup {
			add(fieldErr(fmt.Sprintf("adapters[%d].name", i), "duplicate adapter name %q (also adapters[%d])", c.Adapters[i].Name, prev))
		}
		adapterNames[c.Adapters[i].Name] = i
		field := fmt.Sprintf("adapters[%d]", i)
		a := &c.Adapters[i]
		if prev, dup := seenAdapters[a.Name]; dup && a.Name != "" {
			add(fieldErr(field+".name", "duplicate adapter name %q (also adapters[%d])", a.Name, prev))
		}
		seenAdapters[a.Name] = i
		for _, err := range validateAdapter(field, a) {
			add(err)
		}
		if a.Type == "nats" {
			for _, err := range c.validateNATSAdapter(field, a) {
				add(err)
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Config) validateSource(field string, s *Source) []error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if !token.MatchString(s.Name) {
		add(fieldErr(field+".name", "must match %s, got %q", token, s.Name))
	}
	if !token.MatchString(s.Tenant) {
		add(fieldErr(field+".tenant", "must match %s, got %q", token, s.Tenant))
	}
	if s.PublicPath != "" && !strings.HasPrefix(s.PublicPath, "/") {
		add(fieldErr(field+".public_path", "must start with /, got %q", s.PublicPath))
	}
	// The edge keeps the path in each RAW envelope, within a bounded size.
	if len(s.PublicPath) > maxPublicPath {
		add(fieldErr(field+".public_path", "at most %d bytes, got %d", maxPublicPath, len(s.PublicPath)))
	}
	if err := s.MaxClockSkew.resolve(field+".max_clock_skew", 5*time.Minute); err != nil {
		add(err)
	}
	for j, cidr := range s.AllowCIDRs {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			add(fieldErr(fmt.Sprintf("%s.allow_cidrs[%d]", field, j), "invalid CIDR %q", cidr))
			continue
		}
		s.Allow = append(s.Allow, p.Masked())
	}
	unused := func(name string, set bool) {
		if set {
			add(fieldErr(field+"."+name, "not used by provider %s", s.Provider))
		}
	}
	switch s.Provider {
	case ProviderMarktplaatsLMS:
		unused("secrets", len(s.Secrets) > 0)
		unused("token", len(s.AllTokens()) > 0)
		if len(s.PublicKeys) == 0 {
			add(fieldErr(field+".public_keys", "required for provider %s (keyId: PEM file)", s.Provider))
		}
		s.Keys = map[string]*rsa.PublicKey{}
		for _, keyID := range sortedKeys(s.PublicKeys) {
			kf := fmt.Sprintf("%s.public_keys.%s", field, keyID)
			// The key id is kept in each RAW envelope, within a bounded size.
			if !keyIDPattern.MatchString(keyID) {
				shown := keyID
				if len(shown) > 40 {
					shown = shown[:40] + "..."
				}
				add(fieldErr(field+".public_keys", "key id %q: want 1 to %d printable characters without spaces", shown, maxKeyID))
				continue
			}
			key, err := loadPublicKey(c.path(s.PublicKeys[keyID]))
			if err != nil {
				add(fieldErr(kf, "%v", err))
				continue
			}
			s.Keys[keyID] = key
		}
	case ProviderMarktplaatsAPI, ProviderOfferteAdviseur:
		unused("public_keys", len(s.PublicKeys) > 0)
		unused("token", len(s.AllTokens()) > 0)
		if len(s.Secrets) == 0 {
			add(fieldErr(field+".secrets", "at least one secret is required for provider %s", s.Provider))
		}
		for j, sec := range s.Secrets {
			if sec == "" {
				add(fieldErr(fmt.Sprintf("%s.secrets[%d]", field, j), "empty secret"))
			}
		}
	case ProviderLokalebasen:
		unused("public_keys", len(s.PublicKeys) > 0)
		unused("secrets", len(s.Secrets) > 0)
		if len(s.AllTokens()) == 0 {
			add(fieldErr(field+".token", "required for provider %s", s.Provider))
		}
		// Name the field the bad token is in (token or tokens[j]), never the token.
		checkToken := func(f, t string) {
			if len(t) < 12 || strings.ContainsAny(t, "/ ") {
				add(fieldErr(f, "must be at least 12 characters without / or spaces"))
			}
		}
		if s.Token != "" {
			checkToken(field+".token", s.Token)
		}
		for j, t := range s.Tokens {
			checkToken(fmt.Sprintf("%s.tokens[%d]", field, j), t)
		}
	case "":
		add(fieldErr(field+".provider", "required (one of %s)", strings.Join(Providers, ", ")))
	default:
		add(fieldErr(field+".provider", "unknown provider %q (want one of %s)", s.Provider, strings.Join(Providers, ", ")))
	}
	return errs
}

func (n *Normalizer) setDefaultsAndValidate() []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(n.AckWait.resolve("normalizer.ack_wait", 30*time.Second))
	add(n.HandlerTimeout.resolve("normalizer.handler_timeout", 10*time.Second))
	if n.AckWait.Duration <= n.HandlerTimeout.Duration {
		add(fieldErr("normalizer.ack_wait", "must exceed normalizer.handler_timeout (%s), got %s: else JetStream redelivers messages still being handled", n.HandlerTimeout.Duration, n.AckWait.Duration))
	}
	ints := []struct {
		name string
		v    *int
		def  int
	}{{"max_deliver", &n.MaxDeliver, 20}, {"max_ack_pending", &n.MaxAckPending, DefaultNormalizerMaxAckPending}, {"retries", &n.Retries, 3}}
	for _, f := range ints {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 {
			add(fieldErr("normalizer."+f.name, "must be positive, got %d", *f.v))
		}
	}
	// One handler per message in flight, unless told otherwise.
	if n.Subscribers == 0 && n.MaxAckPending > 0 {
		n.Subscribers = n.MaxAckPending
	}
	switch {
	case n.Subscribers < 0:
		add(fieldErr("normalizer.subscribers", "must be positive, got %d", n.Subscribers))
	case n.MaxAckPending > 0 && n.Subscribers > n.MaxAckPending:
		add(fieldErr("normalizer.subscribers", "must not exceed normalizer.max_ack_pending (%d), got %d: a kind never has more messages in flight, so the rest would sit idle",
			n.MaxAckPending, n.Subscribers))
	}
	return errs
}

func validateAdapter(field string, a *Adapter) []error {
	var errs []error
	if !token.MatchString(a.Name) {
		errs = append(errs, fieldErr(field+".name", "must match %s, got %q", token, a.Name))
	}
	switch a.Type {
	case "webhook":
		if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fieldErr(field+".url", "want an http(s) URL with a host, got %q", a.URL))
		}
		if a.Secret == "" && len(a.Secrets) == 0 {
			errs = append(errs, fieldErr(field+".secret", "required for type webhook"))
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"creds_file", a.CredsFile != ""}, {"stream", a.Stream != ""}, {"subject_prefix", a.SubjectPrefix != ""}, {"replicas", a.Replicas != 0},
			{"stream_max_age", a.StreamMaxAge.raw != "" || a.StreamMaxAge.notScalar}, {"duplicate_window", a.DuplicateWindow.raw != "" || a.DuplicateWindow.notScalar}} {
			if f.set {
				errs = append(errs, fieldErr(field+"."+f.name, "not used by type webhook (only by type nats)"))
			}
		}
	case "nats":
		// validateNATSAdapter: its defaults come from nats and streams.
	default:
		errs = append(errs, fieldErr(field+".type", "unknown adapter type %q (want webhook or nats)", a.Type))
	}
	for i, t := range a.Types {
		if !typePattern.MatchString(t) {
			errs = append(errs, fieldErr(fmt.Sprintf("%s.types[%d]", field, i), "want \"<kind>.<action>\", \"<kind>.*\" or \"*\", got %q", t))
		}
	}
	for i, t := range a.Tenants {
		if !token.MatchString(t) {
			errs = append(errs, fieldErr(fmt.Sprintf("%s.tenants[%d]", field, i), "must match %s, got %q", token, t))
		}
	}
	for _, d := range []struct {
		name string
		d    *Duration
		def  time.Duration
	}{{"timeout", &a.Timeout, 10 * time.Second}, {"max_age", &a.MaxAge, time.Hour}, {"backoff_initial", &a.BackoffInitial, time.Second},
		{"backoff_max", &a.BackoffMax, 5 * time.Minute}, {"breaker_cooldown", &a.BreakerCooldown, 30 * time.Second}} {
		if err := d.d.resolve(field+"."+d.name, d.def); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range []struct {
		name string
		v    *int
		def  int
	}{{"max_attempts", &a.MaxAttempts, 10}, {"breaker_failures", &a.BreakerFailures, 5}} {
		if *n.v == 0 {
			*n.v = n.def
		}
		if *n.v < 0 {
			errs = append(errs, fieldErr(field+"."+n.name, "must be positive, got %d", *n.v))
		}
	}
	return errs
}

// streamName is what JetStream takes as a stream name (no '.', '*', '>',
// white space or path separators), kept short.
var streamName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// subjectPrefix is literal subject tokens: no wildcards, no '$' (system
// subjects), no white space.
var subjectPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// validateNATSAdapter fills the defaults of a nats adapter from the nats and
// streams sections and checks what it publishes to cannot collide with
// leadstream's own streams.
func (c *Config) validateNATSAdapter(field string, a *Adapter) []error {
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fieldErr(field+"."+name, format, args...))
	}
	if a.Secret != "" || len(a.Secrets) > 0 {
		add("secret", "not used by type nats")
	}
	if a.URL == "" {
		a.URL = c.NATS.URL
		if a.URL == "" {
			// Dev mode: the embedded server `leadstream run` starts.
			if ap, err := netip.ParseAddrPort(c.NATS.Listen); err == nil && ap.Port() == 0 {
				add("url", "required for type nats when the embedded server picks a free port (nats.listen port 0)")
			}
			a.URL = "nats://" + c.NATS.Listen
		}
		if a.CredsFile == "" {
			a.CredsFile = c.NATS.CredsFile
		}
	} else {
		for _, u := range strings.Split(a.URL, ",") {
			// The URL may hold a user and password: never quote it.
			p, err := url.Parse(strings.TrimSpace(u))
			if err != nil || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, p.Scheme) || p.Host == "" {
				add("url", "want nats://host:port[,nats://...] (or tls://, ws://, wss://)")
				break
			}
		}
	}
	if a.CredsFile != "" {
		a.CredsFile = c.path(a.CredsFile)
	}
	// leadstream's own streams and their subjects.
	if a.Stream != "" {
		switch {
		case !streamName.MatchString(a.Stream):
			add("stream", "must match %s, got %q", streamName, a.Stream)
		case slices.Contains([]string{"RAW", "EVENTS", "DLQ", "DISPATCH_TIMERS"}, a.Stream) || strings.HasPrefix(a.Stream, "EVENTS-") || strings.HasPrefix(a.Stream, "KV_") || strings.HasPrefix(a.Stream, "OBJ_"):
			add("stream", "%q is a stream leadstream or JetStream already uses", a.Stream)
		}
	}
	if a.SubjectPrefix != "" {
		first, _, _ := strings.Cut(a.SubjectPrefix, ".")
		switch {
		case !subjectPrefix.MatchString(a.SubjectPrefix) || len(a.SubjectPrefix) > 128:
			add("subject_prefix", "want subject tokens such as \"ordered.crm\" (no wildcards, '$' or spaces, at most 128 bytes), got %q", a.SubjectPrefix)
		case slices.Contains([]string{"raw", "events", "dlq", "dispatch"}, first):
			add("subject_prefix", "%q would overlap leadstream's own %s.> subjects", a.SubjectPrefix, first)
		}
	}
	if a.Replicas == 0 {
		a.Replicas = c.NATS.Replicas
	}
	if a.Replicas < 1 || a.Replicas > 5 {
		add("replicas", "must be between 1 and 5, got %d", a.Replicas)
	}
	if err := a.StreamMaxAge.resolve(field+".stream_max_age", c.Streams.EventsMaxAge.Duration); err != nil {
		errs = append(errs, err)
	}
	if err := a.DuplicateWindow.resolve(field+".duplicate_window", c.Streams.EventsDuplicateWindow.Duration); err != nil {
		errs = append(errs, err)
	}
	if a.DuplicateWindow.Duration > a.StreamMaxAge.Duration {
		// JetStream refuses such a stream.
		add("duplicate_window", "must not exceed stream_max_age (%s), got %s", a.StreamMaxAge.Duration, a.DuplicateWindow.Duration)
	}
	return errs
}

// memberName is a dispatcher's name in a consumer group, which names its
// JetStream consumer.
var memberName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// typePattern is an adapter's event type filter: "lead.created", "lead.*" or "*".
var typePattern = regexp.MustCompile(`^(\*|[a-z]+\.(\*|[a-z_]+))$`)

func (d *Dispatcher) setDefaultsAndValidate() []error {
	var errs []error
	if err := d.MaxPark.resolve("dispatcher.max_park", 15*time.Minute); err != nil {
		errs = append(errs, err)
	}
	if err := d.AckWait.resolve("dispatcher.ack_wait", 30*time.Second); err != nil {
		errs = append(errs, err)
	}
	if d.Workers == 0 {
		d.Workers = 16
	}
	if d.MaxAckPending == 0 {
		d.MaxAckPending = 256
	}
	if d.Workers < 0 || d.MaxAckPending < 0 {
		errs = append(errs, fieldErr("dispatcher", "workers and max_ack_pending must be positive"))
	}
	if d.Partitions == 0 {
		d.Partitions = 16
	}
	if d.Partitions < 1 || d.Partitions > 1024 {
		errs = append(errs, fieldErr("dispatcher.partitions", "must be between 1 and 1024, got %d", d.Partitions))
	}
	if d.Member != "" && !memberName.MatchString(d.Member) {
		errs = append(errs, fieldErr("dispatcher.member", "must be 1 to 64 letters, digits, '-' or '_' (it names a JetStream consumer), got %q", d.Member))
	}
	return errs
}

// Bounds on the console's credentials.
const (
	minConsoleToken    = 16
	minConsolePassword = 12
)

func (c *Console) setDefaultsAndValidate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fieldErr("console."+field, format, args...))
	}
	if !c.listenSet {
		c.Listen, c.DefaultListen = DefaultConsoleListen, true
	}
	if c.Listen == "off" {
		c.Listen = ""
	}
	if c.Listen != "" {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || !validPort(port) {
			add("listen", "want host:port (e.g. %q), or \"off\", got %q", DefaultConsoleListen, c.Listen)
		} else if !c.Loopback() && !c.AuthConfigured() {
			add("listen", "%q is not a loopback address: set console.token or console.basic_auth (every page and action then needs it), or listen on 127.0.0.1", c.Listen)
		}
	}
	// Name the field, never the credential.
	if c.Token != "" && (len(c.Token) < minConsoleToken || strings.ContainsAny(c.Token, " \t\r\n")) {
		add("token", "must be at least %d characters without white space", minConsoleToken)
	}
	b := c.BasicAuth
	switch {
	case b.User == "" && b.Password != "":
		add("basic_auth.user", "required when console.basic_auth.password is set")
	case b.User != "" && b.Password == "":
		add("basic_auth.password", "required when console.basic_auth.user is set")
	case strings.Contains(b.User, ":"):
		add("basic_auth.user", "must not contain ':'")
	case b.Password != "" && len(b.Password) < minConsolePassword:
		add("basic_auth.password", "must be at least %d characters", minConsolePassword)
	}
	return errs
}

// loopbackAddr reports whether host:port addr binds to loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}

func (c *Config) path(p string) string {
	if filepath.IsAbs(p) || c.Dir == "" {
		return p
	}
	return filepath.Join(c.Dir, p)
}

func loadPublicKey(path string) (*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block %q is not a public key", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA public key", path)
	}
	return key, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
