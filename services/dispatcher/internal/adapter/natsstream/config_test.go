package natsstream

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
)

// TestConfigFrom: an adapters[] entry of type nats, with nothing but its
// name, publishes to ORDERED_<NAME> on the config's NATS, with the streams
// section's retention.
func TestConfigFrom(t *testing.T) {
	cfg, err := config.Parse([]byte(`
nats: {url: "nats://n1:4222,nats://n2:4222", replicas: 3, creds_file: /etc/leadstream/nats.creds}
streams: {events_max_age: 240h, events_duplicate_window: 90m}
sources:
  - {name: api, provider: marktplaats-api, tenant: t1, secrets: [x]}
adapters:
  - {name: my-sub, type: nats}
  - {name: other, type: nats, url: "nats://downstream:4222", stream: LEADS, subject_prefix: leads.in, replicas: 1, stream_max_age: 24h, duplicate_window: 1h}
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := ConfigFrom(cfg.Adapters[0])
	c.setDefaults()
	want := Config{Name: "my-sub", URL: "nats://n1:4222,nats://n2:4222", CredsFile: "/etc/leadstream/nats.creds", Stream: "ORDERED_MY_SUB",
		SubjectPrefix: "ordered.my-sub", Replicas: 3, MaxAge: 240 * time.Hour, DuplicateWindow: 90 * time.Minute, Timeout: 10 * time.Second}
	if c != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	c = ConfigFrom(cfg.Adapters[1])
	c.setDefaults()
	want = Config{Name: "other", URL: "nats://downstream:4222", Stream: "LEADS", SubjectPrefix: "leads.in", Replicas: 1,
		MaxAge: 24 * time.Hour, DuplicateWindow: time.Hour, Timeout: 10 * time.Second}
	if c != want {
		t.Errorf("given:\n got %+v\nwant %+v", c, want)
	}
}

// TestConfigFromEmbedded: in dev mode the adapter connects to the embedded
// server `leadstream run` starts.
func TestConfigFromEmbedded(t *testing.T) {
	cfg, err := config.Parse([]byte(`
nats: {listen: "127.0.0.1:4333"}
sources:
  - {name: api, provider: marktplaats-api, tenant: t1, secrets: [x]}
adapters:
  - {name: sub, type: nats}
`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c := ConfigFrom(cfg.Adapters[0]); c.URL != "nats://127.0.0.1:4333" {
		t.Errorf("url %q, want the embedded server's", c.URL)
	}
}

// TestConfigErrorsNameFields: each error of the YAML names its field, and
// none quotes the URL (it may carry a password).
func TestConfigErrorsNameFields(t *testing.T) {
	_, err := config.Parse([]byte(`
nats: {listen: "127.0.0.1:0"}
sources:
  - {name: api, provider: marktplaats-api, tenant: t1, secrets: [x]}
adapters:
  - {name: a, type: nats}
  - {name: b, type: nats, url: "http://user:hunter2@x", secret: s, stream: EVENTS, subject_prefix: "events.b", replicas: 9, stream_max_age: 1h, duplicate_window: 2h}
  - {name: c, type: nats, url: "nats://x:4222", stream: "a.b", subject_prefix: "ordered.*"}
  - {name: d, type: webhook, url: "https://x", secret: s, stream: X, duplicate_window: 1h}
  - {name: e, type: nats, url: "nats://x:4222", stream: EVENTS-dispatch-crm}
`), t.TempDir())
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, field := range []string{
		"adapters[0].url", "adapters[1].url", "adapters[1].secret", "adapters[1].stream", "adapters[1].subject_prefix",
		"adapters[1].replicas", "adapters[1].duplicate_window", "adapters[2].stream", "adapters[2].subject_prefix",
		"adapters[3].stream", "adapters[3].duplicate_window", "adapters[4].stream",
	} {
		if !strings.Contains(msg, field+": ") {
			t.Errorf("no error about %s in:\n%s", field, msg)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("an error quotes the URL's password:\n%s", msg)
	}
}

func TestValidate(t *testing.T) {
	c := Config{Name: "x", URL: "nats://h:4222", Stream: "A B", SubjectPrefix: "$JS.x", Replicas: 6, MaxAge: time.Hour, DuplicateWindow: 2 * time.Hour, Timeout: -1}
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate: %v, want ErrInvalidConfig", err)
	}
	for _, field := range []string{"stream", "subject_prefix", "replicas", "duplicate_window", "timeout"} {
		if !strings.Contains(err.Error(), ": "+field+": ") {
			t.Errorf("no error about %s in %v", field, err)
		}
	}
	if err := (Config{Name: "x"}).Validate(); err == nil || !strings.Contains(err.Error(), "url: required") {
		t.Errorf("Validate without a URL: %v", err)
	}
}
