// Package demolms is a demo lead management system for a first run of
// leadstream: point a webhook adapter at it and watch events arrive. It
// does what a real LMS should do with the dispatcher's webhooks - verify the
// Standard Webhooks signature, drop redeliveries by webhook-id, answer fast -
// and prints one line per event instead of storing it.
package demolms

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// maxBody is the largest request the demo reads; events are a few KiB.
const maxBody = 1 << 20

// maxSeen is how many webhook-ids the demo remembers: enough for any demo,
// bounded so a long-running one does not grow without end.
const maxSeen = 10_000

// Handler returns the demo LMS. It verifies each request's Standard
// Webhooks signature against any of secrets ("whsec_..."; several while one
// is rotated) and answers 401 when none matches; it prints one line per
// event to out and answers 204, also for a webhook-id it has seen before,
// which it marks "duplicate" (a retry whose first answer got lost). A
// secret that does not decode is logged and ignored. log may be nil.
func Handler(secrets []string, out io.Writer, log *zap.Logger) http.Handler {
	if log == nil {
		log = zap.NewNop()
	}
	h := &handler{out: out, log: log, seen: make(map[string]struct{})}
	for i, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		// An empty key would accept a MAC anyone can compute.
		if err != nil || s == "" || strings.TrimPrefix(s, "whsec_") == "" {
			log.Error("demolms: ignoring a secret that is not a Standard Webhooks secret", zap.Int("index", i))
			continue
		}
		h.verifiers = append(h.verifiers, wh)
	}
	if len(h.verifiers) == 0 {
		log.Error("demolms: no usable secret: every request will be refused")
	}
	return h
}

type handler struct {
	verifiers []*standardwebhooks.Webhook
	log       *zap.Logger

	mu   sync.Mutex // guards out and the seen-set
	out  io.Writer
	seen map[string]struct{}
	ring []string // seen ids in arrival order, to forget the oldest
	next int
}

// ServeHTTP answers one webhook: 405, 413, 401, 400, or 204 once printed.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body failed", http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.HeaderID)
	if err := h.verify(body, r.Header); err != nil {
		h.log.Warn("demolms: refused a webhook", zap.String("webhook_id", id), zap.Error(err))
		http.Error(w, "invalid webhook signature", http.StatusUnauthorized)
		return
	}
	var ce webhook.CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil || ce.ID == "" || ce.Type == "" {
		h.log.Warn("demolms: signed body is not a CloudEvent", zap.String("webhook_id", id))
		http.Error(w, "body is not a CloudEvent", http.StatusBadRequest)
		return
	}

	h.mu.Lock()
	duplicate := h.remember(id)
	_, err = io.WriteString(h.out, line(&ce, id, r.Header.Get(webhook.HeaderAttempt), duplicate)+"\n")
	h.mu.Unlock()
	if err != nil {
		// The event was received all the same; a broken terminal is not a
		// reason to have it sent again.
		h.log.Warn("demolms: printing an event failed", zap.String("webhook_id", id), zap.Error(err))
	}
	h.log.Debug("demolms: received", zap.String("webhook_id", id), zap.String("type", ce.Type), zap.Bool("duplicate", duplicate))
	w.WriteHeader(http.StatusNoContent)
}

// verify accepts a request that any secret verifies; the library checks the
// timestamp too (within 5 minutes), so a captured request cannot be replayed
// later.
func (h *handler) verify(body []byte, header http.Header) error {
	err := errors.New("no usable secret configured")
	for _, wh := range h.verifiers {
		if err = wh.Verify(body, header); err == nil {
			return nil
		}
	}
	return fmt.Errorf("verifying signature: %w", err)
}

// remember records id and reports whether it was seen before. Callers hold mu.
func (h *handler) remember(id string) bool {
	if _, ok := h.seen[id]; ok {
		return true
	}
	if len(h.ring) < maxSeen {
		h.ring = append(h.ring, id)
	} else {
		delete(h.seen, h.ring[h.next])
		h.ring[h.next] = id
		h.next = (h.next + 1) % maxSeen
	}
	h.seen[id] = struct{}{}
	return false
}
