package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/cmd/leadstream/internal/console"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/logging"
)

// cmdConsole serves the operators' console alone, against the NATS of the
// config (nats.url, or a running `make run`'s embedded server). Without the
// edge and the dispatcher in its process it shows what JetStream knows.
func cmdConsole(args []string) error {
	fs := flag.NewFlagSet("console", flag.ExitOnError)
	path := configFlag(fs)
	listen := fs.String("listen", "", "address (default: console.listen from the config, else "+config.DefaultConsoleListen+")")
	if err := wantArgs("console", parseArgs(fs, args), 0); err != nil {
		return err
	}
	cfg, nc, js, err := opsConn(*path)
	if err != nil {
		return err
	}
	defer nc.Close()
	if *listen != "" {
		if err := cfg.Console.SetListen(*listen); err != nil {
			return err
		}
	}
	if !cfg.Console.Enabled() {
		return errors.New("console.listen is \"off\" in the config: pass --listen 127.0.0.1:8081")
	}
	log, err := logging.New(cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ln, err := net.Listen("tcp", cfg.Console.Listen)
	if err != nil {
		return fmt.Errorf("console.listen: %w", err)
	}
	ops := newConsoleOps(cfg, js, log.Named("console"))
	defer ops.Close()
	srv, err := console.New(console.Options{Config: cfg, JetStream: js, Ops: ops, Logger: log.Named("console")})
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Printf("leadstream console on http://%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveConsole(ctx, ln, srv)
}

// startConsole adds the operators' console to g on console.listen, for
// `leadstream run`: it reads the process's metrics from reg (the edge's
// request outcomes, the dispatcher's gauges). A console left at its default
// address goes without when that address is taken (another run, a test),
// saying so; one configured there fails the start.
func startConsole(g *run.Group, cfg *config.Config, js jetstream.JetStream, reg prometheus.Gatherer, log *zap.Logger) error {
	if !cfg.Console.Enabled() {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.Console.Listen)
	if err != nil {
		if cfg.Console.DefaultListen {
			log.Warn("console not started: its default address is taken (set console.listen, or \"off\")", zap.String("addr", cfg.Console.Listen), zap.Error(err))
			return nil
		}
		return fmt.Errorf("console.listen: %w", err)
	}
	ops := newConsoleOps(cfg, js, log.Named("console"))
	srv, err := console.New(console.Options{Config: cfg, JetStream: js, Ops: ops, Metrics: reg, Logger: log.Named("console")})
	if err != nil {
		ln.Close()
		return err
	}
	log.Info("console listening", zap.String("url", "http://"+ln.Addr().String()))
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { defer ops.Close(); return serveConsole(ctx, ln, srv) }, func(error) { cancel() })
	return nil
}

// serveConsole serves srv on ln until ctx ends.
func serveConsole(ctx context.Context, ln net.Listener, srv *console.Server) error {
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	go func() { _ = srv.Run(ctx) }()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

// consoleOps are the console's trace and replay: those of `leadstream
// trace` and `leadstream dlq replay`.
type consoleOps struct {
	*replayer
	cfg *config.Config
	js  jetstream.JetStream
}

func newConsoleOps(cfg *config.Config, js jetstream.JetStream, log *zap.Logger) *consoleOps {
	return &consoleOps{replayer: newReplayer(cfg, js, log), cfg: cfg, js: js}
}

// Trace is traceWebhook, in the console's terms.
func (o *consoleOps) Trace(ctx context.Context, id string) (*console.Trace, error) {
	tr, err := traceWebhook(ctx, o.js, o.cfg, id)
	if err != nil {
		return nil, err
	}
	out := &console.Trace{EventID: tr.EventID, Source: tr.Source, ProviderEventID: tr.ProviderEventID, Found: tr.Found, Adapters: tr.Adapters, Lead: tr.Lead}
	if r := tr.Received; r != nil {
		out.Received = &console.TraceReceived{Sequence: r.Sequence, Subject: r.Subject, Provider: r.Provider, Kind: r.Kind, KeyID: r.KeyID, ReceivedAt: r.ReceivedAt}
	}
	if e := tr.Normalized; e != nil {
		out.Normalized = &console.TraceNormalized{Sequence: e.Sequence, Subject: e.Subject, Type: e.Type, Aggregate: e.Aggregate, Tenant: e.Tenant, OccurredAt: e.Occurred}
	}
	for _, l := range tr.DeadLetters {
		out.DeadLetters = append(out.DeadLetters, console.TraceLetter{Seq: l.Seq, Stage: l.Stage, Name: l.Name, Reason: l.Reason, Error: l.Error, Attempts: l.Attempts, At: l.At})
	}
	return out, nil
}
