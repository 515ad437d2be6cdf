package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/logging"
	"github.com/leadstream/leadstream/pkg/measure"
	"github.com/leadstream/leadstream/pkg/natsconn"
	dbench "github.com/leadstream/leadstream/services/dispatcher/bench"
	"github.com/leadstream/leadstream/services/edge"
	"github.com/leadstream/leadstream/services/edge/bench"
	"github.com/leadstream/leadstream/services/edge/extract"
	"github.com/leadstream/leadstream/services/edge/simulate"
	"github.com/leadstream/leadstream/services/normalizer"
	nbench "github.com/leadstream/leadstream/services/normalizer/bench"
)

// cmdBench loads an in-process edge with signed requests of every provider,
// measures plain JetStream publishes on the same server as the ceiling, and
// prints both; then measures the normalizer: each kind's consumer on one
// core, and the pipeline end to end at a steady load; then the dispatcher:
// deliveries a second to a local fake LMS, and the pipeline end to end
// from the edge's receipt to the LMS's 2xx. It asserts nothing: the figures
// are the machine's.
func cmdBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	path := configFlag(fs)
	duration := fs.Duration("duration", 10*time.Second, "length of each measurement (edge, ceiling, normalizer and dispatcher end to end)")
	concurrency := fs.String("concurrency", "64,256", "requests (publishes) in flight at once: the edge and its baseline are measured at each, comma separated; 0 for none")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured load before each measurement; 0 for none")
	storeDir := fs.String("store-dir", "", "JetStream store of the edge measurements, and where the normalizer's and the dispatcher's (always fresh, removed afterwards) are made (default: a temporary directory, removed afterwards)")
	presign := fs.Int("presign", 20000, "Marktplaats LMS requests RSA-signed before the clock starts; 0 for none")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the edge measurement to this file")
	kindsEvents := fs.Int("kinds-events", 2000, "RAW envelopes normalized per kind, each kind's consumer alone on one core; 0 for none")
	e2eRate := fs.Float64("e2e-rate", 500, "events a second sent through edge and normalizer for the end-to-end latency; 0 for none")
	e2eWorkers := fs.Int("e2e-workers", 8, "end-to-end requests in flight at most (normalizer and dispatcher)")
	dispatchEvents := fs.Int("dispatch-events", 5000, "events delivered from a filled EVENTS to a local fake LMS for the dispatcher's deliveries/s; 0 for none")
	dispatchRate := fs.Float64("dispatch-rate", 200, "events a second sent through edge, normalizer and dispatcher to a fake LMS for the end-to-end latency; 0 for none")
	po := pipeOptions{}
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

	var concurrencies []int
	for _, f := range strings.Split(*concurrency, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if n == 0 && err == nil && *concurrency == "0" {
			break // no edge measurement
		}
		if err != nil || n <= 0 {
			return fmt.Errorf("bench: --concurrency %q: want positive numbers, comma separated", *concurrency)
		}
		concurrencies = append(concurrencies, n)
	}
	opts := bench.Options{
		Config:   cfg,
		Duration: *duration,
		Warmup:   *warmup,
		StoreDir: *storeDir,
		Presign:  *presign,
		Progress: os.Stderr,
		Logger:   log,
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
	// The limit of everything that syncs before it acknowledges: what the
	// disk under the stores takes, printed first so every figure below can
	// be read against it.
	probeDir := *storeDir
	if probeDir == "" {
		probeDir = os.TempDir()
	}
	if fs, err := measure.MeasureFsyncs(probeDir, 2*time.Second, 8); err == nil {
		fmt.Printf("disk under %s: %.0f fsyncs/s appending to one file (one stream syncing before every ack), %.0f/s to %d files at once; %d CPUs\n\n",
			probeDir, fs.Serial, fs.Parallel, fs.Files, runtime.NumCPU())
	}
	for i, c := range concurrencies {
		opts.Concurrency = c
		rep, err := bench.Run(ctx, opts)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted")
		}
		if i > 0 {
			fmt.Println()
		}
		rep.Print(os.Stdout)
		// One profile: the first concurrency's.
		opts.CPUProfile = nil
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
	samples, err := benchSamples(ctx, signer)
	if err != nil {
		return err
	}
	if *kindsEvents > 0 || *e2eRate > 0 {
		if err := benchNormalizer(ctx, cfg, log, signer, samples, opts.Warmup, *duration, *kindsEvents, *e2eRate, *e2eWorkers, *storeDir); err != nil {
			return err
		}
	}
	if *dispatchEvents > 0 || *dispatchRate > 0 {
		if err := benchDispatcher(ctx, cfg, log, signer, samples, opts.Warmup, *duration, *dispatchEvents, *dispatchRate, *e2eWorkers, *storeDir); err != nil {
			return err
		}
	}
	if po.any() {
		po.configPath, po.storeDir = *path, *storeDir
		return benchPipeline(ctx, &po, signer, samples)
	}
	return nil
}

// benchNormalizer measures and prints the normalizer's section.
func benchNormalizer(ctx context.Context, cfg *config.Config, log *zap.Logger, signer *simulate.Signer, samples []benchSample,
	warmup, duration time.Duration, kindsEvents int, e2eRate float64, e2eWorkers int, storeDir string) error {
	nopts := nbench.Options{
		Config:     cfg,
		Samples:    normalizerSamples(samples),
		KindEvents: kindsEvents,
		// Each kind alone, as a normalizer process per kind runs with the
		// default; the end-to-end part runs every kind in one process with
		// the config's settings, as `leadstream run` does.
		KindMaxAckPending: config.DefaultNormalizerMaxAckPending,
		Rate:              e2eRate,
		Workers:           e2eWorkers,
		Duration:          duration,
		Warmup:            warmup,
		StoreDir:          storeDir,
		Progress:          os.Stderr,
		Logger:            log,
	}
	if nopts.KindEvents <= 0 {
		nopts.KindEvents = -1
	}
	if e2eRate > 0 {
		nopts.Edge = startBenchEdge(cfg, signer, samples, e2eWorkers, log)
	}
	nrep, err := nbench.Run(ctx, nopts)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	fmt.Println()
	nrep.Print(os.Stdout)
	return nil
}

// benchDispatcher measures and prints the dispatcher's section. Its
// end-to-end load leaves out the samples the dispatcher could only hold
// back: see dispatchSamples.
func benchDispatcher(ctx context.Context, cfg *config.Config, log *zap.Logger, signer *simulate.Signer, samples []benchSample,
	warmup, duration time.Duration, events int, rate float64, workers int, storeDir string) error {
	dopts := dbench.Options{
		Config:   cfg,
		Events:   events,
		Rate:     rate,
		Workers:  workers,
		Duration: duration,
		Warmup:   warmup,
		StoreDir: storeDir,
		Progress: os.Stderr,
		Logger:   log,
	}
	if dopts.Events <= 0 {
		dopts.Events = -1
	}
	if rate > 0 {
		load, left := dispatchSamples(samples)
		if len(load) == 0 {
			return errors.New("bench: no sample left for the dispatcher's end-to-end load")
		}
		dopts.Edge = startDispatchEdge(cfg, signer, load, workers, log)
		dopts.Normalizer = startBenchNormalizer(log)
		dopts.Load = dispatchLoad(load, left, cfg.Dispatcher.MaxPark.Duration)
	}
	drep, err := dbench.Run(ctx, dopts)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted")
	}
	fmt.Println()
	drep.Print(os.Stdout)
	return nil
}

// dispatchSamples splits the samples into the dispatcher's end-to-end load
// and those left out. Left out is the transaction change: the sample goes
// from PENDING to COMPLETED, and the change to PENDING never comes, so the
// dispatcher parks every one until max_park and then delivers it as an
// orphan - a latency of max_park by design, not the pipeline's. (The doc
// example, which the normalizer dead-letters, is not among the samples at
// all: see benchSamples.)
func dispatchSamples(samples []benchSample) (load, left []benchSample) {
	for _, s := range samples {
		if s.kind == envelope.KindTransaction {
			left = append(left, s)
			continue
		}
		load = append(load, s)
	}
	return load, left
}

// dispatchLoad describes the dispatcher's end-to-end load for its report.
func dispatchLoad(load, left []benchSample, maxPark time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d sample payloads round robin, each send a provider event of its own; each round has a conversation", len(load))
	b.WriteString("\n    (Marktplaats LMS), advertisement (Marktplaats API), lead and invoice (Offerte Adviseur) of its own, so the causal rules apply per round")
	chat := slices.IndexFunc(load, func(s benchSample) bool { return s.kind == envelope.KindChat })
	lead := slices.IndexFunc(load, func(s benchSample) bool {
		return s.Provider == config.ProviderMarktplaatsLMS && s.kind == envelope.KindLead
	})
	if chat >= 0 && lead > chat {
		b.WriteString(":\n    the chat is sent before its lead and parks until the lead is delivered")
	}
	b.WriteString(".\n    Left out:")
	for _, s := range left {
		fmt.Fprintf(&b, " %s, which has no predecessor: it would park until\n    max_park (%s) and go as an orphan; and", s.Name, maxPark)
	}
	b.WriteString(" the Marktplaats doc example, which the normalizer dead-letters")
	return b.String()
}

// startBenchNormalizer starts a normalizer for every kind, as `leadstream
// run` does, on the dispatcher bench's JetStream.
func startBenchNormalizer(log *zap.Logger) dbench.StartNormalizer {
	return func(ctx context.Context, cfg *config.Config, url string, js jetstream.JetStream) (dbench.Service, error) {
		if err := normalizer.Provision(ctx, js, cfg, nil); err != nil {
			return nil, err
		}
		n, err := normalizer.New(ctx, normalizer.Options{Config: cfg, URL: url, JetStream: js, Logger: log, Registry: prometheus.NewRegistry()})
		if err != nil {
			return nil, err
		}
		return closingRun{n}, nil
	}
}

// closingRun closes the normalizer once its Run has returned.
type closingRun struct{ n *normalizer.Service }

func (c closingRun) Run(ctx context.Context) error {
	defer c.n.Close()
	return c.n.Run(ctx)
}

// benchSample is a simulator payload with what the edge learns about it.
type benchSample struct {
	simulate.Sample
	src *config.Source
	// keyID is the credential the edge's verifier reports for it.
	keyID string
	kind  string
	// sig and path are the signature headers and request target of the
	// sample as sent, which the edge copies into RAW.
	sig  http.Header
	path string
}

// benchSamples returns every simulator payload that the config has a source
// for and that the normalizer maps. The one of kind "unknown" (the
// Marktplaats docs' placeholder) only ever goes to DLQ: it would measure
// dead-lettering, and never arrive in EVENTS.
func benchSamples(ctx context.Context, signer *simulate.Signer) ([]benchSample, error) {
	var out []benchSample
	for _, smp := range simulate.Samples() {
		src, ok := signer.SourceFor(smp.Provider)
		if !ok {
			continue
		}
		keyID := verifiedKeyID(smp)
		kind := extract.Extract(smp.Provider, keyID, smp.Body).Kind
		if kind == envelope.KindUnknown {
			continue
		}
		req, err := signer.Request(ctx, "http://127.0.0.1", src, smp.Name, smp.Body)
		if err != nil {
			return nil, fmt.Errorf("signing sample %s: %w", smp.Name, err)
		}
		sig := http.Header{}
		for _, k := range envelope.SignatureHeaders {
			if v := req.Header.Get(k); v != "" {
				sig.Set(k, v)
			}
		}
		out = append(out, benchSample{Sample: smp, src: src, keyID: keyID, kind: kind, sig: sig, path: req.URL.RequestURI()})
	}
	if len(out) == 0 {
		return nil, errors.New("bench: the config has no source for any sample the normalizer maps")
	}
	return out, nil
}

// verifiedKeyID is the key id the edge's verifier reports for a sample the
// simulator signed: the cavage keyId it picks by name, else the first
// secret or token.
func verifiedKeyID(smp simulate.Sample) string {
	switch smp.Provider {
	case config.ProviderMarktplaatsLMS:
		if strings.Contains(smp.Name, "chat") {
			return config.KeyIDChatMessagePush
		}
		return config.KeyIDLeadDelivery
	case config.ProviderLokalebasen:
		return "token#0"
	default:
		return "secret#0"
	}
}

// normalizerSamples makes RAW envelopes exactly as the edge stores them,
// except that the signature headers are those of the unchanged sample: the
// normalizer carries them without verifying, so they only need their real
// size, and RSA-signing thousands of bodies would take longer than
// normalizing them.
func normalizerSamples(samples []benchSample) []nbench.Sample {
	out := make([]nbench.Sample, 0, len(samples))
	for _, s := range samples {
		out = append(out, nbench.Sample{Name: s.Name, Kind: s.kind, Raw: func(suffix string) *envelope.Raw {
			body := simulate.Unique(s.Provider, s.Body, suffix)
			ev := extract.Extract(s.Provider, s.keyID, body)
			return &envelope.Raw{
				Source:          s.src.Name,
				Provider:        s.Provider,
				Tenant:          s.src.Tenant,
				Kind:            ev.Kind,
				EventID:         eventid.New(s.src.Name, ev.ProviderEventID),
				ProviderEventID: ev.ProviderEventID,
				ReceivedAt:      time.Now().UTC(),
				Method:          http.MethodPost,
				Path:            s.path,
				KeyID:           s.keyID,
				ContentType:     "application/json",
				Signature:       s.sig,
				Body:            body,
			}
		}})
	}
	return out
}

// startBenchEdge starts the real edge for the normalizer's end-to-end
// measurement: on loopback, against the bench's JetStream, sent signed
// requests as the providers send them.
func startBenchEdge(cfg *config.Config, signer *simulate.Signer, samples []benchSample, workers int, log *zap.Logger) nbench.StartEdge {
	return func(ctx context.Context, url string) (nbench.Edge, error) {
		return newBenchEdge(cfg, signer, samples, workers, log, url)
	}
}

// startDispatchEdge starts the real edge for the dispatcher's end-to-end
// measurement, like startBenchEdge, with the causal aggregates spread over
// the rounds of the load (see spreadAggregates).
func startDispatchEdge(cfg *config.Config, signer *simulate.Signer, samples []benchSample, workers int, log *zap.Logger) dbench.StartEdge {
	return func(ctx context.Context, url string) (dbench.Edge, error) {
		e, err := newBenchEdge(cfg, signer, samples, workers, log, url)
		if err != nil {
			return nil, err
		}
		e.spread = true
		return dispatchEdge{e}, nil
	}
}

// newBenchEdge serves the real edge on loopback against the JetStream at
// url.
func newBenchEdge(cfg *config.Config, signer *simulate.Signer, samples []benchSample, workers int, log *zap.Logger, url string) (*benchEdge, error) {
	nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "leadstream-bench-e2e-edge", Logger: log})
	if err != nil {
		return nil, err
	}
	srv, err := edge.New(edge.Options{Config: cfg, JetStream: js, Logger: log, Registry: prometheus.NewRegistry()})
	if err != nil {
		nc.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		nc.Close()
		return nil, fmt.Errorf("edge listener: %w", err)
	}
	// Not ctx: on interrupt the requests in flight still get answers.
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	// Every worker keeps its connection: a handshake per request
	// would add the kernel's work to the pipeline's.
	tr := &http.Transport{MaxIdleConns: 2 * workers, MaxIdleConnsPerHost: 2 * workers, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &benchEdge{
		nc: nc, stop: stop, served: served, tr: tr,
		client:  &http.Client{Transport: tr, Timeout: 2*cfg.PublishTimeout.Duration + 10*time.Second},
		base:    "http://" + ln.Addr().String(),
		signer:  signer,
		samples: samples,
	}, nil
}

// benchEdge sends unique signed samples round robin to a served edge.
type benchEdge struct {
	nc      *nats.Conn
	stop    context.CancelFunc
	served  chan error
	tr      *http.Transport
	client  *http.Client
	base    string
	signer  *simulate.Signer
	samples []benchSample
	next    atomic.Uint64
	// spread gives each round over the samples aggregates of its own.
	spread bool
}

// Send posts the next sample with a provider event id of its own and
// returns the event id of the edge's 202.
func (e *benchEdge) Send(ctx context.Context) (string, error) {
	r, err := e.send(ctx)
	return r.EventID, err
}

// send posts the next sample and returns the event id of the edge's 202,
// when the signed request went out, and the sample's name.
func (e *benchEdge) send(ctx context.Context) (dbench.Receipt, error) {
	n := e.next.Add(1) - 1
	round := n / uint64(len(e.samples))
	s := &e.samples[n%uint64(len(e.samples))]
	body := simulate.Unique(s.Provider, s.Body, fmt.Sprintf("e2e-%d", n))
	if e.spread {
		body = spreadAggregates(s.Provider, body, fmt.Sprintf("r%d", round))
	}
	r := dbench.Receipt{Label: s.Name}
	req, err := e.signer.Request(ctx, e.base, s.src, s.Name, body)
	if err != nil {
		return r, fmt.Errorf("signing %s: %w", s.Name, err)
	}
	// After signing: an RSA signature is the provider's work, not the
	// pipeline's.
	r.Sent = time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		return r, err
	}
	ans, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		return r, fmt.Errorf("reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return r, fmt.Errorf("%s: edge answered %d %s", s.Name, resp.StatusCode, bytes.TrimSpace(ans))
	}
	var a struct {
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.Unmarshal(ans, &a); err != nil || a.ID == "" {
		return r, fmt.Errorf("%s: edge answer without an id: %s", s.Name, bytes.TrimSpace(ans))
	}
	if a.Duplicate {
		return r, fmt.Errorf("%s: edge answered duplicate for %s: the load is not unique", s.Name, a.ID)
	}
	r.EventID = a.ID
	return r, nil
}

// Close stops serving, after the requests in flight are answered.
func (e *benchEdge) Close() error {
	e.stop()
	err := <-e.served
	e.tr.CloseIdleConnections()
	e.nc.Close()
	return err
}

// dispatchEdge is a benchEdge as the dispatcher bench's Edge, which also
// wants to know when each request went out and what it was.
type dispatchEdge struct{ e *benchEdge }

// Send posts the next sample; see benchEdge.send.
func (d dispatchEdge) Send(ctx context.Context) (dbench.Receipt, error) { return d.e.send(ctx) }

// Close stops the edge.
func (d dispatchEdge) Close() error { return d.e.Close() }

// spreadAggregates returns body with the ids the normalizer builds causal
// aggregates from made unique by suffix: the Marktplaats LMS conversation,
// and the Offerte Adviseur lead and invoice (in every field that names
// them, so that a lead's status changes and an invoice's payment still
// find their lead and invoice). With the same suffix for a whole round over
// the samples, each round is a conversation, a lead and an invoice of its
// own, as real traffic spreads over many; with the samples' fixed ids,
// every event of the load would queue behind the one before it in a single
// aggregate, and every dependent after the first would find its
// prerequisite long delivered. Other providers' aggregates have no causal
// rules and are left alone.
func spreadAggregates(provider string, body []byte, suffix string) []byte {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	// Numbers as written: 12345 must stay "12345", not 12345.0.
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return body
	}
	tag := func(v any) string { return fmt.Sprint(v, "-", suffix) }
	switch provider {
	case config.ProviderMarktplaatsLMS:
		if v, ok := m["conversationId"]; ok {
			m["conversationId"] = tag(v)
		}
	case config.ProviderMarktplaatsAPI:
		// Bids and questions are about an advertisement: one per round, as
		// many buyers bid on many ads (one ad taking a third of all traffic
		// is a hot aggregate: see README, Performance).
		if d, ok := m["eventData"].(map[string]any); ok {
			if v, ok := d["advertisementItemId"]; ok {
				d["advertisementItemId"] = tag(v)
			}
		}
	case config.ProviderOfferteAdviseur:
		p, ok := m["payload"].(map[string]any)
		if !ok {
			return body
		}
		// payload.id is the lead's id in lead events and the invoice's in
		// invoice events: tagging both the same way keeps either right.
		for _, k := range []string{"id", "lead_id", "invoice_id"} {
			if v, ok := p[k]; ok {
				p[k] = tag(v)
			}
		}
		if ids, ok := p["lead_ids"].([]any); ok {
			for i, v := range ids {
				ids[i] = tag(v)
			}
		}
	default:
		return body
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}
