package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap/zaptest"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/adaptertest"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/webhook"
)

// bound is how long a test waits for anything that should happen.
const bound = 10 * time.Second

// TestContract runs the adapter contract with an httptest.Server as the
// shim: it checks the signature and the CloudEvent on every request, then
// acts out the LMS's outcome in HTTP.
func TestContract(t *testing.T) {
	adaptertest.Run(t, func(t *testing.T, lms *adaptertest.LMS) adapter.Adapter {
		secret := webhook.GenerateSecret()
		srv := httptest.NewServer(shim(t, lms, secret))
		t.Cleanup(srv.Close)
		a, err := webhook.New(webhook.Config{URL: srv.URL + "/events", Secrets: []string{secret}}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return a
	})
}

// shim translates HTTP requests into LMS attempts and outcomes into answers.
func shim(t *testing.T, lms *adaptertest.LMS, secret string) http.Handler {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("shim: reading body: %v", err)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("shim: signature does not verify: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ce webhook.CloudEvent
		if err := json.Unmarshal(body, &ce); err != nil {
			t.Errorf("shim: body is not a CloudEvent: %v", err)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		if got := r.Header.Get(webhook.HeaderID); got != ce.ID {
			t.Errorf("shim: webhook-id %q, CloudEvent id %q: want them equal", got, ce.ID)
		}
		attempt, _ := strconv.Atoi(r.Header.Get(webhook.HeaderAttempt))
		o := lms.Receive(r.Context(), adaptertest.Received{
			EventID: r.Header.Get(webhook.HeaderID),
			Type:    ce.Type,
			Attempt: attempt,
			Orphan:  ce.Orphan,
			Missing: missing(ce.Missing),
			Body:    body,
		})
		if o.Disconnect {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("shim: hijacking to disconnect: %v", err)
				return
			}
			_ = conn.Close()
			return
		}
		if o.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(o.RetryAfter/time.Second)))
		}
		w.WriteHeader(o.StatusCode())
	})
}

// newAdapter builds and connects an adapter, closed at the end of the test.
func newAdapter(t *testing.T, cfg webhook.Config) *webhook.Adapter {
	t.Helper()
	a, err := webhook.New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := a.Connect(context.Background()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		_ = a.Close(ctx)
	})
	return a
}

// request is one request as a test server saw it.
type request struct {
	header http.Header
	body   []byte
}

// recorder is an LMS that records requests and answers as a test sets.
type recorder struct {
	mu       sync.Mutex
	requests []request
	status   int
	header   http.Header // sent with every answer
	body     string
}

func newRecorder(t *testing.T) (*recorder, *httptest.Server) {
	rec := &recorder{status: http.StatusNoContent, header: http.Header{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, request{header: r.Header.Clone(), body: body})
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		status, answer := rec.status, rec.body
		rec.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return rec, srv
}

// answer sets the status, an optional header (name, value) and the body of
// the answers from now on.
func (r *recorder) answer(status int, body string, header ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.body = status, body
	for i := 0; i+1 < len(header); i += 2 {
		r.header.Set(header[i], header[i+1])
	}
}

func (r *recorder) got() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

func deliver(a *webhook.Adapter, id string, attempt int) error {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	return a.Deliver(ctx, &adapter.Delivery{Event: adaptertest.Event(id), Attempt: attempt})
}

// hmacSignature computes a Standard Webhooks v1 signature from the spec,
// without the library, to check that the adapter and the library agree
// with it.
func hmacSignature(t *testing.T, secret, id, timestamp string, body []byte) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestSignature(t *testing.T) {
	rec, srv := newRecorder(t)
	secret := webhook.GenerateSecret()
	a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{secret}})
	if err := deliver(a, "evt-sig", 1); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := rec.got()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	h, body := reqs[0].header, reqs[0].body
	if got := h.Get("Content-Type"); got != webhook.ContentType {
		t.Errorf("Content-Type = %q, want %q", got, webhook.ContentType)
	}
	if got := h.Get("webhook-id"); got != "evt-sig" {
		t.Errorf("webhook-id = %q, want the event id", got)
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp = %q, want the current Unix time in seconds", h.Get("webhook-timestamp"))
	}

	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); err != nil {
		t.Errorf("library Verify: %v", err)
	}
	want := hmacSignature(t, secret, "evt-sig", h.Get("webhook-timestamp"), body)
	if got := h.Get("webhook-signature"); got != want {
		t.Errorf("webhook-signature = %q, want %q (HMAC-SHA256 over id.timestamp.body)", got, want)
	}

	// The signature covers the body: a changed body no longer verifies.
	tampered := bytes.Replace(body, []byte("Golf"), []byte("Polo"), 1)
	if err := wh.Verify(tampered, h); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("Verify of a tampered body: %v, want ErrNoMatchingSignature", err)
	}
}

// TestRotation: with two secrets active, an LMS holding either verifies.
func TestRotation(t *testing.T) {
	rec, srv := newRecorder(t)
	oldSecret, newSecret := webhook.GenerateSecret(), webhook.GenerateSecret()
	a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{oldSecret, newSecret}})
	if err := deliver(a, "evt-rot", 1); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	h, body := rec.got()[0].header, rec.got()[0].body
	sigs := strings.Fields(h.Get("webhook-signature"))
	if len(sigs) != 2 {
		t.Fatalf("webhook-signature has %d entries, want one per secret: %q", len(sigs), h.Get("webhook-signature"))
	}
	for i, secret := range []string{oldSecret, newSecret} {
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, h); err != nil {
			t.Errorf("secret %d: Verify: %v", i, err)
		}
		if want := hmacSignature(t, secret, "evt-rot", h.Get("webhook-timestamp"), body); sigs[i] != want {
			t.Errorf("signature %d = %q, want %q", i, sigs[i], want)
		}
	}
	stranger, _ := standardwebhooks.NewWebhook(webhook.GenerateSecret())
	if err := stranger.Verify(body, h); !errors.Is(err, standardwebhooks.ErrNoMatchingSignature) {
		t.Errorf("Verify with a secret not configured: %v, want ErrNoMatchingSignature", err)
	}
}

// TestRedeliverySameID: every attempt, and a replay from the dead-letter
// queue, carries the event id as webhook-id and the same body.
func TestRedeliverySameID(t *testing.T) {
	rec, srv := newRecorder(t)
	secret := webhook.GenerateSecret()
	a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{secret}})

	rec.answer(http.StatusServiceUnavailable, "")
	if err := deliver(a, "evt-again", 1); err == nil || adapter.IsTerminal(err) {
		t.Fatalf("attempt 1 against a 503: %v, want a retryable error", err)
	}
	rec.answer(http.StatusOK, "")
	if err := deliver(a, "evt-again", 2); err != nil {
		t.Fatalf("attempt 2: %v", err)
	}
	if err := deliver(a, "evt-again", 1); err != nil { // a DLQ replay starts over
		t.Fatalf("replay: %v", err)
	}
	reqs := rec.got()
	if len(reqs) != 3 {
		t.Fatalf("server got %d requests, want 3", len(reqs))
	}
	wh, _ := standardwebhooks.NewWebhook(secret)
	for i, r := range reqs {
		if got := r.header.Get("webhook-id"); got != "evt-again" {
			t.Errorf("request %d: webhook-id %q, want evt-again", i, got)
		}
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Errorf("request %d: Verify: %v", i, err)
		}
		if !bytes.Equal(r.body, reqs[0].body) {
			t.Errorf("request %d: body differs from the first attempt's", i)
		}
	}
	for i, want := range []string{"1", "2", "1"} {
		if got := reqs[i].header.Get(webhook.HeaderAttempt); got != want {
			t.Errorf("request %d: %s = %q, want %q", i, webhook.HeaderAttempt, got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		terminal   bool
		want       time.Duration // 0: no hint
		tolerance  time.Duration
	}{
		{name: "429 seconds", status: 429, retryAfter: "7", want: 7 * time.Second},
		{name: "503 seconds", status: 503, retryAfter: "120", want: 2 * time.Minute},
		{name: "503 http-date", status: 503, retryAfter: time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), want: 90 * time.Second, tolerance: 5 * time.Second},
		{name: "500 seconds", status: 500, retryAfter: "5", want: 5 * time.Second},
		{name: "503 garbage", status: 503, retryAfter: "soon"},
		{name: "503 none", status: 503},
		{name: "503 capped", status: 503, retryAfter: "31536000", want: time.Hour},
		{name: "422 ignores it", status: 422, retryAfter: "7", terminal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, srv := newRecorder(t)
			if tt.retryAfter != "" {
				rec.answer(tt.status, "", "Retry-After", tt.retryAfter)
			} else {
				rec.answer(tt.status, "")
			}
			a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{webhook.GenerateSecret()}})
			err := deliver(a, "evt-ra", 1)
			if err == nil || adapter.IsTerminal(err) != tt.terminal {
				t.Fatalf("Deliver: %v, want terminal=%v", err, tt.terminal)
			}
			var se *webhook.StatusError
			if !errors.As(err, &se) || se.Status != tt.status {
				t.Errorf("error %v does not carry StatusError %d", err, tt.status)
			}
			after, ok := adapter.RetryAfter(err)
			switch {
			case tt.want == 0 && ok:
				t.Errorf("RetryAfter = %s, want no hint", after)
			case tt.want != 0 && (!ok || (after-tt.want).Abs() > tt.tolerance):
				t.Errorf("RetryAfter = %s, %v; want %s (±%s)", after, ok, tt.want, tt.tolerance)
			}
		})
	}
}

// TestErrorSnippet: an error quotes the start of the LMS's answer, as one
// short printable line.
func TestErrorSnippet(t *testing.T) {
	rec, srv := newRecorder(t)
	rec.answer(http.StatusUnprocessableEntity, "invalid field leadId\n\x1b[31mred\x1b[0m\r\n"+strings.Repeat("é", 500))
	a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{webhook.GenerateSecret()}})
	err := deliver(a, "evt-422", 1)
	if !adapter.IsTerminal(err) {
		t.Fatalf("Deliver against a 422: %v, want terminal", err)
	}
	var se *webhook.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v carries no StatusError", err)
	}
	if !strings.HasPrefix(se.Snippet, "invalid field leadId [31mred [0m é") {
		t.Errorf("Snippet = %q, want the body's start on one line, control characters gone", se.Snippet)
	}
	if len(se.Snippet) > 210 || strings.ContainsAny(se.Snippet, "\n\r\x1b") || !strings.HasSuffix(se.Snippet, "...") {
		t.Errorf("Snippet (%d bytes) = %q: want at most ~200 bytes, one line, marked as cut", len(se.Snippet), se.Snippet)
	}
	if msg := err.Error(); !strings.Contains(msg, "422") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want the status, on one line", msg)
	}
}

// TestNetworkErrorHidesQuery: a URL's query may hold an access token; errors
// end up in logs and the DLQ.
func TestNetworkErrorHidesQuery(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/events?token=s3cr3t-t0ken"
	srv.Close() // nothing listens there now: connection refused
	a := newAdapter(t, webhook.Config{URL: url, Secrets: []string{webhook.GenerateSecret()}})
	err := deliver(a, "evt-net", 1)
	if err == nil || adapter.IsTerminal(err) {
		t.Fatalf("Deliver to a closed port: %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q quotes the URL's query", err)
	}
	if !strings.Contains(err.Error(), "/events") {
		t.Errorf("error %q does not say where it posted", err)
	}
}

func TestRedirectIsTerminal(t *testing.T) {
	target, targetSrv := newRecorder(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, targetSrv.URL, http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{webhook.GenerateSecret()}})
	if err := deliver(a, "evt-302", 1); !adapter.IsTerminal(err) {
		t.Fatalf("Deliver answered by a redirect: %v, want terminal", err)
	}
	if n := len(target.got()); n != 0 {
		t.Errorf("the redirect target got %d requests, want none", n)
	}
}

// TestTimeout: the adapter's own Timeout bounds an attempt whose caller
// set no deadline.
func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	a := newAdapter(t, webhook.Config{URL: srv.URL, Secrets: []string{webhook.GenerateSecret()}, Timeout: 100 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		done <- a.Deliver(context.Background(), &adapter.Delivery{Event: adaptertest.Event("evt-slow"), Attempt: 1})
	}()
	select {
	case err := <-done:
		if err == nil || adapter.IsTerminal(err) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Deliver to a hanging LMS: %v, want a retryable DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), "timeout of 100ms") {
			t.Errorf("error %q does not name the adapter's timeout", err)
		}
	case <-time.After(bound):
		t.Fatal("Deliver ignored the adapter's Timeout")
	}
}

func TestConfigFrom(t *testing.T) {
	cfg := webhook.ConfigFrom(config.Adapter{
		Name: "crm", Type: "webhook", URL: "http://127.0.0.1:9000/events", Secret: "whsec_a", Secrets: []string{"whsec_b"},
		Timeout: config.Dur(3 * time.Second), BreakerFailures: 7, BreakerCooldown: config.Dur(time.Minute),
	})
	if cfg.Name != "crm" || cfg.URL != "http://127.0.0.1:9000/events" || strings.Join(cfg.Secrets, ",") != "whsec_a,whsec_b" {
		t.Errorf("ConfigFrom = %+v, want name, url and both secrets, secret first", cfg)
	}
	if cfg.Timeout != 3*time.Second || cfg.BreakerFailures != 7 || cfg.BreakerCooldown != time.Minute {
		t.Errorf("ConfigFrom = %+v, want timeout 3s, breaker 7 failures, 1m cool-down", cfg)
	}
}
