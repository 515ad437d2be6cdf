// Package edge is leadstream's HTTP intake: it routes a webhook by source,
// verifies it the provider's way, and answers 2xx only once the exact body is
// durable in the RAW stream. It parses no more of a body than its event id
// and kind, and calls nothing but NATS.
package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sync/semaphore"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/jsbatch"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/tracing"
	"github.com/leadstream/leadstream/services/edge/extract"
	"github.com/leadstream/leadstream/services/edge/verify"
)

// Options are the edge's dependencies.
type Options struct {
	// Config is the validated configuration.
	Config *config.Config
	// JetStream is where RAW lives; the stream must exist.
	JetStream jetstream.JetStream
	// Logger is required.
	Logger *zap.Logger
	// Registry receives the edge's metrics; nil makes a private one.
	Registry *prometheus.Registry
	// Now is the verifiers' clock; nil is time.Now. Tests set it.
	Now func() time.Time
}

// Server is the edge's HTTP handler.
type Server struct {
	cfg *config.Config
	js  jetstream.JetStream
	log *zap.Logger
	// rejectLog logs refused requests, sampled: anyone can send those by
	// the thousand, and the counters already count each one.
	rejectLog *zap.Logger
	sources   map[string]*source
	pub       *jsbatch.Publisher
	metrics   *metrics
	// slots holds one token per request being verified or committed (max_in_flight).
	slots chan struct{}
	// reading is the byte budget of bodies being read (max_reading_bytes).
	reading *semaphore.Weighted
	// What the edge holds now, read by the gauges when scraped.
	inFlight     atomic.Int64 // requests holding a slot
	readers      atomic.Int64 // requests reading their body
	readingBytes atomic.Int64 // the reading budget they reserve
	mux          *http.ServeMux
}

type source struct {
	cfg      *config.Source
	verifier verify.Verifier
	token    bool // URLs may carry the token as a last segment
	// sigHeaders are the request headers this source's verifier checks:
	// the only ones copied into RAW, so their size is bounded by the checks.
	sigHeaders []string
}

// New builds the edge from o. Close releases it.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.JetStream == nil || o.Logger == nil {
		return nil, errors.New("edge: Config, JetStream and Logger are required")
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := checkMaxPayload(o.Config.MaxBodyBytes, o.JetStream.Conn().MaxPayload()); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     o.Config,
		js:      o.JetStream,
		log:     o.Logger,
		sources: map[string]*source{},
		slots:   make(chan struct{}, o.Config.MaxInFlight),
		reading: semaphore.NewWeighted(o.Config.MaxReadingBytes),
	}
	s.metrics = newMetrics(o.Registry, &s.inFlight, &s.readers, &s.readingBytes)
	s.rejectLog = o.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, rejectLogFirst, rejectLogThereafter,
			zapcore.SamplerHook(func(_ zapcore.Entry, d zapcore.SamplingDecision) {
				if d&zapcore.LogDropped != 0 {
					s.metrics.logDropped.Inc()
				}
			}))
	}))
	for i := range o.Config.Sources {
		sc := &o.Config.Sources[i]
		src, err := newSource(sc, o.Now)
		if err != nil {
			return nil, err
		}
		s.sources[sc.Name] = src
		for _, o := range outcomes {
			s.metrics.requests.WithLabelValues(sc.Name, o)
		}
		for _, r := range verify.Reasons() {
			s.metrics.verifyFails.WithLabelValues(sc.Name, r)
		}
	}
	s.pub = jsbatch.New(o.JetStream, jsbatch.Config{
		Timeout: o.Config.PublishTimeout.Duration,
		Queue:   o.Config.MaxInFlight,
		Observe: s.metrics.observeCommit,
	})
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /hooks/{source}", s.hook)
	s.mux.HandleFunc("POST /hooks/{source}/{token}", s.hook)
	// Any other method: a JSON 405 like every other answer (the mux's own
	// is text).
	s.mux.HandleFunc("/hooks/{source}", methodNotAllowed)
	s.mux.HandleFunc("/hooks/{source}/{token}", methodNotAllowed)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	return s, nil
}

func newSource(sc *config.Source, now func() time.Time) (*source, error) {
	src := &source{cfg: sc}
	switch sc.Provider {
	case config.ProviderMarktplaatsLMS:
		src.verifier = verify.NewCavage(sc.Keys, sc.MaxClockSkew.Duration, now)
		src.sigHeaders = []string{config.HeaderDigest, config.HeaderSignature}
	case config.ProviderMarktplaatsAPI:
		src.verifier = verify.NewHMAC(config.HeaderEcgSignature, byteSlices(sc.Secrets))
		src.sigHeaders = []string{config.HeaderEcgSignature}
	case config.ProviderOfferteAdviseur:
		src.verifier = verify.NewHMAC(config.HeaderOfferteAdviseurSignature, byteSlices(sc.Secrets))
		src.sigHeaders = []string{config.HeaderOfferteAdviseurSignature}
	case config.ProviderLokalebasen:
		src.verifier = verify.NewToken(sc.AllTokens(), sc.Allow)
		src.token = true
	default:
		return nil, fmt.Errorf("edge: source %s: unknown provider %q", sc.Name, sc.Provider)
	}
	return src, nil
}

func byteSlices(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// ServeHTTP serves the edge's routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close stops the publisher: requests still waiting are answered 503. Call
// it after the HTTP server has shut down.
func (s *Server) Close() { s.pub.Close() }

// Sampling of the rejection log lines, per message and second: the first
// rejectLogFirst, then one in rejectLogThereafter.
const (
	rejectLogFirst      = 10
	rejectLogThereafter = 1000
)

// accepted is the 202 body.
type accepted struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
}

// hook takes a webhook in three steps, each with its own bound, so that a
// client that cannot prove anything never holds what authentic requests need:
// what the headers alone refuse is answered before the body is read; reading
// the body takes a share of the reading budget (max_reading_bytes) for at
// most body_read_timeout; only verification and the commit to RAW take an
// in-flight slot (max_in_flight). Whatever it refuses, refuse answers.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("source")
	src, req, err := s.admit(r, name)
	if err == nil {
		req.Body, err = s.readBody(w, r)
	}
	if err != nil {
		// Refused before or while the body was read: the rest of it is not
		// waited for.
		closeAfter(w)
		s.refuse(w, r, name, err)
		return
	}

	select {
	case s.slots <- struct{}{}:
	default:
		s.refuse(w, r, name, errOverloaded)
		return
	}
	s.inFlight.Add(1)
	defer func() {
		<-s.slots
		s.inFlight.Add(-1)
	}()

	res, err := src.verifier.Verify(req)
	if err != nil {
		s.refuse(w, r, name, err)
		return
	}

	ev := extract.Extract(src.cfg.Provider, res.KeyID, req.Body)
	raw := &envelope.Raw{
		Source:          name,
		Provider:        src.cfg.Provider,
		Tenant:          src.cfg.Tenant,
		Kind:            ev.Kind,
		EventID:         eventid.New(name, ev.ProviderEventID),
		ProviderEventID: ev.ProviderEventID,
		ReceivedAt:      time.Now().UTC(),
		Method:          r.Method,
		Path:            req.Path,
		KeyID:           res.KeyID,
		ContentType:     clipContentType(r.Header.Get("Content-Type")),
		Signature:       signatureHeaders(r.Header, src.sigHeaders),
		Body:            req.Body,
	}
	// The webhook's trace starts here (under the provider's traceparent,
	// when it sends one) and travels on in RAW's headers.
	sctx, span := tracing.Tracer().Start(propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header)), "POST /hooks/{source}",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			attribute.String("http.request.method", r.Method), attribute.String("http.route", "/hooks/{source}"),
			attribute.String("leadstream.source", name), attribute.String("leadstream.event_id", raw.EventID),
			attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", raw.Subject()),
			attribute.String("messaging.operation.type", "send")))
	defer span.End()
	msg := raw.Msg()
	tracing.Inject(sctx, msg.Header)
	start := time.Now()
	ctx, cancel := context.WithTimeout(sctx, s.cfg.PublishTimeout.Duration)
	pub, err := s.pub.Publish(ctx, msg)
	cancel()
	s.metrics.publish.Observe(time.Since(start).Seconds())
	if err != nil {
		span.SetStatus(codes.Error, "not stored")
		s.refuse(w, r, name, err, zap.String("event_id", raw.EventID))
		return
	}
	outcome := outcomeAccepted
	if pub.Duplicate {
		outcome = outcomeDuplicate
	}
	s.metrics.requests.WithLabelValues(name, outcome).Inc()
	if ce := s.log.Check(zap.DebugLevel, "webhook stored"); ce != nil {
		ce.Write(zap.String("source", name), zap.String("event_id", raw.EventID), zap.String("kind", raw.Kind), zap.Bool("duplicate", pub.Duplicate))
	}
	writeJSON(w, http.StatusAccepted, accepted{ID: raw.EventID, Duplicate: pub.Duplicate})
}

// admit takes what arrives before the body: the source named in the path,
// the request target and announced length within their bounds, and the
// verifier's precheck of the headers. It returns the request to verify once
// the body is in.
func (s *Server) admit(r *http.Request, name string) (*source, *verify.Request, error) {
	src, ok := s.sources[name]
	if !ok || (r.PathValue("token") != "" && !src.token) {
		return nil, nil, errUnknownSource
	}
	if len(r.RequestURI) > maxRequestURI {
		return nil, nil, fmt.Errorf("%w: %d bytes over %d", errURITooLong, len(r.RequestURI), maxRequestURI)
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, nil, fmt.Errorf("%w: content length %d over limit %d", errTooLarge, r.ContentLength, s.cfg.MaxBodyBytes)
	}
	req := &verify.Request{
		Method:   r.Method,
		Path:     r.RequestURI,
		Header:   r.Header,
		RemoteIP: remoteIP(r),
		Token:    r.PathValue("token"),
	}
	switch {
	case src.token:
		// The token is the credential: it must not be kept with the body
		// (RAW holds requests for 30 days, DLQ letters copy them), and a
		// token source signs no path that a replay would need.
		req.Path = "/hooks/" + name
	case src.cfg.PublicPath != "":
		req.Path = src.cfg.PublicPath
	}
	if err := src.verifier.Precheck(req); err != nil {
		return nil, nil, err
	}
	return src, req, nil
}

// closeGrace is how long net/http may go on reading an unread body after a
// refusal. It reads what a client already sent, so that closing does not
// reset the connection under the answer; it does not wait for a slow one.
const closeGrace = 500 * time.Millisecond

// closeAfter makes the answer go out at once and close the connection.
// Otherwise net/http would read what is left of an unread body first, so a
// refusal would wait for the very client it refuses.
func closeAfter(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(closeGrace))
}

// minReadingWeight is the least a body reserves of the reading budget, so
// that requests with tiny or zero bodies are not free.
const minReadingWeight = 512

// readBody reads the body within the reading budget and body_read_timeout.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	weight := r.ContentLength
	if weight < 0 { // chunked: it may be as large as allowed
		weight = s.cfg.MaxBodyBytes
	}
	weight = max(weight, minReadingWeight)
	if !s.reading.TryAcquire(weight) {
		return nil, fmt.Errorf("%w: max_reading_bytes %d", errReadingOverloaded, s.cfg.MaxReadingBytes)
	}
	s.readers.Add(1)
	s.readingBytes.Add(weight)
	defer func() {
		s.reading.Release(weight)
		s.readers.Add(-1)
		s.readingBytes.Add(-weight)
	}()

	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout.Duration)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, fmt.Errorf("%w: setting its deadline: %w", errReadingBody, err)
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), r.ContentLength)
	// Once the body is in, net/http watches the connection for the client
	// going away; a deadline passing during the commit must not look like it.
	_ = rc.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errReadingBody, err)
	}
	return body, nil
}

// readAll reads a body of known length into a buffer of exactly that size,
// so that memory matches what the reading budget reserved.
func readAll(r io.Reader, length int64) ([]byte, error) {
	if length < 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, length)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func signatureHeaders(h http.Header, names []string) http.Header {
	out := make(http.Header, len(names))
	for _, k := range names {
		if v := h.Get(k); v != "" {
			out[k] = []string{v}
		}
	}
	return out
}

func remoteIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}

// healthz is alive unless the NATS connection is closed: nats.go never
// reconnects a closed connection (after the server closed it, or after too
// many failed reconnects), so only a restart brings the edge back.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if st := s.js.Conn().Status(); st == nats.CLOSED {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "nats connection closed for good: restart"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is ready when NATS is connected and JetStream answers a look-up of
// RAW in time: only then can a webhook be acknowledged.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if st := s.js.Conn().Status(); st != nats.CONNECTED {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "nats " + st.String()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.js.Stream(ctx, streams.RAW); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "stream RAW: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeError(w http.ResponseWriter, status int, msg, reason string) {
	body := map[string]string{"error": msg}
	if reason != "" {
		body["reason"] = reason
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Allow", http.MethodPost)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed", "")
}
