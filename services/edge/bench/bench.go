// Package bench measures the edge under load next to the machine's own
// JetStream ceiling, measured in the same run: signed requests of every
// provider at a fixed concurrency against an in-process edge, then plain
// JetStream publishes of the same bodies at the same concurrency, both into
// file streams fsynced before every ack. It prints figures and asserts none:
// timings depend on the machine.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/edge"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// Ceiling stream: RAW's settings under another name, so that the ceiling
// pays for exactly the storage the edge pays for.
const (
	ceilingStream        = "CEILING"
	ceilingSubjectPrefix = "ceiling."
)

// Options configures Run.
type Options struct {
	// Options are the settings every bench takes. Concurrency is how many
	// requests, or publishes, are in flight at once: default 64. The
	// CPUProfile is of the edge's measurement window; the load generator
	// and nats-server run in this process and show in it too.
	benchkit.Options
	// Presign is how many Marktplaats LMS requests are RSA-signed before the
	// clock starts. A signature costs about as much CPU as the edge's whole
	// handling of a request, so signing during the run would take cores from
	// the edge; when the pool runs out, requests are signed all the same
	// (outside their latency) and the report says how many. Default 20000;
	// negative for none.
	Presign int
	// URL, when set, is a JetStream (a cluster) to measure on instead of an
	// embedded server of its own; RAW and the ceiling's stream get Replicas
	// replicas there. StoreDir is then not used.
	URL string
	// Replicas of the measured streams on URL. Default 1.
	Replicas int
}

func (o *Options) setDefaults() {
	if o.Concurrency == 0 {
		o.Concurrency = 64
	}
	o.Options.SetDefaults()
	if o.Presign == 0 {
		o.Presign = 20000
	}
	if o.Presign < 0 {
		o.Presign = 0
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
}

// Run starts JetStream and the edge in this process, loads the edge, then
// measures plain publishes on the same server, and returns the figures.
// The stores and servers are gone when it returns.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg := o.LocalConfig()
	url, store := o.URL, ""
	if url != "" {
		cfg.NATS.Replicas = o.Replicas
		store = fmt.Sprintf("%s (replicas %d)", url, o.Replicas)
	} else {
		j, err := benchkit.StartJetStream(&o.Options, "edge")
		if err != nil {
			return nil, err
		}
		defer j.Close()
		url, store = j.URL, j.Dir
	}

	signer, err := simulate.NewSigner(&cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	tpls, err := newTemplates(signer, nonce)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}

	rep := &Report{
		Concurrency: o.Concurrency,
		Warmup:      o.Warmup,
		Duration:    o.Duration,
		CPUs:        runtime.NumCPU(),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		StoreDir:    store,
		TempStore:   o.URL == "",
		Mix:         mix(tpls),
	}
	if err := runEdge(ctx, &o, &cfg, url, tpls, signer, nonce, rep); err != nil {
		return nil, err
	}
	if err := runCeiling(ctx, &o, &cfg, url, tpls, signer, nonce, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// runEdge serves the edge on loopback and loads it over HTTP.
func runEdge(ctx context.Context, o *Options, cfg *config.Config, url string, tpls []template, signer *simulate.Signer, nonce string, rep *Report) error {
	nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "leadstream-bench-edge", Logger: o.Logger})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer nc.Close()
	if err := streams.Ensure(ctx, js, streams.RawConfig(cfg)); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	// A reused store may hold an earlier run's messages.
	held, err := streamMsgs(ctx, js, streams.RAW)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	srv, err := edge.New(edge.Options{Config: cfg, JetStream: js, Logger: o.Logger, Registry: reg})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return fmt.Errorf("bench: edge listener: %w", err)
	}
	// Not ctx: on interrupt the requests in flight still get their answers,
	// so that RAW and the counts agree.
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	defer func() {
		stop()
		<-served
	}()

	l := newLoad(tpls, signer, "http://"+ln.Addr().String(), nonce)
	if o.Presign > 0 && rep.Mix[config.ProviderMarktplaatsLMS] > 0 {
		o.Step("edge: RSA-signing %d Marktplaats LMS requests before the clock starts", o.Presign)
		if err := l.presign(ctx, o.Presign); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	rep.Presigned = len(l.pool)

	tr := &http.Transport{
		// Every worker keeps its connection: a new TCP handshake per
		// request would measure the kernel, not the edge.
		MaxIdleConns:        2 * o.Concurrency,
		MaxIdleConnsPerHost: 2 * o.Concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2*cfg.PublishTimeout.Duration + 10*time.Second}

	// Metrics are snapshotted as the window opens so that the warmup's
	// batches do not count.
	var (
		before    [5]histogram
		profiling bool
	)
	var cpu0 benchkit.CPU
	atMeasure := func() {
		cpu0 = benchkit.ReadCPU()
		before[0], _ = gather(reg, "leadstream_edge_publish_seconds")
		for i, mode := range []string{"atomic", "individual"} {
			before[1+2*i], _ = gather(reg, "leadstream_edge_commit_batch_size", "mode", mode)
			before[2+2*i], _ = gather(reg, "leadstream_edge_commit_seconds", "mode", mode)
		}
		if o.CPUProfile != nil {
			if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
				o.Logger.Warn("cpu profile not started", zap.Error(err))
			} else {
				profiling = true
			}
		}
	}
	o.Step("edge: %s warmup, then %s measured, %d concurrent requests", o.Warmup, o.Duration, o.Concurrency)
	rep.Edge = drive(ctx, o.Concurrency, o.Warmup, o.Duration, http.StatusAccepted, atMeasure, func() shot {
		// Building and signing the request is the provider's work: not timed.
		req, err := l.request(ctx)
		if err != nil {
			return shot{start: time.Now(), err: err}
		}
		return send(client, req)
	})
	rep.CPU[0] = cpu0.Until(benchkit.ReadCPU())
	if profiling {
		pprof.StopCPUProfile()
	}
	rep.SignedInRun = int(l.inline.Load())

	wait, err := gather(reg, "leadstream_edge_publish_seconds")
	if err != nil {
		return err
	}
	rep.CommitWait = time.Duration(wait.sub(before[0]).mean() * float64(time.Second))
	for i, mode := range []string{"atomic", "individual"} {
		size, err := gather(reg, "leadstream_edge_commit_batch_size", "mode", mode)
		if err != nil {
			return err
		}
		took, err := gather(reg, "leadstream_edge_commit_seconds", "mode", mode)
		if err != nil {
			return err
		}
		size, took = size.sub(before[1+2*i]), took.sub(before[2+2*i])
		rep.Commits[i] = CommitStats{Commits: int(size.count), Messages: int(size.sum), MeanTook: time.Duration(took.mean() * float64(time.Second))}
	}
	rep.AtomicThreshold = int(gauge(reg, "leadstream_edge_commit_atomic_threshold"))

	// Every request has its answer by now (drive waits for them), so
	// RAW holds all it will.
	n, err := streamMsgs(ctx, js, streams.RAW)
	rep.RawStored = n - held
	return err
}

// send is one timed request: from writing it until its answer is read.
func send(client *http.Client, req *http.Request) shot {
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return shot{start: start, latency: time.Since(start), err: err}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil {
		return shot{start: start, latency: lat, err: fmt.Errorf("reading answer: %w", err)}
	}
	// The edge writes `"duplicate":true` itself; a JSON decode per answer
	// would be load generator CPU taken from the edge.
	return shot{start: start, latency: lat, status: resp.StatusCode, dup: bytes.Contains(body, dupTrue)}
}

var dupTrue = []byte(`"duplicate":true`)

// runCeiling publishes the same bodies straight into a stream like RAW.
func runCeiling(ctx context.Context, o *Options, cfg *config.Config, url string, tpls []template, signer *simulate.Signer, nonce string, rep *Report) error {
	nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "leadstream-bench-ceiling", Logger: o.Logger})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer nc.Close()
	sc := streams.RawConfig(cfg)
	sc.Name = ceilingStream
	sc.Description = "bench: the JetStream ceiling, RAW's settings"
	sc.Subjects = []string{ceilingSubjectPrefix + ">"}
	if err := streams.Ensure(ctx, js, sc); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	held, err := streamMsgs(ctx, js, ceilingStream)
	if err != nil {
		return err
	}
	l := newLoad(tpls, signer, "", nonce)
	o.Step("edge: ceiling: %s warmup, then %s measured, %d concurrent js.PublishMsg", o.Warmup, o.Duration, o.Concurrency)
	var cpu0 benchkit.CPU
	atMeasure := func() { cpu0 = benchkit.ReadCPU() }
	rep.Ceiling = drive(ctx, o.Concurrency, o.Warmup, o.Duration, 0, atMeasure, func() shot {
		msg := l.msg()
		start := time.Now()
		ack, err := js.PublishMsg(ctx, msg)
		s := shot{start: start, latency: time.Since(start), err: err}
		if err == nil {
			s.dup = ack.Duplicate
		}
		return s
	})
	rep.CPU[1] = cpu0.Until(benchkit.ReadCPU())
	n, err := streamMsgs(ctx, js, ceilingStream)
	rep.CeilingStored = n - held
	return err
}

// streamMsgs is how many messages stream holds now.
func streamMsgs(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	st, err := benchkit.StreamState(ctx, js, stream)
	return st.Msgs, err
}

// newNonce returns a short random prefix for this run's event ids.
func newNonce() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("bench: nonce: %w", err)
	}
	return "bench" + hex.EncodeToString(b), nil
}
