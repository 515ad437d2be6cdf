package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

var lmsSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("leadstream-e2e-test-secret-0123"))

// recordingLMS is the outside world's LMS: it checks each request's Standard
// Webhooks signature with the standard's own library and records what it got.
type recordingLMS struct {
	srv     *httptest.Server
	mu      sync.Mutex
	order   []string               // webhook-ids in arrival order
	types   []string               // their CloudEvents types
	orphans []string               // types of those marked as orphans
	subject map[string]string      // webhook-id -> its CloudEvents subject (the aggregate)
	orphan  map[string]bool        // webhook-ids that came marked as orphans
	at      map[string][]time.Time // webhook-id -> when it was accepted, each time
	seen    map[string]int         // webhook-id -> times accepted
	reject  string                 // a type answered 400 (terminal), not recorded
}

func newRecordingLMS(t *testing.T) *recordingLMS {
	wh, err := standardwebhooks.NewWebhook(lmsSecret)
	if err != nil {
		t.Fatal(err)
	}
	l := &recordingLMS{seen: map[string]int{}, subject: map[string]string{}, orphan: map[string]bool{}, at: map[string][]time.Time{}}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("LMS: signature does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ce struct {
			ID, Type, Subject string
			Orphan            bool `json:"leadstreamorphan"`
		}
		if err := json.Unmarshal(body, &ce); err != nil || ce.ID != r.Header.Get("webhook-id") || r.Header.Get("Content-Type") != "application/cloudevents+json" {
			t.Errorf("LMS: not a CloudEvent with webhook-id = id: %v", err)
		}
		l.mu.Lock()
		if ce.Type == l.reject {
			l.mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if l.seen[ce.ID] == 0 {
			l.order = append(l.order, ce.ID)
			l.types = append(l.types, ce.Type)
			if ce.Orphan {
				l.orphans = append(l.orphans, ce.Type)
				l.orphan[ce.ID] = true
			}
		}
		l.seen[ce.ID]++
		l.subject[ce.ID] = ce.Subject
		l.at[ce.ID] = append(l.at[ce.ID], time.Now())
		l.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *recordingLMS) ids() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.order...)
}

func (l *recordingLMS) typesSeen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.types...)
}
