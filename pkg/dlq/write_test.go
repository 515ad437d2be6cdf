package dlq_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/embedded"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// writeServer runs a JetStream server whose max_payload is maxPayload, with
// DLQ, and connects to it.
func writeServer(t *testing.T, maxPayload int32) jetstream.JetStream {
	t.Helper()
	ns, err := embedded.Start(embedded.Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	_, js := natstest.Connect(t, ns)
	if err := streams.Ensure(context.Background(), js, streams.DLQConfig(&config.Config{})); err != nil {
		t.Fatal(err)
	}
	return js
}

// TestWriteTooLarge: a letter the server's max_payload refuses is stored
// with less in it, and says what it left out; one that cannot be made
// smaller is not stored, and the error says why.
func TestWriteTooLarge(t *testing.T) {
	const maxPayload = 16 << 10
	js := writeServer(t, maxPayload)
	big := strings.Repeat("x", maxPayload)
	original := nats.Header{"Leadstream-Source": {"mp-api"}}
	for _, c := range []struct {
		name       string
		letter     dlq.Letter
		wantErr    bool
		wantLog    bool
		wantBody   bool
		wantSuffix string
	}{
		{"fits", dlq.Letter{Log: []string{"attempt 1: 500"}, Body: []byte("{}")}, false, true, true, ""},
		{"attempt log too large", dlq.Letter{Log: []string{big}, Body: []byte("{}")}, false, false, true,
			" (attempt log left out: too large)"},
		{"original too large", dlq.Letter{Log: []string{"attempt 1: 500"}, Body: []byte(big)}, false, false, false,
			" (original message left out: too large; it is EVENTS sequence 7)"},
		{"error text too large", dlq.Letter{Error: big, Body: []byte("{}")}, true, false, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := c.letter
			l.Stage, l.Name, l.Reason, l.Subject, l.Sequence, l.Attempts = dlq.StageDeliver, strings.ReplaceAll(c.name, " ", "-"), "terminal", "events.lead.created.t1", 7, 1
			if l.Error == "" {
				l.Error = "LMS answered 422"
			}
			l.Header = original
			before := l
			err := dlq.Write(context.Background(), js, &l)
			if l.Error != before.Error || len(l.Log) != len(before.Log) || len(l.Body) != len(before.Body) {
				t.Errorf("Write changed the caller's letter")
			}
			if c.wantErr {
				if !errors.Is(err, nats.ErrMaxPayload) {
					t.Fatalf("Write: %v, want ErrMaxPayload", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := dlq.List(context.Background(), js, dlq.Filter{Stage: dlq.StageDeliver, Name: l.Name})
			if err != nil || len(got) != 1 {
				t.Fatalf("listed %d letters (%v), want 1", len(got), err)
			}
			g := got[0]
			if g.Error != before.Error+c.wantSuffix || g.Sequence != 7 || g.Subject != l.Subject || g.Reason != "terminal" {
				t.Errorf("stored letter: error %q, sequence %d, subject %q, reason %q", g.Error, g.Sequence, g.Subject, g.Reason)
			}
			if (len(g.Log) > 0) != c.wantLog || (len(g.Body) > 0) != c.wantBody || (g.Header.Get("Leadstream-Source") != "") != c.wantBody {
				t.Errorf("stored letter: %d log lines, %d body bytes, source header %q; want log %v, original %v",
					len(g.Log), len(g.Body), g.Header.Get("Leadstream-Source"), c.wantLog, c.wantBody)
			}
		})
	}
}

// TestWriteOnce: a letter written again (a retry after a lost
// acknowledgement, a redelivered message) is stored once, per stage, name
// and original sequence; letters that do not know their original's
// sequence are all stored.
func TestWriteOnce(t *testing.T) {
	js := writeServer(t, 0)
	ctx := context.Background()
	letters := []dlq.Letter{
		{Stage: dlq.StageNormalize, Name: "lead", Reason: "unsupported_type", Sequence: 3},
		{Stage: dlq.StageNormalize, Name: "lead", Reason: "unsupported_type", Sequence: 3}, // again
		{Stage: dlq.StageNormalize, Name: "chat", Reason: "unsupported_type", Sequence: 3},
		{Stage: dlq.StageDeliver, Name: "lead", Reason: "terminal", Sequence: 3},
		{Stage: dlq.StageDeliver, Name: "crm", Reason: "event_missing"},
		{Stage: dlq.StageDeliver, Name: "crm", Reason: "event_missing"},
	}
	for i := range letters {
		if err := dlq.Write(ctx, js, &letters[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := dlq.List(ctx, js, dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(letters)-1 {
		t.Fatalf("DLQ holds %d letters, want %d: only the repeated normalize.lead letter of sequence 3 is a duplicate", len(got), len(letters)-1)
	}
	if id := dlq.MsgID(dlq.StageDeliver, "crm", 42); id != "deliver:crm:42" {
		t.Errorf("MsgID = %q, want deliver:crm:42", id)
	}
}
