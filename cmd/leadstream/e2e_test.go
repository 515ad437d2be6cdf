package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// TestRunEndToEnd runs `leadstream run` as a user would and sends the
// samples with simulate, twice: every sample is normalized once, the doc
// example is dead-lettered with its reason, and the second round adds
// nothing.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	lms := newRecordingLMS(t)
	d := newDevConfig(t, fmt.Sprintf("normalizer: {ack_wait: 3s, handler_timeout: 2s}\ndispatcher: {max_park: 7s, ack_wait: 3s}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\n", lms.srv.URL, lmsSecret))
	cfgPath, url, natsAddr := d.path, d.url, d.natsAddr
	signer, err := simulate.NewSigner(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	startDev(t, bin, cfgPath, url)
	nc, js, err := natsconn.Connect("nats://"+natsAddr, natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	samples := len(simulate.Samples())
	count := func(stream string) uint64 {
		st, err := js.Stream(context.Background(), stream)
		if err != nil {
			return 0
		}
		info, err := st.Info(context.Background())
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	waitFor := func(stream string, want uint64) {
		t.Helper()
		natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			if n := count(stream); n != want {
				return fmt.Errorf("%s holds %d, want %d", stream, n, want)
			}
			return nil
		})
	}
	for round := range 2 {
		for _, r := range simulate.Run(context.Background(), &http.Client{Timeout: 10 * time.Second}, url, signer) {
			if r.Err != nil || r.Status != http.StatusAccepted {
				t.Fatalf("round %d: %s: %d %v %s", round, r.Sample, r.Status, r.Err, r.Body)
			}
		}
		waitFor(streams.RAW, uint64(samples))
		waitFor(streams.EVENTS, uint64(samples-1))
		waitFor(streams.DLQ, 1)
	}
	letters, err := dlq.List(context.Background(), js, dlq.Filter{})
	if err != nil || len(letters) != 1 || letters[0].Reason != "unsupported_type" || letters[0].Name != "unknown" {
		t.Fatalf("dead letters: %+v %v", letters, err)
	}

	// Every normalized event reached the LMS, signed, once, in causal order;
	// the lone PENDING->COMPLETED transaction change after max_park, as an
	// orphan, since its predecessor never came.
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if n := len(lms.ids()); n != samples-1 {
			lms.mu.Lock()
			defer lms.mu.Unlock()
			return fmt.Errorf("LMS has %d events, want %d: %v", n, samples-1, lms.types)
		}
		return nil
	})
	lms.mu.Lock()
	defer lms.mu.Unlock()
	for id, n := range lms.seen {
		if n != 1 {
			t.Errorf("webhook-id %s accepted %d times", id, n)
		}
	}
	pos := map[string]int{}
	for i, typ := range lms.types {
		if _, ok := pos[typ]; !ok {
			pos[typ] = i
		}
	}
	for _, dep := range []string{"chat.message", "lead.sold", "lead.invoiced", "lead.paid"} {
		if pos[dep] < pos["lead.created"] {
			t.Errorf("%s delivered before lead.created: %v", dep, lms.types)
		}
	}
	if len(lms.orphans) != 1 || lms.orphans[0] != "transaction.status_changed" {
		t.Errorf("orphans %v, want just the transaction change", lms.orphans)
	}
	if pos["invoice.paid"] < pos["invoice.created"] {
		t.Errorf("invoice.paid before invoice.created: %v", lms.types)
	}
}
