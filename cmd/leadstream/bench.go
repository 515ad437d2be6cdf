package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/logging"
	"github.com/leadstream/leadstream/services/edge/bench"
)

// cmdBench loads an in-process edge with signed requests of every provider,
// measures plain JetStream publishes on the same server as the ceiling, and
// prints both. It asserts nothing: the figures are the machine's.
func cmdBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	path := configFlag(fs)
	duration := fs.Duration("duration", 10*time.Second, "length of each measurement (edge, then ceiling)")
	concurrency := fs.Int("concurrency", 64, "requests (publishes) in flight at once")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load before each measurement; 0 for none")
	storeDir := fs.String("store-dir", "", "JetStream store (default: a temporary directory, removed afterwards)")
	presign := fs.Int("presign", 20000, "Marktplaats LMS requests RSA-signed before the clock starts; 0 for none")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the edge measurement to this file")
	_ = fs.Parse(args)

	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	// Warnings only: at thousands of requests a second, anything more
	// would measure the logger.
	log, err := logging.New("console", "warn")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	opts := bench.Options{
		Config:      cfg,
		Duration:    *duration,
		Warmup:      *warmup,
		Concurrency: *concurrency,
		StoreDir:    *storeDir,
		Presign:     *presign,
		Progress:    os.Stderr,
		Logger:      log,
	}
	// The flags say 0 for none; Options keep 0 for the default.
	if opts.Warmup == 0 {
		opts.Warmup = -1
	}
	if opts.Presign == 0 {
		opts.Presign = -1
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.CPUProfile = f
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	rep.Print(os.Stdout)
	if *cpuprofile != "" {
		fmt.Printf("cpu profile of the edge measurement: %s (go tool pprof -top %s)\n", *cpuprofile, *cpuprofile)
	}
	return nil
}
