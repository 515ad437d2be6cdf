package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/embedded"
	"github.com/leadstream/leadstream/pkg/logging"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/edge"
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

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	path := configFlag(fs)
	_ = fs.Parse(args)
	return runPipeline(*path, true)
}

func cmdEdge(args []string) error {
	fs := flag.NewFlagSet("edge", flag.ExitOnError)
	path := configFlag(fs)
	_ = fs.Parse(args)
	return runPipeline(*path, false)
}

// runPipeline wires the services and runs them until SIGINT or SIGTERM.
// embeddedOK allows an embedded JetStream when nats.url is empty.
func runPipeline(path string, embeddedOK bool) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log, err := logging.New(cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	var ns *server.Server
	url := cfg.NATS.URL
	if url == "" {
		if !embeddedOK {
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
	nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "leadstream", CredsFile: cfg.NATS.CredsFile, Logger: log})
	if err != nil {
		return err
	}
	defer nc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = streams.Ensure(ctx, js, streams.RawConfig(cfg))
	cancel()
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e, err := edge.New(edge.Options{Config: cfg, JetStream: js, Logger: log.Named("edge"), Registry: reg})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}

	var g run.Group
	g.Add(run.SignalHandler(context.Background(), os.Interrupt, syscall.SIGTERM))
	{
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return e.Serve(ctx, ln) }, func(error) { cancel() })
	}
	err = g.Run()
	var sig *run.SignalError
	if errors.As(err, &sig) {
		log.Info("stopping", zap.String("signal", sig.Signal.String()))
		err = nil
	}
	// Everything acknowledged is in RAW; drain hands back what is buffered.
	if derr := nc.Drain(); derr != nil && !errors.Is(derr, nats.ErrConnectionClosed) {
		log.Warn("draining nats connection", zap.Error(derr))
	}
	return err
}
