package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// TestPoisonWebhooks runs `leadstream run` (edge, normalizer and dispatcher
// on one NATS connection) and sends an authentic Marktplaats LMS chat
// message and then its lead, whose conversationId and ids are 3,000 bytes
// each: once enough for a KV subject over nats-server's max_control_line,
// which closed the shared connection for good, and again after every
// restart. Now both reach the LMS, the lead first, under one bounded
// aggregate; the process stays ready; and the ordinary samples flow
// afterwards.
func TestPoisonWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	lms := newRecordingLMS(t)
	d := newDevConfig(t, fmt.Sprintf("dispatcher: {max_park: 2m}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\n", lms.srv.URL, lmsSecret))
	signer, err := simulate.NewSigner(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	startDev(t, bin, d.path, d.url)
	src, ok := signer.SourceFor(config.ProviderMarktplaatsLMS)
	if !ok {
		t.Fatal("no Marktplaats LMS source in the config")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(name, body string) string {
		t.Helper()
		req, err := signer.Request(context.Background(), d.url, src, name, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var a struct{ ID string }
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &a) != nil {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, b)
		}
		return a.ID
	}
	conv := strings.Repeat("c", 3000)
	chatID := post("marktplaats-lms/chat", `{"messageId": "`+strings.Repeat("8", 3000)+`", "conversationId": "`+conv+
		`", "sentAt": "2026-11-20T10:16:30Z", "sender": "BUYER", "text": "Kan ik zaterdag langskomen?"}`)
	leadID := post("marktplaats-lms/lead", `{"leadId": "`+strings.Repeat("9", 3000)+`", "conversationId": "`+conv+
		`", "createdAt": "2026-11-20T10:15:00Z", "buyer": {"name": "Jan de Vries"}}`)

	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if got := lms.ids(); len(got) != 2 {
			return fmt.Errorf("LMS has %v, want the lead and the chat message", got)
		}
		return nil
	})
	if got := lms.ids(); got[0] != leadID || got[1] != chatID {
		t.Fatalf("LMS got %v, want lead %s before chat %s", got, leadID, chatID)
	}
	if code, body := get(t, d.url+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz after the long ids: %d %s", code, body)
	}

	// Both events carry the hashed conversation as their aggregate.
	nc, js, err := natsconn.Connect("nats://"+d.natsAddr, natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := js.Stream(context.Background(), streams.EVENTS)
	if err != nil {
		t.Fatal(err)
	}
	want := "mp-leads/conversation/" + natskey.Hash(conv)
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := envelope.HeaderValue(m.Header, envelope.HdrCESubject); got != want {
			t.Errorf("event %d: ce-subject %.80q, want %q", seq, got, want)
		}
	}

	// Ordinary webhooks keep flowing on the same process and connection.
	for _, r := range simulate.Run(context.Background(), client, d.url, signer) {
		if r.Err != nil || r.Status != http.StatusAccepted {
			t.Fatalf("%s after the long ids: %d %v %s", r.Sample, r.Status, r.Err, r.Body)
		}
	}
	samples := len(simulate.Samples())
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		// Every sample but the doc example (dead-lettered) and the lone
		// transaction change (parked for max_park).
		if n := len(lms.ids()); n != 2+samples-2 {
			return fmt.Errorf("LMS has %d events, want %d", n, 2+samples-2)
		}
		return nil
	})
}
