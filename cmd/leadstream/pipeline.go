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
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/cmd/leadstream/pipeline"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/embedded"
	"github.com/leadstream/leadstream/pkg/logging"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/streams"
)

// defaultConfig is the config file used when neither --config nor
// LEADSTREAM_CONFIG names one.
const defaultConfig = "deploy/local/leadstream.yaml"

func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("LEADSTREAM_CONFIG")
	if def == "" {
		def = defaultConfig
	}
	return fs.String("config", def, "config file (env LEADSTREAM_CONFIG)")
}

func cmdCheck(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	path := configFlag(fs)
	_ = fs.Parse(args)
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	fmt.Printf("config %s is valid: %d sources, %d adapters\n", *path, len(cfg.Sources), len(cfg.Adapters))
	return nil
}

// services says which parts of the pipeline a process runs.
type services struct {
	pipeline.Services
	// embeddedOK allows an embedded JetStream when nats.url is empty.
	embeddedOK bool
	// adminListen serves /healthz, /readyz and /metrics for a process
	// without the edge (which serves them itself).
	adminListen string
}

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	path := configFlag(fs)
	_ = fs.Parse(args)
	return runPipeline(*path, services{Services: pipeline.All, embeddedOK: true})
}

func cmdEdge(args []string) error {
	fs := flag.NewFlagSet("edge", flag.ExitOnError)
	path := configFlag(fs)
	_ = fs.Parse(args)
	return runPipeline(*path, services{Services: pipeline.Services{Edge: true}})
}

func cmdNormalizer(args []string) error {
	fs := flag.NewFlagSet("normalizer", flag.ExitOnError)
	path := configFlag(fs)
	kinds := fs.String("kinds", "", "comma-separated kinds to consume (lead,chat,bid,asq,transaction,call,enquiry,invoice,unknown); empty: all")
	admin := fs.String("admin-listen", ":9090", "address for /healthz, /readyz and /metrics")
	_ = fs.Parse(args)
	return runPipeline(*path, services{Services: pipeline.Services{Normalizer: true, Kinds: splitList(*kinds)}, adminListen: *admin})
}

func cmdDispatcher(args []string) error {
	fs := flag.NewFlagSet("dispatcher", flag.ExitOnError)
	path := configFlag(fs)
	adapters := fs.String("adapters", "", "comma-separated adapter names to deliver to; empty: all in the config (and the leads projection)")
	projectionOnly := fs.Bool("projection-only", false, "run the leads projection alone, no adapter")
	admin := fs.String("admin-listen", ":9091", "address for /healthz, /readyz, /metrics and /leads/{id}")
	_ = fs.Parse(args)
	if *projectionOnly && *adapters != "" {
		return errors.New("--projection-only and --adapters exclude each other")
	}
	return runPipeline(*path, services{Services: pipeline.Services{Dispatcher: true, Adapters: splitList(*adapters), ProjectionOnly: *projectionOnly}, adminListen: *admin})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// runPipeline wires the chosen services and runs them until SIGINT or
// SIGTERM, then stops them in order: the edge stops taking requests, the
// consumers finish what they hold, the connection drains.
func runPipeline(path string, svc services) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	if path := os.Getenv("LEADSTREAM_CPUPROFILE"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	if path := os.Getenv("LEADSTREAM_MEMPROFILE"); path != "" {
		defer heapProfileOnSignal(path, log)()
	}
	// Libraries that write with the standard logger (orbit.go's pcgroups
	// warns through it) write structured lines too.
	defer zap.RedirectStdLog(log.Named("lib"))()
	stopTracing, err := setupTracing(context.Background(), cfg.Tracing, "leadstream")
	if err != nil {
		return err
	}
	defer stopTracing()

	var ns *server.Server
	url := cfg.NATS.URL
	if url == "" {
		if !svc.embeddedOK {
			return errors.New("nats.url is empty: a single service needs an external NATS (use `leadstream run` for the embedded dev mode)")
		}
		ns, err = embedded.Start(embedded.Options{Listen: cfg.NATS.Listen, StoreDir: cfg.NATS.StoreDir, Logger: log})
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		url = ns.ClientURL()
		log.Info("embedded JetStream started (fsync before every ack)", zap.String("url", url), zap.String("store_dir", cfg.NATS.StoreDir))
	}
	connClosed := make(chan error, 1) // Closed is called once
	nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "leadstream", CredsFile: cfg.NATS.CredsFile, Logger: log,
		Closed: func(err error) { connClosed <- err }})
	if err != nil {
		return err
	}
	defer nc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ns != nil {
		// The dev mode owns its server: it provisions it as a deployment's
		// provision step would (and says what it created).
		if err := provision(ctx, js, cfg, log, os.Stdout); err != nil {
			return err
		}
	} else if err := (streams.Need{Streams: []string{streams.RAW}}).Check(ctx, js); err != nil {
		return err // every service reads or writes RAW; the rest each checks itself
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	var g run.Group
	g.Add(run.SignalHandler(context.Background(), os.Interrupt, syscall.SIGTERM))
	actor(&g, func(ctx context.Context) error { return watchConn(ctx, connClosed) })

	p, err := pipeline.New(ctx, pipeline.Options{Config: cfg, Services: svc.Services, Conn: pipeline.Conn{URL: url, JetStream: js}, Logger: log, Registry: reg})
	if err != nil {
		return err
	}
	var edgeLn net.Listener
	if svc.Edge {
		if edgeLn, err = net.Listen("tcp", cfg.Listen); err != nil {
			p.Close()
			return fmt.Errorf("edge: %w", err)
		}
	}
	actor(&g, func(ctx context.Context) error { return p.Run(ctx, edgeLn) })
	if svc.embeddedOK && cfg.DemoLMS.Listen != "" {
		ln, err := net.Listen("tcp", cfg.DemoLMS.Listen)
		if err != nil {
			return fmt.Errorf("demo_lms.listen: %w", err)
		}
		log.Info("demo LMS listening: events delivered to it are printed below", zap.String("addr", ln.Addr().String()))
		actor(&g, func(ctx context.Context) error { return serveDemoLMS(ctx, ln, cfg.DemoLMS.Secret, log) })
	}
	if !svc.Edge && svc.adminListen != "" {
		ln, err := net.Listen("tcp", svc.adminListen)
		if err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		actor(&g, func(ctx context.Context) error { return serveAdmin(ctx, ln, nc, js, reg, cfg) })
	}

	if svc.embeddedOK { // run: the operators' console on its admin port
		if err := startConsole(&g, cfg, js, reg, log); err != nil {
			p.Close()
			return err
		}
	}
	err = g.Run()
	var sig *run.SignalError
	if errors.As(err, &sig) {
		log.Info("stopping", zap.String("signal", sig.Signal.String()))
		err = nil
	}
	// Everything acknowledged is in JetStream; drain hands back what is buffered.
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		log.Warn("draining nats connection", zap.Error(derr))
	}
	return err
}

// actor adds a long-running part to g, stopped by cancelling its context.
func actor(g *run.Group, f func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { return f(ctx) }, func(error) { cancel() })
}

// watchConn ends when ctx ends, or with an error when the shared
// connection closes first. nats.go never reconnects a connection the server
// closed for a protocol error, so every service on it would be stuck for
// good: ending the run group makes the process exit with that error, and
// its supervisor restart it on a fresh connection.
func watchConn(ctx context.Context, closed <-chan error) error {
	select {
	case err := <-closed:
		if err == nil {
			return errors.New("nats connection closed while the services were running")
		}
		return fmt.Errorf("nats connection closed for good while the services were running: %w", err)
	case <-ctx.Done():
		return nil
	}
}

// serveAdmin serves health and metrics for a process without the edge.
func serveAdmin(ctx context.Context, ln net.Listener, nc *nats.Conn, js jetstream.JetStream, reg *prometheus.Registry, cfg *config.Config) error {
	srv := &http.Server{Handler: adminHandler(nc, js, reg, cfg), ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// readyTimeout bounds the JetStream round trip of /readyz.
const readyTimeout = 2 * time.Second

// adminHandler serves /healthz, /readyz, /metrics and /leads/{id} of a
// normalizer or dispatcher process.
//
// /healthz is 503 once the connection is closed for good: such a process
// cannot do anything any more (and is about to exit, see watchConn).
// /readyz is 503 while the connection is down, and also while it is up but
// JetStream does not answer (disabled, out of quorum, the account limited):
// the process then cannot consume, publish or read its buckets.
func adminHandler(nc *nats.Conn, js jetstream.JetStream, reg *prometheus.Registry, cfg *config.Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if nc.IsClosed() {
			http.Error(w, "nats connection closed", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if st := nc.Status(); st != nats.CONNECTED {
			http.Error(w, "nats "+st.String(), http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if _, err := js.AccountInfo(ctx); err != nil {
			http.Error(w, "jetstream not answering: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /leads/{id...}", func(w http.ResponseWriter, r *http.Request) { serveLead(w, r, js) })
	mux.HandleFunc("GET /trace/{id...}", func(w http.ResponseWriter, r *http.Request) { serveTrace(w, r, js, cfg) })
	return mux
}

// startCPUProfile writes a CPU profile of the whole process to path until
// stop is called (LEADSTREAM_CPUPROFILE: `go tool pprof -top path`).
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("LEADSTREAM_CPUPROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("LEADSTREAM_CPUPROFILE: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// heapProfileOnSignal writes a heap profile to path each time the process
// gets SIGUSR1 (LEADSTREAM_MEMPROFILE: `kill -USR1 <pid>`, then `go tool
// pprof -top -sample_index=inuse_space path`), until the returned stop.
func heapProfileOnSignal(path string, log *zap.Logger) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-sig:
				f, err := os.Create(path)
				if err == nil {
					err = errors.Join(pprof.WriteHeapProfile(f), f.Close())
				}
				if err != nil {
					log.Warn("LEADSTREAM_MEMPROFILE: writing the heap profile failed", zap.Error(err))
					continue
				}
				log.Info("LEADSTREAM_MEMPROFILE: heap profile written", zap.String("path", path))
			}
		}
	}()
	return func() { signal.Stop(sig); close(done) }
}
