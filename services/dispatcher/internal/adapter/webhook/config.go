package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
)

// ErrInvalidConfig marks a Config that can never work; each error names
// the field.
var ErrInvalidConfig = errors.New("webhook: invalid config")

// secretPrefix starts every Standard Webhooks secret.
const secretPrefix = "whsec_"

// minSecretBytes is the shortest key Standard Webhooks allows (24 to 64
// bytes): anything shorter is guessable offline from one signed request.
const minSecretBytes = 24

// Config configures an Adapter.
type Config struct {
	// Name identifies the adapter (adapters[].name) in errors and logs.
	// Default "webhook".
	Name string
	// URL is where events are POSTed: http or https, with a host. Required.
	URL string
	// Secrets are Standard Webhooks signing secrets, "whsec_" followed by
	// the base64 of 24 to 64 random bytes. Every request carries one
	// signature per secret, so a secret is rotated without downtime: add the
	// new one, move the LMS over, remove the old. At least one is required.
	Secrets []string
	// Timeout bounds one attempt, from connecting to reading the answer's
	// headers. Default 10s.
	Timeout time.Duration
	// MaxIdleConns is how many keep-alive connections to the LMS stay open
	// between deliveries. Default 16.
	MaxIdleConns int
	// MaxConns caps the connections to the LMS at once; a delivery beyond it
	// waits for a free connection within its timeout. Default 0: no cap
	// beyond the dispatcher's own concurrency.
	MaxConns int
	// IdleConnTimeout closes a keep-alive connection unused this long.
	// Default 90s.
	IdleConnTimeout time.Duration
	// BreakerFailures is how many retryable failures in a row open the
	// circuit breaker; rejections (terminal 4xx) do not count, since the LMS
	// is up to give them. Default 5.
	BreakerFailures int
	// BreakerCooldown is how long an open breaker fails deliveries at once,
	// before it lets one probe through to see whether the LMS is back.
	// Default 30s.
	BreakerCooldown time.Duration
	// UserAgent is sent with every request. Default "leadstream-webhook/1".
	UserAgent string
}

// ConfigFrom maps an adapters[] entry of type webhook onto a Config; what
// the entry leaves unset gets the Config's defaults. Secret comes first in
// Secrets, then the entry's secrets.
func ConfigFrom(a config.Adapter) Config {
	return Config{
		Name:            a.Name,
		URL:             a.URL,
		Secrets:         a.AllSecrets(),
		Timeout:         a.Timeout.Duration,
		BreakerFailures: a.BreakerFailures,
		BreakerCooldown: a.BreakerCooldown.Duration,
	}
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = "webhook"
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MaxIdleConns == 0 {
		c.MaxIdleConns = 16
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = 90 * time.Second
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = 30 * time.Second
	}
	if c.UserAgent == "" {
		c.UserAgent = "leadstream-webhook/1"
	}
}

// Validate reports every field that can never work, each error wrapping
// ErrInvalidConfig. It never quotes a secret.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("url", "want an http(s) URL with a host")
	}
	if len(c.Secrets) == 0 {
		add("secrets", "at least one Standard Webhooks secret (whsec_...) is required")
	}
	for i, s := range c.Secrets {
		if _, err := decodeSecret(s); err != nil {
			add(fmt.Sprintf("secrets[%d]", i), "%v", err)
		}
	}
	if c.Timeout < 0 {
		add("timeout", "must not be negative, got %s", c.Timeout)
	}
	if c.MaxIdleConns < 0 {
		add("max_idle_conns", "must not be negative, got %d", c.MaxIdleConns)
	}
	if c.MaxConns < 0 {
		add("max_conns", "must not be negative, got %d", c.MaxConns)
	}
	if c.IdleConnTimeout < 0 {
		add("idle_conn_timeout", "must not be negative, got %s", c.IdleConnTimeout)
	}
	if c.BreakerFailures < 0 {
		add("breaker_failures", "must not be negative, got %d", c.BreakerFailures)
	}
	if c.BreakerCooldown < 0 {
		add("breaker_cooldown", "must not be negative, got %s", c.BreakerCooldown)
	}
	return errors.Join(errs...)
}

// decodeSecret returns the HMAC key of a Standard Webhooks secret. Its
// errors describe the secret's shape, never its content.
func decodeSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("want a Standard Webhooks secret starting with %q", secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("the part after %q is not standard base64", secretPrefix)
	}
	if len(key) < minSecretBytes {
		return nil, fmt.Errorf("decodes to %d bytes, want at least %d", len(key), minSecretBytes)
	}
	return key, nil
}

// GenerateSecret returns a new random Standard Webhooks secret of 32 bytes,
// for an operator setting up an LMS (and for tests).
func GenerateSecret() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails; it crashes the program instead
	return secretPrefix + base64.StdEncoding.EncodeToString(key)
}
