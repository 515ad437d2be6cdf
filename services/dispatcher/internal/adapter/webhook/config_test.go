package webhook

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.setDefaults()
	want := Config{
		Name:            "webhook",
		Timeout:         10 * time.Second,
		MaxIdleConns:    16,
		IdleConnTimeout: 90 * time.Second,
		BreakerFailures: 5,
		BreakerCooldown: 30 * time.Second,
		UserAgent:       "leadstream-webhook/1",
	}
	if c.Name != want.Name || c.Timeout != want.Timeout || c.MaxIdleConns != want.MaxIdleConns ||
		c.IdleConnTimeout != want.IdleConnTimeout || c.BreakerFailures != want.BreakerFailures ||
		c.BreakerCooldown != want.BreakerCooldown || c.UserAgent != want.UserAgent || c.MaxConns != 0 {
		t.Errorf("defaults = %+v, want %+v", c, want)
	}
	c = Config{Timeout: time.Second, BreakerFailures: 2}
	c.setDefaults()
	if c.Timeout != time.Second || c.BreakerFailures != 2 {
		t.Errorf("setDefaults overwrote set fields: %+v", c)
	}
}

func TestConfigValidate(t *testing.T) {
	good := GenerateSecret()
	short := "whsec_" + base64.StdEncoding.EncodeToString([]byte("only-sixteen-byt"))
	tests := []struct {
		name   string
		cfg    Config
		fields []string // each must be named in the error
	}{
		{name: "valid", cfg: Config{URL: "https://lms.example/hooks", Secrets: []string{good}}},
		{name: "valid, two secrets", cfg: Config{URL: "http://127.0.0.1:9000/events", Secrets: []string{good, GenerateSecret()}}},
		{name: "empty", cfg: Config{}, fields: []string{"url", "secrets"}},
		{name: "not http", cfg: Config{URL: "ftp://lms.example/", Secrets: []string{good}}, fields: []string{"url"}},
		{name: "no host", cfg: Config{URL: "http:///events", Secrets: []string{good}}, fields: []string{"url"}},
		{name: "no prefix", cfg: Config{URL: "http://lms", Secrets: []string{strings.TrimPrefix(good, "whsec_")}}, fields: []string{"secrets[0]"}},
		{name: "not base64", cfg: Config{URL: "http://lms", Secrets: []string{good, "whsec_not base64!"}}, fields: []string{"secrets[1]"}},
		{name: "too short", cfg: Config{URL: "http://lms", Secrets: []string{short}}, fields: []string{"secrets[0]", "16 bytes"}},
		{name: "negative", cfg: Config{URL: "http://lms", Secrets: []string{good}, Timeout: -1, MaxConns: -1, BreakerCooldown: -1},
			fields: []string{"timeout", "max_conns", "breaker_cooldown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.setDefaults()
			err := tt.cfg.Validate()
			if len(tt.fields) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
			}
			for _, f := range tt.fields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			for _, s := range tt.cfg.Secrets {
				if b64 := strings.TrimPrefix(s, "whsec_"); strings.Contains(err.Error(), b64) {
					t.Errorf("error %q quotes a secret", err)
				}
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(Config{URL: "http://lms"}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New without secrets: %v, want ErrInvalidConfig", err)
	}
}

func TestGenerateSecret(t *testing.T) {
	a, b := GenerateSecret(), GenerateSecret()
	if a == b {
		t.Error("two generated secrets are equal")
	}
	key, err := decodeSecret(a)
	if err != nil || len(key) != 32 {
		t.Errorf("generated secret decodes to %d bytes, %v; want 32", len(key), err)
	}
}
