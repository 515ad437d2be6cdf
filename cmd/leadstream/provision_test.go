package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// TestProvision: on an empty JetStream, provision creates every stream,
// bucket, consumer and consumer group the config needs and says so; run
// again it changes nothing; after a config change it says what changed;
// and a change JetStream cannot apply in place stops it, naming the object.
func TestProvision(t *testing.T) {
	cfg := newDevConfig(t, "adapters:\n  - {name: crm, type: webhook, url: 'http://127.0.0.1:1', secret: "+strconv.Quote(lmsSecret)+"}\n").cfg
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx := context.Background()
	run := func(cfg *config.Config) (string, error) {
		var out bytes.Buffer
		err := provision(ctx, js, cfg, zap.NewNop(), &out)
		return out.String(), err
	}

	out, err := run(cfg)
	if err != nil {
		t.Fatalf("provision: %v\n%s", err, out)
	}
	t.Logf("first run:\n%s", out)
	for _, want := range []string{
		"created  stream RAW", "created  stream EVENTS", "created  stream DLQ",
		"created  stream KV_dedupe", "created  stream KV_dispatch", "created  stream KV_leads",
		"created  consumer RAW > normalizer-lead", "created  consumer RAW > normalizer-unknown",
		"created  consumer EVENTS > projection-leads",
		"created  stream EVENTS-dispatch-crm", "created  group EVENTS.dispatch-crm",
		"0 more already as configured",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("first run does not say %q", want)
		}
	}
	created := strings.Count(out, "created  ")

	out, err = run(cfg)
	if err != nil {
		t.Fatalf("provision again: %v", err)
	}
	if strings.Contains(out, "created") || strings.Contains(out, "changed") || out != strconv.Itoa(created)+" more already as configured\n" {
		t.Errorf("second run, want nothing to do:\n%s", out)
	}

	changed := *cfg
	changed.Streams.EventsMaxAge = config.Dur(240 * time.Hour)
	out, err = run(&changed)
	if err != nil {
		t.Fatalf("provision after a change: %v", err)
	}
	if !regexp.MustCompile(`(?m)^changed  stream EVENTS: max_age 2592000000000000 -> 864000000000000$`).MatchString(out) {
		t.Errorf("after events_max_age 720h -> 240h:\n%s", out)
	}

	// A DLQ someone made in memory cannot become a file stream in place.
	ns2 := natstest.RunServer(t)
	_, js2 := natstest.Connect(t, ns2)
	dlq := streams.DLQConfig(cfg)
	dlq.Storage = jetstream.MemoryStorage
	if _, err := js2.CreateStream(ctx, dlq); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = provision(ctx, js2, cfg, zap.NewNop(), &buf)
	if err == nil || !strings.Contains(err.Error(), "stream DLQ") {
		t.Fatalf("provision over a memory DLQ = %v, want an error naming stream DLQ\n%s", err, buf.String())
	}
	t.Logf("refused: %v", err)
}
