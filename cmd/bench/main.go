// Command bench is leadstream's benchmark harness, run by `make bench`: it
// prints the disk's fsync rate; loads an in-process edge with signed
// requests of every provider next to plain JetStream publishes on the same
// server as the ceiling; measures the normalizer (each kind's consumer on
// one core, and the pipeline end to end at a steady load) and the
// dispatcher (deliveries a second to a local fake LMS, and the pipeline end
// to end from the edge's receipt to the LMS's 2xx); then runs the product
// binary, `leadstream run`, as a child process and measures it as a user
// runs it. It asserts nothing: the figures are the machine's.
//
//	go build -o .bin/leadstream ./cmd/leadstream
//	go run ./cmd/bench -leadstream .bin/leadstream [flags]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/logging"
	"github.com/leadstream/leadstream/services/edge/bench"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// defaultConfig is the config the measurements use unless told otherwise,
// as for leadstream itself.
const defaultConfig = "deploy/local/leadstream.yaml"

// errInterrupted ends a run stopped by a signal: its figures would be
// partial.
var errInterrupted = errors.New("interrupted")

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// run parses the flags, then measures and prints each section they ask
// for.
func run(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	defConfig := os.Getenv("LEADSTREAM_CONFIG")
	if defConfig == "" {
		defConfig = defaultConfig
	}
	path := fs.String("config", defConfig, "config file (env LEADSTREAM_CONFIG)")
	duration := fs.Duration("duration", 10*time.Second, "length of each measurement (edge, ceiling, normalizer and dispatcher end to end)")
	concurrency := fs.String("concurrency", "64,256", "requests (publishes) in flight at once: the edge and its baseline are measured at each, comma separated; 0 for none")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load before each measurement; 0 for none")
	storeDir := fs.String("store-dir", "", "where the JetStream stores of the measurements are made, each fresh and removed afterwards (default: the system's temporary directory)")
	presign := fs.Int("presign", 20000, "Marktplaats LMS requests RSA-signed before the clock starts; 0 for none")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the edge measurement to this file")
	kindsEvents := fs.Int("kinds-events", 2000, "RAW envelopes normalized per kind, each kind's consumer alone on one core; 0 for none")
	e2eRate := fs.Float64("e2e-rate", 500, "events a second sent through edge and normalizer for the end-to-end latency; 0 for none")
	e2eWorkers := fs.Int("e2e-workers", 8, "end-to-end requests in flight at most (normalizer and dispatcher)")
	dispatchEvents := fs.Int("dispatch-events", 5000, "events delivered from a filled EVENTS to a local fake LMS for the dispatcher's deliveries/s; 0 for none")
	dispatchRate := fs.Float64("dispatch-rate", 200, "events a second sent through edge, normalizer and dispatcher to a fake LMS for the end-to-end latency; 0 for none")
	po := pipeOptions{}
	fs.StringVar(&po.bin, "leadstream", ".bin/leadstream", "the leadstream binary the pipeline measurements run as a child (`leadstream run`); make bench builds it there")
	fs.Float64Var(&po.steadyRate, "pipeline-rate", 1000, "webhooks a second sent to `leadstream run` (a child process) for the steady end-to-end measurement, request to LMS 2xx; 0 for none")
	fs.DurationVar(&po.steadyDuration, "pipeline-duration", 30*time.Second, "length of the steady end-to-end measurement")
	fs.BoolVar(&po.findMax, "pipeline-max", true, "after the steady measurement, raise the rate 25% a step until the backlog grows, and print the highest steady rate")
	fs.DurationVar(&po.stepDuration, "pipeline-step", 15*time.Second, "length of each step of the highest-rate search")
	fs.IntVar(&po.workers, "pipeline-workers", 128, "pipeline measurements: requests in flight at most")
	fs.Float64Var(&po.catchupRate, "catchup-rate", 0, "webhooks a second while the LMS is down and after, for the catch-up measurement; 0 for none (make bench-catchup)")
	fs.DurationVar(&po.catchupDown, "catchup-down", 10*time.Minute, "how long the fake LMS answers 503 in the catch-up measurement")
	fs.IntVar(&po.memoryWebhooks, "memory-webhooks", 0, "webhooks sent through `leadstream run` while its RSS is sampled; 0 for none (make bench-memory)")
	fs.Float64Var(&po.memoryRate, "memory-rate", 1000, "webhooks a second for the memory measurement")
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (-h lists the flags)", fs.Arg(0))
	}

	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	concurrencies, err := parseConcurrency(*concurrency)
	if err != nil {
		return err
	}
	// Before the minutes the other sections take, not after.
	if po.any() {
		if err := checkBinary(po.bin); err != nil {
			return err
		}
	}
	// Warnings only: at thousands of requests a second, anything more
	// would measure the logger.
	log, err := logging.New("console", "warn")
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	kit := benchkit.Options{
		Config:   cfg,
		Duration: *duration,
		Warmup:   *warmup,
		StoreDir: *storeDir,
		Progress: os.Stderr,
		Logger:   log,
	}
	// The flags say 0 for none; Options keep 0 for the default.
	if kit.Warmup == 0 {
		kit.Warmup = -1
	}
	eopts := bench.Options{Options: kit, Presign: *presign}
	if eopts.Presign == 0 {
		eopts.Presign = -1
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		eopts.CPUProfile = f
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The limit of everything that syncs before it acknowledges: what the
	// disk under the stores takes, printed first so every figure below can
	// be read against it.
	probeDir := *storeDir
	if probeDir == "" {
		probeDir = os.TempDir()
	}
	if disk, err := benchkit.MeasureFsyncs(probeDir, 2*time.Second, 8); err == nil {
		fmt.Printf("disk under %s: %.0f fsyncs/s appending to one file (one stream syncing before every ack), %.0f/s to %d files at once; %d CPUs\n\n",
			probeDir, disk.Serial, disk.Parallel, disk.Files, runtime.NumCPU())
	}
	for i, c := range concurrencies {
		eopts.Concurrency = c
		rep, err := bench.Run(ctx, eopts)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errInterrupted
		}
		if i > 0 {
			fmt.Println()
		}
		rep.Print(os.Stdout)
		// One profile: the first concurrency's.
		eopts.CPUProfile = nil
	}
	if *cpuprofile != "" {
		fmt.Printf("cpu profile of the edge measurement: %s (go tool pprof -top %s)\n", *cpuprofile, *cpuprofile)
	}

	if *kindsEvents <= 0 && *e2eRate <= 0 && *dispatchEvents <= 0 && *dispatchRate <= 0 && !po.any() {
		return nil
	}
	signer, err := simulate.NewSigner(cfg)
	if err != nil {
		return err
	}
	samples, err := loadSamples(ctx, signer)
	if err != nil {
		return err
	}
	kit.Concurrency = *e2eWorkers
	if *kindsEvents > 0 || *e2eRate > 0 {
		if err := runNormalizer(ctx, kit, signer, samples, *kindsEvents, *e2eRate); err != nil {
			return err
		}
	}
	if *dispatchEvents > 0 || *dispatchRate > 0 {
		if err := runDispatcher(ctx, kit, signer, samples, *dispatchEvents, *dispatchRate); err != nil {
			return err
		}
	}
	if po.any() {
		po.configPath, po.storeDir = *path, *storeDir
		return runPipeline(ctx, &po, signer, samples)
	}
	return nil
}

// parseConcurrency reads the -concurrency flag: positive numbers, comma
// separated, or "0" for no edge measurement.
func parseConcurrency(flag string) ([]int, error) {
	if flag == "0" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(flag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-concurrency %q: want positive numbers, comma separated, or 0", flag)
		}
		out = append(out, n)
	}
	return out, nil
}

// checkBinary makes sure the pipeline measurements have a leadstream to
// run.
func checkBinary(bin string) error {
	st, err := os.Stat(bin)
	if err == nil && (st.IsDir() || st.Mode().Perm()&0o111 == 0) {
		err = errors.New("not an executable file")
	}
	if err != nil {
		return fmt.Errorf("-leadstream %s: %w: the pipeline measurements run it as a child; build it (go build -o .bin/leadstream ./cmd/leadstream, as make bench does) or leave them out (-pipeline-rate 0)", bin, err)
	}
	return nil
}
