// Package webhook is the adapter that POSTs events to an LMS's HTTP
// endpoint: CloudEvents structured JSON, signed per Standard Webhooks
// (webhook-id, webhook-timestamp, webhook-signature), with the id as the
// LMS's idempotency key. A circuit breaker stops hammering an LMS that is
// down, and the answer's status says whether a failure is worth a retry.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel/propagation"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/internal/inflight"
)

// Standard Webhooks headers, and the attempt header leadstream adds.
const (
	// HeaderID carries the event id, the LMS's idempotency key: the same on
	// every attempt and on a replay from the dead-letter queue.
	HeaderID = standardwebhooks.HeaderWebhookID
	// HeaderTimestamp carries the attempt's time in Unix seconds; it is
	// signed, so an LMS can refuse a captured request replayed later.
	HeaderTimestamp = standardwebhooks.HeaderWebhookTimestamp
	// HeaderSignature carries "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
	// one space-separated entry per configured secret.
	HeaderSignature = standardwebhooks.HeaderWebhookSignature
	// HeaderAttempt carries Delivery.Attempt (1 on the first try). It is not
	// signed: it is for the LMS's logs and alerts, never for deduplication,
	// which goes by webhook-id.
	HeaderAttempt = "leadstream-attempt"
)

// ErrBreakerOpen is the cause of a delivery failed fast, without a request,
// because the LMS failed too often in a row. It comes in a
// *adapter.RetryError whose After is the rest of the cool-down.
var ErrBreakerOpen = errors.New("circuit breaker open")

// probeWait is the retry hint while the breaker's one probe is in flight:
// its outcome decides soon, and then the breaker is closed or open again.
const probeWait = time.Second

// maxDrain is how much of an answer's body is read past the snippet so the
// connection can be reused; beyond it, closing the connection is cheaper.
const maxDrain = 64 << 10

// Type is the adapter type in config (adapters[].type).
const Type = "webhook"

// Adapter delivers events to one LMS over HTTP. Build it with New.
type Adapter struct {
	cfg     Config
	log     *zap.Logger
	target  string // the URL without query or credentials, for errors
	signers []*standardwebhooks.Webhook
	client  *http.Client
	breaker *gobreaker.CircuitBreaker[struct{}]
	// halfOpenAt is when an open breaker lets a probe through, in Unix
	// nanoseconds; gobreaker does not say, and the retry hint needs it.
	halfOpenAt atomic.Int64
	group      inflight.Group
	timeoutErr error
}

var _ adapter.Adapter = (*Adapter)(nil)

// New validates cfg and builds an adapter; log may be nil. The adapter
// sends nothing before Connect.
func New(cfg Config, log *zap.Logger) (*Adapter, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	u, _ := url.Parse(cfg.URL) // Validate parsed it
	a := &Adapter{
		cfg:        cfg,
		log:        log.With(zap.String("adapter", cfg.Name)),
		target:     (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(),
		timeoutErr: fmt.Errorf("no answer within the adapter's timeout of %s: %w", cfg.Timeout, context.DeadlineExceeded),
	}
	for _, s := range cfg.Secrets {
		key, _ := decodeSecret(s) // Validate decoded it
		wh, err := standardwebhooks.NewWebhookRaw(key)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: signing key: %w", cfg.Name, err)
		}
		a.signers = append(a.signers, wh)
	}

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = cfg.MaxIdleConns
	// All requests go to one host: the per-host default of 2 idle
	// connections would reconnect for most deliveries under load.
	tr.MaxIdleConnsPerHost = cfg.MaxIdleConns
	tr.MaxConnsPerHost = cfg.MaxConns
	tr.IdleConnTimeout = cfg.IdleConnTimeout
	a.client = &http.Client{
		Transport: tr,
		// A POST redirected with 301/302/303 comes back as a bodyless GET
		// whose 200 would count as a delivery; a redirect is an answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	a.breaker = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        cfg.Name,
		MaxRequests: 1,
		Timeout:     cfg.BreakerCooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(cfg.BreakerFailures)
		},
		// A rejection proves the LMS is up and answering.
		IsSuccessful: func(err error) bool { return err == nil || adapter.IsTerminal(err) },
		// A cancellation (shutdown, Close giving up) says nothing about the LMS.
		IsExcluded:    func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: a.breakerChanged,
	})
	return a, nil
}

// Connect lets deliveries through. It makes no request: an LMS that is down
// at start is a delivery failure, not a configuration error.
func (a *Adapter) Connect(context.Context) error {
	if err := a.group.Open(); err != nil {
		return fmt.Errorf("webhook %s: connect: %w", a.cfg.Name, err)
	}
	return nil
}

// Deliver POSTs d to the LMS and returns nil on a 2xx. A 408, 429, 5xx,
// network error or timeout returns a retryable error (a *adapter.RetryError
// when the LMS sent Retry-After); a redirect or other 4xx returns an error
// wrapping adapter.ErrTerminal. Errors from an answer wrap a *StatusError.
// While the circuit breaker is open it returns a *adapter.RetryError
// wrapping ErrBreakerOpen without a request. Before Connect and after Close
// it returns an error wrapping adapter.ErrNotConnected.
func (a *Adapter) Deliver(ctx context.Context, d *adapter.Delivery) error {
	ctx, done, err := a.group.Enter(ctx)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", a.cfg.Name, err)
	}
	defer done()

	ce, err := NewCloudEvent(d)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", a.cfg.Name, err)
	}
	body, err := ce.Marshal()
	if err != nil {
		return adapter.Terminal(fmt.Errorf("webhook %s: %w", a.cfg.Name, err))
	}

	_, err = a.breaker.Execute(func() (struct{}, error) {
		return struct{}{}, a.post(ctx, ce.ID, d.Attempt, body)
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return &adapter.RetryError{
			Err:   fmt.Errorf("webhook %s: event %s not sent: %w after %d failures in a row", a.cfg.Name, ce.ID, ErrBreakerOpen, a.cfg.BreakerFailures),
			After: a.cooldownLeft(),
		}
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		return &adapter.RetryError{
			Err:   fmt.Errorf("webhook %s: event %s not sent: %w, a probe is in flight", a.cfg.Name, ce.ID, ErrBreakerOpen),
			After: probeWait,
		}
	}
	return err
}

// post makes one signed attempt.
func (a *Adapter) post(ctx context.Context, id string, attempt int, body []byte) error {
	ctx, cancel := context.WithTimeoutCause(ctx, a.cfg.Timeout, a.timeoutErr)
	defer cancel()
	fail := func(err error) error {
		return fmt.Errorf("webhook %s: posting event %s to %s: %w", a.cfg.Name, id, a.target, err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.URL, bytes.NewReader(body))
	if err == nil {
		// The LMS may continue the webhook's trace (W3C traceparent).
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	if err != nil {
		return adapter.Terminal(fail(err))
	}
	// A fresh timestamp per attempt: the LMS rejects stale ones (replay
	// protection), and a retry may come hours later.
	now := time.Now()
	sig, err := a.sign(id, now, body)
	if err != nil {
		return adapter.Terminal(fail(err))
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", a.cfg.UserAgent)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	req.Header.Set(HeaderAttempt, strconv.Itoa(attempt))

	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// Say why the attempt ended: our timeout, the caller's deadline
			// or cancellation, or Close giving up.
			return fail(context.Cause(ctx))
		}
		// *url.Error quotes the whole URL, query tokens included.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fail(err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		_ = resp.Body.Close()
	}()

	status := resp.StatusCode
	if status >= 200 && status < 300 {
		return nil
	}
	err = fail(&StatusError{Status: status, Snippet: snippet(resp.Body)})
	switch {
	case retryable(status):
		if after, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return &adapter.RetryError{Err: err, After: after}
		}
		return err
	case status >= 300 && status < 400:
		return adapter.Terminal(fmt.Errorf("%w (redirects are not followed: set the adapter's url to the final address)", err))
	case status >= 400:
		return adapter.Terminal(err)
	default:
		// 1xx as a final answer: a broken LMS or proxy, maybe not for long.
		return err
	}
}

// sign returns the webhook-signature value: one "v1,<base64>" per secret,
// space-separated, so an LMS holding any of them can verify.
func (a *Adapter) sign(id string, ts time.Time, body []byte) (string, error) {
	sigs := make([]string, len(a.signers))
	for i, wh := range a.signers {
		sig, err := wh.Sign(id, ts, body)
		if err != nil {
			return "", fmt.Errorf("signing with secrets[%d]: %w", i, err)
		}
		sigs[i] = sig
	}
	return strings.Join(sigs, " "), nil
}

// Close turns new deliveries away and waits for those in flight; when ctx
// ends first, it cancels them (they fail as retryable) and returns ctx's
// error.
func (a *Adapter) Close(ctx context.Context) error {
	err := a.group.Close(ctx)
	a.client.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("webhook %s: %w", a.cfg.Name, err)
	}
	return nil
}

// BreakerState is the circuit breaker's state, "closed", "half-open" or
// "open", for metrics and health endpoints.
func (a *Adapter) BreakerState() string { return a.breaker.State().String() }

// breakerChanged runs under the breaker's lock, on every state change.
func (a *Adapter) breakerChanged(_ string, from, to gobreaker.State) {
	if to == gobreaker.StateOpen {
		a.halfOpenAt.Store(time.Now().Add(a.cfg.BreakerCooldown).UnixNano())
		a.log.Warn("webhook circuit breaker opened: deliveries fail fast",
			zap.Stringer("from", from), zap.Duration("cooldown", a.cfg.BreakerCooldown))
		return
	}
	a.log.Info("webhook circuit breaker state changed", zap.Stringer("from", from), zap.Stringer("to", to))
}

// cooldownLeft is how long an open breaker stays open: the retry hint.
func (a *Adapter) cooldownLeft() time.Duration {
	left := time.Until(time.Unix(0, a.halfOpenAt.Load()))
	// The breaker half-opens lazily, on the next call after the cool-down;
	// a hint of zero would read as no hint at all.
	return max(left, time.Millisecond)
}
