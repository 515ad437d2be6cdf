// Package console is the operators' web console: server-rendered pages of
// what arrived (sources), what it became (the event list, the trace of one
// webhook, a lead's state), how delivery goes (adapters) and what could not
// be processed (the DLQ, with replay and drop). Every page reads without
// JavaScript; the vendored htmx (static/VERSION) adds confirmation dialogs
// and refreshing tables, nothing else. Personal fields are masked until an
// operator who may act asks to reveal them.
//
// Who may do what: on a loopback address anyone who reaches it reads; where
// a token or basic auth is configured, every action (replay, drop, reveal)
// needs it, and off loopback every page does (the config refuses a console
// off loopback without one). Actions are POST requests behind a
// confirmation, refused cross-origin (net/http's CrossOriginProtection: the
// browser's Sec-Fetch-Site, else Origin against Host), and on loopback a
// request must name a loopback host (no DNS rebinding).
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Ops are what the console asks of the binary: the commands' own functions
// for what this package does not do itself.
type Ops interface {
	// Trace is the life of one webhook, by event id or provider event id;
	// a trace with Found false when nothing is known of it.
	Trace(ctx context.Context, id string) (*Trace, error)
	// Replay processes the dead letter at seq again (normalizes it, or
	// delivers it to its adapter with its original webhook-id) and removes
	// it from DLQ on success; the string says what happened.
	Replay(ctx context.Context, seq uint64) (string, error)
}

// Options are the console's dependencies.
type Options struct {
	// Config is the validated configuration: its sources, adapters and
	// console section (address and credentials).
	Config *config.Config
	// JetStream is where the streams and buckets are read.
	JetStream jetstream.JetStream
	// Ops traces and replays.
	Ops Ops
	// Metrics is the registry of the process when the edge and the
	// dispatcher run in it (`leadstream run`): request outcomes,
	// verification failures and the dispatcher's gauges come from it. Nil
	// in a standalone console, whose pages show only what JetStream knows
	// and say so.
	Metrics prometheus.Gatherer
	// Logger is required. It gets the actions and refusals, never a body,
	// a credential or a personal field.
	Logger *zap.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Server serves the console. It is an http.Handler; Run keeps the counters
// that give the sources page its last hour.
type Server struct {
	cfg     *config.Config
	js      jetstream.JetStream
	ops     Ops
	log     *zap.Logger
	now     func() time.Time
	auth    *auth
	rates   *rates // nil in a standalone console
	pages   map[string]*template.Template
	handler http.Handler
}

// New checks o and builds the console.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.JetStream == nil || o.Ops == nil || o.Logger == nil {
		return nil, errors.New("console: Config, JetStream, Ops and Logger are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	a, err := newAuth(&o.Config.Console, o.Now)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: o.Config, js: o.JetStream, ops: o.Ops, log: o.Logger, now: o.Now, auth: a}
	if o.Metrics != nil {
		s.rates = newRates(o.Metrics, o.Now)
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP serves the console's pages, actions and assets.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Run samples the process's counters every minute until ctx ends, so that
// the sources page can tell the last hour. A standalone console has none
// and just waits.
func (s *Server) Run(ctx context.Context) error {
	if s.rates == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := s.rates.sample(); err != nil {
			s.log.Warn("console: reading the process's metrics failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// routes is the console's URL space. Reads are GET; every action is a
// POST that needs an operator (auth.go).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/sources", http.StatusFound) })
	mux.HandleFunc("GET /sources", s.serveSources)
	mux.HandleFunc("GET /events", s.serveEvents)
	mux.HandleFunc("GET /trace", s.searchForm("trace", "Trace", "events", traceView{}, "/trace/"))
	mux.HandleFunc("GET /trace/{id...}", s.serveTrace)
	mux.HandleFunc("GET /adapters", s.serveAdapters)
	mux.HandleFunc("GET /dlq", s.serveDLQ)
	mux.HandleFunc("GET /dlq/{seq}", s.serveLetter)
	mux.HandleFunc("GET /dlq/{seq}/{action}", s.serveConfirm)
	mux.HandleFunc("POST /dlq/{seq}/{action}", s.act)
	mux.HandleFunc("GET /leads", s.searchForm("lead", "Lead", "leads", leadView{}, "/leads/"))
	mux.HandleFunc("GET /leads/{id...}", s.serveLead)
	mux.HandleFunc("POST /leads/reveal", s.revealLead)
	mux.HandleFunc("GET /login", s.serveLogin)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)

	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("console: cross-origin request refused", zap.String("method", r.Method), zap.String("path", r.URL.Path))
		s.fail(w, r, http.StatusForbidden, "Refused: this request came from another site. Use the console's own buttons.")
	}))
	return s.headers(s.auth.hostCheck(s, csrf.Handler(s.auth.readGate(s, mux))))
}

// headers sets what every answer carries: nothing from elsewhere may run or
// load, no page is cached (a revealed one least of all) or framed.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// Handler timeouts: a page reads JetStream within pageTimeout; an action
// (a replay delivers to an LMS) within actionTimeout.
const (
	pageTimeout   = 20 * time.Second
	actionTimeout = 60 * time.Second
)

func pageContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), pageTimeout)
}

// errorView is the page of a failure.
type errorView struct {
	Status  int
	Message string
}

// fail answers status with a page saying msg. msg is shown to the
// operator: never a body or a credential in it.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", "Error", "", errorView{Status: status, Message: msg})
}

// failErr answers a failed read of JetStream.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.Warn("console: "+what+" failed", zap.Error(err))
	s.fail(w, r, http.StatusServiceUnavailable, fmt.Sprintf("%s failed: %v", what, err))
}
