package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// runSamples starts `leadstream run` with a dev config plus extraYAML,
// sends it every signed sample (and the first again), each answered 202,
// and returns the config and each sample's event id.
func runSamples(t *testing.T, bin, extraYAML string) (devConfig, map[string]string) {
	t.Helper()
	d := newDevConfig(t, extraYAML)
	signer, err := simulate.NewSigner(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	startDev(t, bin, d.path, d.url)
	ids := map[string]string{}
	for _, r := range simulate.Run(context.Background(), &http.Client{Timeout: 10 * time.Second}, d.url, signer) {
		if r.Err != nil || r.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %v", r.Sample, r.Status, r.Err)
		}
		var a struct{ ID string }
		_ = json.Unmarshal([]byte(r.Body), &a)
		ids[r.Sample] = a.ID
	}
	return d, ids
}

// TestDLQByPrintedSequence is an operator's session: `dlq ls` prints the
// dead letters of both stages, and `dlq show`, `replay` and `drop` act on
// exactly the letter whose SEQ it printed (flags after the sequence, as
// people type them). A deliver-stage letter is made from an EVENTS message
// read by direct get, whose JetStream headers once made `show` print the
// event's sequence instead of the letter's.
func TestDLQByPrintedSequence(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	lms := newRecordingLMS(t)
	lms.reject = "bid.placed"
	d, _ := runSamples(t, bin, fmt.Sprintf("normalizer: {ack_wait: 3s, handler_timeout: 2s}\ndispatcher: {max_park: 7s, ack_wait: 3s}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\n", lms.srv.URL, lmsSecret))
	ops := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--config", d.path)...).CombinedOutput()
		return string(out), err
	}
	// SEQ of the letter of each stage, as `dlq ls` prints it.
	var deliverSeq, normalizeSeq, origin string
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		out, err := ops("dlq", "ls")
		if err != nil {
			return fmt.Errorf("dlq ls: %v: %s", err, out)
		}
		deliverSeq, normalizeSeq = "", ""
		for _, line := range strings.Split(out, "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 6 {
				continue
			}
			switch f[1] {
			case "deliver":
				deliverSeq, origin = f[0], f[5]
			case "normalize":
				normalizeSeq = f[0]
			}
		}
		if deliverSeq == "" || normalizeSeq == "" {
			return fmt.Errorf("dlq ls lacks a letter of each stage:\n%s", out)
		}
		return nil
	})
	out, err := ops("dlq", "show", deliverSeq)
	if err != nil || !strings.Contains(out, "seq:      "+deliverSeq+"\n") || !strings.Contains(out, "origin:   "+strings.Replace(origin, "#", " #", 1)) {
		t.Fatalf("dlq show %s (origin %s): %v\n%s", deliverSeq, origin, err, out)
	}

	// The LMS takes bids again: the replay delivers the letter ls printed,
	// with its original webhook-id, and removes it.
	lms.mu.Lock()
	lms.reject = ""
	lms.mu.Unlock()
	if out, err := ops("dlq", "replay", deliverSeq); err != nil || !strings.Contains(out, deliverSeq+": delivered to crm") {
		t.Fatalf("dlq replay %s: %v\n%s", deliverSeq, err, out)
	}
	if !strings.Contains(strings.Join(lms.typesSeen(), " "), "bid.placed") {
		t.Fatalf("the replayed bid.placed did not reach the LMS: %v", lms.typesSeen())
	}
	if out, err := ops("dlq", "drop", normalizeSeq); err != nil || !strings.Contains(out, normalizeSeq+": dropped") {
		t.Fatalf("dlq drop %s: %v\n%s", normalizeSeq, err, out)
	}
	out, err = ops("dlq", "ls")
	if err != nil || len(strings.Split(strings.TrimSpace(out), "\n")) != 1 {
		t.Fatalf("dlq ls after replay and drop: %v\n%s", err, out)
	}
	if out, err := ops("dlq", "show", deliverSeq); err == nil {
		t.Fatalf("dlq show of the replayed letter %s still succeeds:\n%s", deliverSeq, out)
	}
	if out, err := ops("dlq", "show", deliverSeq, normalizeSeq); err == nil || !strings.Contains(out, "unexpected argument") {
		t.Fatalf("dlq show with two sequences: %v\n%s", err, out)
	}
}
