package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
)

// TestTrace follows webhooks through `leadstream run` with `leadstream
// trace`: a lead received, normalized and delivered (found by its event id
// and by the provider's id), a transaction parked behind the change it
// needs, a bid the LMS refused for good (dead-lettered at the adapter), the
// provider's doc example (dead-lettered by the normalizer), and an id
// nobody sent; and the same as JSON from the admin endpoint /trace/{id}.
func TestTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	lms := newRecordingLMS(t)
	lms.reject = "bid.placed"
	d, ids := runSamples(t, bin, fmt.Sprintf("dispatcher: {max_park: 10m}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\n", lms.srv.URL, lmsSecret)) // sample -> event id
	trace := func(id string) (webhookTrace, error) {
		out, err := exec.Command(bin, "trace", id, "--json", "--config", d.path).Output()
		var tr webhookTrace
		if jerr := json.Unmarshal(out, &tr); jerr != nil {
			return tr, fmt.Errorf("trace %s: %v (%v): %s", id, jerr, err, out)
		}
		return tr, err
	}
	adapter := func(tr webhookTrace, name string) string {
		for _, a := range tr.Adapters {
			if a.Adapter == name {
				return a.Status + " " + strings.Join(a.Missing, ",")
			}
		}
		return ""
	}

	lead := ids["marktplaats-lms/lead"]
	natstest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		tr, err := trace(lead)
		if err != nil {
			return err
		}
		if !tr.Found || tr.Received == nil || tr.Received.Sequence == 0 || tr.Received.KeyID != config.KeyIDLeadDelivery ||
			tr.Normalized == nil || tr.Normalized.Type != "lead.created" || adapter(tr, "crm") != "delivered " || tr.Lead == nil {
			return fmt.Errorf("lead: %+v", tr)
		}
		return nil
	})
	// The provider's own id finds the same webhook.
	if tr, err := trace("5f1d7c2a-8e43-4b7e-9a51-0c6f2d9b3e10"); err != nil || tr.EventID != lead || tr.Source != "mp-leads" {
		t.Errorf("by the provider's id: %v %+v", err, tr)
	}
	if tr, err := trace(ids["marktplaats-api/transaction-status-changed"]); err != nil ||
		adapter(tr, "crm") != "parked transaction.status_changed=PENDING" {
		t.Errorf("transaction: %v %+v", err, tr)
	}
	natstest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		tr, err := trace(ids["marktplaats-api/bid-placed"])
		if err != nil {
			return err
		}
		if adapter(tr, "crm") != "dead_lettered " || !slices.ContainsFunc(tr.DeadLetters, func(l traceLetter) bool { return l.Stage == "deliver" && l.Reason == "terminal" }) {
			return fmt.Errorf("bid: %+v", tr)
		}
		return nil
	})
	natstest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		tr, err := trace("id") // the doc example's provider event id
		if err != nil {
			return err
		}
		if tr.Normalized != nil || len(tr.DeadLetters) != 1 || tr.DeadLetters[0].Reason != "unsupported_type" || tr.Received == nil {
			return fmt.Errorf("doc example: %+v", tr)
		}
		return nil
	})
	if tr, err := trace("never-sent"); err == nil || tr.Found {
		t.Errorf("an id nobody sent: %v %+v", err, tr)
	}

	// The admin endpoint answers the same.
	nc, js, err := natsconn.Connect("nats://"+d.natsAddr, natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	srv := httptest.NewServer(adminHandler(nc, js, prometheus.NewRegistry(), d.cfg))
	defer srv.Close()
	for id, want := range map[string]int{lead: http.StatusOK, "never-sent": http.StatusNotFound} {
		resp, err := http.Get(srv.URL + "/trace/" + id)
		if err != nil {
			t.Fatal(err)
		}
		var tr webhookTrace
		_ = json.NewDecoder(resp.Body).Decode(&tr)
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusOK && tr.Normalized == nil) {
			t.Errorf("GET /trace/%s: %d %+v, want %d", id, resp.StatusCode, tr, want)
		}
	}
}
