package bench

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// lms is the fake LMS the dispatcher delivers to: an HTTP server on
// loopback that answers 204 at once and records, per webhook-id, when it
// first accepted it. It stands for an LMS that is never the bottleneck, so
// that the figures are the dispatcher's.
type lms struct {
	srv *httptest.Server
	// verify, when set, checks every request's Standard Webhooks signature
	// and answers 401 to a bad one. An HMAC per request is a real LMS's
	// cost, not the dispatcher's: the bench leaves it out unless asked.
	verify *standardwebhooks.Webhook

	mu    sync.Mutex
	at    map[string]time.Time // webhook-id -> first accepted
	order []string             // webhook-ids in the order first accepted
	dups  int                  // requests for a webhook-id already accepted
	// last is when the latest new webhook-id was accepted.
	last time.Time
	// bad counts requests refused for their signature.
	bad atomic.Int64
}

// startLMS serves a fake LMS on 127.0.0.1; secret, when not empty, is the
// Standard Webhooks secret it verifies signatures with.
func startLMS(secret string) (*lms, error) {
	l := &lms{at: map[string]time.Time{}}
	if secret != "" {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return nil, err
		}
		l.verify = wh
	}
	// httptest picks 127.0.0.1 too; listening explicitly keeps the bench's
	// traffic on loopback whatever that default becomes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l.srv = httptest.NewUnstartedServer(l)
	l.srv.Listener = ln
	l.srv.Start()
	return l, nil
}

func (l *lms) url() string { return l.srv.URL + "/events" }

func (l *lms) close() { l.srv.Close() }

// ServeHTTP accepts a delivery.
func (l *lms) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l.verify != nil {
		body, err := io.ReadAll(r.Body)
		if err != nil || l.verify.Verify(body, r.Header) != nil {
			l.bad.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	} else {
		// Read all the same: a real LMS reads the body, and an unread one
		// costs the connection.
		_, _ = io.Copy(io.Discard, r.Body)
	}
	id := r.Header.Get(webhook.HeaderID)
	now := time.Now()
	l.mu.Lock()
	if _, ok := l.at[id]; ok {
		l.dups++
	} else {
		l.at[id] = now
		l.order = append(l.order, id)
		l.last = now
	}
	l.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// count is how many distinct webhook-ids were accepted, and when the latest.
func (l *lms) count() (int, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.order), l.last
}

// duplicates is how many requests repeated an accepted webhook-id.
func (l *lms) duplicates() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dups
}

// accepted returns when id was first accepted.
func (l *lms) accepted(id string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.at[id]
	return t, ok
}

// positions maps each accepted webhook-id to its place in the order of
// acceptance.
func (l *lms) positions() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	pos := make(map[string]int, len(l.order))
	for i, id := range l.order {
		pos[id] = i
	}
	return pos
}
