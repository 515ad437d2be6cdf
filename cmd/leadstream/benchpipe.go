package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/measure"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// The pipeline measurements load `leadstream run` as a user runs it: a
// child process of this binary, on its embedded JetStream (fsync before
// every ack), with the shipped sample config except that its webhook adapter
// posts to a fake LMS in this process and its nats adapter is left out. The
// load goes over HTTP from this process, signed as the providers sign, each
// round over the samples with aggregates of its own (spreadAggregates).

// pipeOptions are the pipeline measurements' settings.
type pipeOptions struct {
	// bin is the leadstream binary to run; default this one.
	bin string
	// out gets the report; default stdout.
	out        io.Writer
	configPath string
	// adjust, when set, changes the child's config (tests shorten timers).
	adjust   func(map[string]any)
	storeDir string
	workers  int

	steadyRate     float64
	steadyDuration time.Duration
	findMax        bool
	stepDuration   time.Duration

	catchupRate float64
	catchupDown time.Duration

	memoryWebhooks int
	memoryRate     float64
}

func (o *pipeOptions) any() bool {
	return o.steadyRate > 0 || o.catchupRate > 0 || o.memoryWebhooks > 0
}

// pipeline is a `leadstream run` child with its fake LMS and load.
type pipeline struct {
	cmd     *exec.Cmd
	exited  chan error
	logPath string
	lms     *fakeLMS
	load    *benchEdge
	track   *tracker
}

// startPipeline writes a config for the child into dir and starts it.
func startPipeline(ctx context.Context, o *pipeOptions, dir string, samples []benchSample, signer *simulate.Signer) (*pipeline, error) {
	lms, err := newFakeLMS()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "leadstream.yaml")
	if err := writeChildConfig(o.configPath, cfgPath, httpAddr, natsAddr, filepath.Join(dir, "nats"), lms.url, o.adjust); err != nil {
		return nil, err
	}
	bin := o.bin
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	logPath := filepath.Join(dir, "leadstream-run.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &pipeline{cmd: cmd, exited: make(chan error, 1), logPath: logPath, lms: lms, track: newTracker()}
	go func() { p.exited <- cmd.Wait(); logf.Close() }()
	lms.track = p.track
	base := "http://" + httpAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := p.alive(); err != nil {
			p.stop()
			return nil, err
		}
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("bench: leadstream run not ready after 60s (log %s)", logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "bench: pipeline: leadstream run (pid %d) serves %s, metrics at %s/metrics\n", cmd.Process.Pid, base, base)
	tr := &http.Transport{MaxIdleConns: 2 * o.workers, MaxIdleConnsPerHost: 2 * o.workers, IdleConnTimeout: time.Minute, DisableCompression: true}
	p.load = &benchEdge{tr: tr, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: base, signer: signer, samples: samples, spread: true}
	return p, nil
}

// alive returns an error when the child has exited.
func (p *pipeline) alive() error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return fmt.Errorf("bench: leadstream run exited: %v (log %s)", err, p.logPath)
	default:
		return nil
	}
}

// stop ends the child (SIGTERM, then SIGKILL after 30s) and the fake LMS.
func (p *pipeline) stop() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-p.exited:
			p.exited <- err
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	}
	if p.load != nil {
		p.load.tr.CloseIdleConnections()
	}
	p.lms.close()
}

// send is one request of the load, recorded by the tracker.
func (p *pipeline) send(ctx context.Context) (struct{}, error) {
	r, err := p.load.send(ctx)
	if err != nil {
		p.track.failed.Add(1)
		return struct{}{}, err
	}
	p.track.accepted(r.EventID, r.Sent)
	return struct{}{}, nil
}

// rss is the child's resident set size in bytes.
func (p *pipeline) rss() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// writeChildConfig writes the shipped config at from to path with the
// child's addresses and store, the webhook adapter pointed at lmsURL, the
// nats adapter and the demo LMS left out, key paths made absolute, and
// warnings-only logs.
func writeChildConfig(from, path, httpAddr, natsAddr, storeDir, lmsURL string, adjust func(map[string]any)) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("bench: %s: %w", from, err)
	}
	abs, err := filepath.Abs(from)
	if err != nil {
		return err
	}
	base := filepath.Dir(abs)
	m["listen"] = httpAddr
	m["log"] = map[string]any{"format": "console", "level": "warn"}
	nats, _ := m["nats"].(map[string]any)
	if nats == nil {
		nats = map[string]any{}
	}
	nats["url"], nats["store_dir"], nats["listen"] = "", storeDir, natsAddr
	m["nats"] = nats
	delete(m, "demo_lms")
	if srcs, ok := m["sources"].([]any); ok {
		for _, s := range srcs {
			src, _ := s.(map[string]any)
			keys, _ := src["public_keys"].(map[string]any)
			for k, v := range keys {
				if p, ok := v.(string); ok && !filepath.IsAbs(p) {
					keys[k] = filepath.Join(base, p)
				}
			}
		}
	}
	var adapters []any
	if ads, ok := m["adapters"].([]any); ok {
		for _, a := range ads {
			ad, _ := a.(map[string]any)
			if ad["type"] == "webhook" {
				ad["url"] = lmsURL
				adapters = append(adapters, ad)
				break
			}
		}
	}
	if len(adapters) == 0 {
		return fmt.Errorf("bench: %s has no webhook adapter to point at the fake LMS", from)
	}
	m["adapters"] = adapters
	if adjust != nil {
		adjust(m)
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return err
	}
	if _, err := config.Load(path); err != nil {
		return fmt.Errorf("bench: the child's config: %w", err)
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tracker matches the edge's 202s with the LMS's deliveries by event id
// (the webhook-id).
type tracker struct {
	mu sync.Mutex
	// open holds accepted events not delivered yet: when they were sent.
	open map[string]time.Time
	// early holds deliveries seen before their 202 was read.
	early map[string]time.Time
	// seen holds every delivered id, for duplicates.
	seen map[string]struct{}
	// window, when set, says which send times' latencies are kept.
	window    func(time.Time) bool
	latencies []time.Duration

	nAccepted, nDelivered, dups atomic.Int64
	failed                      atomic.Int64
}

func newTracker() *tracker {
	return &tracker{open: map[string]time.Time{}, early: map[string]time.Time{}, seen: map[string]struct{}{}}
}

func (t *tracker) accepted(id string, sent time.Time) {
	t.nAccepted.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.early[id]; ok {
		delete(t.early, id)
		t.keep(sent, max(at.Sub(sent), 0))
		return
	}
	t.open[id] = sent
}

// delivered records the LMS's 2xx for id at at.
func (t *tracker) delivered(id string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.seen[id]; ok {
		t.dups.Add(1)
		return
	}
	t.seen[id] = struct{}{}
	t.nDelivered.Add(1)
	if sent, ok := t.open[id]; ok {
		delete(t.open, id)
		t.keep(sent, at.Sub(sent))
		return
	}
	t.early[id] = at
}

func (t *tracker) keep(sent time.Time, d time.Duration) {
	if t.window != nil && t.window(sent) {
		t.latencies = append(t.latencies, d)
	}
}

// backlog is accepted events the LMS has not received yet.
func (t *tracker) backlog() int64 { return t.nAccepted.Load() - t.nDelivered.Load() }

// measureFrom starts keeping the latencies of events sent in [from, until).
func (t *tracker) measureFrom(from, until time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latencies = nil
	t.window = func(s time.Time) bool { return !s.Before(from) && s.Before(until) }
}

func (t *tracker) takeLatencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.latencies
	t.latencies, t.window = nil, nil
	return l
}

// fakeLMS answers every delivery 204 at once, or 503 while down, and tells
// the tracker what it accepted. It checks no signature: that is an LMS's
// work, not the pipeline's.
type fakeLMS struct {
	srv   *http.Server
	url   string
	down  atomic.Bool
	track *tracker
	// refused counts deliveries answered 503.
	refused atomic.Int64
}

func newFakeLMS() (*fakeLMS, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &fakeLMS{url: "http://" + ln.Addr().String() + "/events"}
	l.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if l.down.Load() {
			l.refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		l.track.delivered(r.Header.Get("webhook-id"), time.Now())
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = l.srv.Serve(ln) }()
	return l, nil
}

func (l *fakeLMS) close() { _ = l.srv.Close() }

// steadyResult is one steady-rate run.
type steadyResult struct {
	rate, achieved float64
	lat            measure.Summary
	n              int
	// growth is the backlog's trend over the window (least squares), in
	// events; flat says it stayed under half a second of intake.
	growth, startBacklog, endBacklog float64
	flat                             bool
	errors                           int64
	lateStarts                       int
	drain                            time.Duration
}

// runSteady loads p at rate for warmup and dur, samples the backlog every
// 250 ms over the window, and waits for the backlog to drain.
func runSteady(ctx context.Context, p *pipeline, rate float64, workers int, warmup, dur time.Duration) (steadyResult, error) {
	res := steadyResult{rate: rate}
	from := time.Now().Add(warmup)
	p.track.measureFrom(from, from.Add(dur))
	errsBefore := p.track.failed.Load()
	var (
		samples []float64
		times   []float64
		stop    = make(chan struct{})
		sampled = make(chan struct{})
	)
	go func() {
		defer close(sampled)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tk.C:
				if now.After(from) && now.Before(from.Add(dur)) {
					times = append(times, now.Sub(from).Seconds())
					samples = append(samples, float64(p.track.backlog()))
				}
			}
		}
	}()
	sent, _ := measure.Pace(ctx, rate, workers, warmup, dur, p.send)
	close(stop)
	<-sampled
	measured := 0
	for _, s := range sent {
		if s.Measured {
			measured++
			if s.Lag > measure.LagWarning {
				res.lateStarts++
			}
		}
	}
	res.achieved = float64(measured) / dur.Seconds()
	res.errors = p.track.failed.Load() - errsBefore
	drainStart := time.Now()
	for p.track.backlog() > 0 && time.Since(drainStart) < 5*time.Minute {
		if err := p.alive(); err != nil {
			return res, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.drain = time.Since(drainStart)
	lat := p.track.takeLatencies()
	res.n = len(lat)
	res.lat = measure.Summarize(lat)
	if len(samples) > 1 {
		slope := leastSquaresSlope(times, samples)
		res.growth = slope * dur.Seconds()
		res.startBacklog, res.endBacklog = samples[0], samples[len(samples)-1]
	}
	res.flat = res.growth < rate/2 && res.errors == 0 && res.n > 0 && p.track.backlog() == 0
	return res, ctx.Err()
}

func leastSquaresSlope(x, y []float64) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(x))
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func (r steadyResult) row() string {
	verdict := "flat"
	if !r.flat {
		verdict = "GROWING"
	}
	return fmt.Sprintf("%7.0f/s %8.0f/s %8d %9s %9s %9s   %+9.0f (%s) %6d %7s", r.rate, r.achieved, r.n,
		measure.Millis(r.lat.P50), measure.Millis(r.lat.P99), measure.Millis(r.lat.Max), r.growth, verdict, r.errors, r.drain.Round(10*time.Millisecond))
}

const steadyHeader = "   rate   achieved   events       p50       p99       max   backlog trend over the window  errors  drain"

// benchPipeline runs the pipeline measurements o asks for and prints them.
func benchPipeline(ctx context.Context, o *pipeOptions, signer *simulate.Signer, samples []benchSample) error {
	load, _ := dispatchSamples(samples)
	dir := o.storeDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "leadstream-bench-pipeline-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	fresh := func(name string) (*pipeline, error) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "bench: pipeline: %s: starting leadstream run (store %s)\n", name, d)
		return startPipeline(ctx, o, d, load, signer)
	}
	if o.out == nil {
		o.out = os.Stdout
	}
	p := func(format string, a ...any) { fmt.Fprintf(o.out, format+"\n", a...) }
	p("")
	p("pipeline: `leadstream run` as a child process (edge, normalizers, dispatcher, projection, embedded JetStream with fsync")
	p("  before every ack), the shipped config with its webhook adapter posting to a fake LMS in the bench process (204 at")
	p("  once) and no nats adapter; the load signed as the providers sign, over HTTP from the bench process, %d workers,", o.workers)
	p("  each round over %d samples with aggregates of its own; latency from the request to the LMS's 2xx", len(load))

	if o.steadyRate > 0 {
		pl, err := fresh("steady")
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: pipeline: %.0f/s for %s\n", o.steadyRate, o.steadyDuration)
		r, err := runSteady(ctx, pl, o.steadyRate, o.workers, 5*time.Second, o.steadyDuration)
		if err != nil {
			pl.stop()
			return err
		}
		p("")
		p("steady load, %s after 5s warmup (backlog: accepted by the edge, not yet at the LMS, sampled every 250ms):", o.steadyDuration)
		p("%s", steadyHeader)
		p("%s", r.row())
		dups := pl.track.dups.Load()
		pl.stop()
		if o.findMax {
			p("")
			// Up 25% a step from a flat steady rate until the backlog grows;
			// down 20% a step from a growing one until it stays flat. Each
			// step starts a fresh leadstream run: one that fell behind would
			// still be digesting its backlog in the next step.
			up := r.flat && r.lateStarts == 0
			dir, factor := "up", 1.25
			if !up {
				dir, factor = "down", 0.8
			}
			p("highest steady rate: %s steps of %s after 3s warmup, each on a fresh leadstream run, %s %.0f%% each, until the backlog %s:",
				o.stepDuration, o.stepDuration, dir, math.Abs(factor-1)*100, map[bool]string{true: "grows", false: "stays flat"}[up])
			p("%s", steadyHeader)
			best, worst := 0.0, o.steadyRate // the highest flat, the lowest growing
			if up {
				best, worst = o.steadyRate, math.Inf(1)
			}
			for rate := o.steadyRate * factor; ctx.Err() == nil && rate >= 10; rate *= factor {
				spl, err := fresh(fmt.Sprintf("step-%.0f", rate))
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "bench: pipeline: step %.0f/s\n", rate)
				r, err := runSteady(ctx, spl, rate, o.workers, 3*time.Second, o.stepDuration)
				dups += spl.track.dups.Load()
				spl.stop()
				if err != nil {
					return err
				}
				p("%s", r.row())
				flat := r.flat && r.lateStarts == 0
				if flat {
					best = max(best, rate)
				} else {
					worst = min(worst, rate)
				}
				if flat != up {
					break
				}
			}
			switch {
			case best > 0 && !math.IsInf(worst, 1):
				p("highest rate with a flat backlog: %.0f/s (it grows at %.0f/s)", best, worst)
			case best > 0:
				p("highest rate with a flat backlog: %.0f/s", best)
			default:
				p("highest rate with a flat backlog: below %.0f/s", worst)
			}
		}
		if dups > 0 {
			p("WARNING: the LMS received %d events twice", dups)
		}
	}
	if o.catchupRate > 0 && ctx.Err() == nil {
		if err := benchCatchup(ctx, o, fresh, p); err != nil {
			return err
		}
	}
	if o.memoryWebhooks > 0 && ctx.Err() == nil {
		if err := benchMemory(ctx, o, fresh, p); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// benchCatchup takes the LMS down for o.catchupDown under o.catchupRate
// intake, brings it back with the intake going on, and times the drain.
func benchCatchup(ctx context.Context, o *pipeOptions, fresh func(string) (*pipeline, error), p func(string, ...any)) error {
	pl, err := fresh("catchup")
	if err != nil {
		return err
	}
	defer pl.stop()
	pl.lms.down.Store(true)
	fmt.Fprintf(os.Stderr, "bench: pipeline: catch-up: LMS down, %.0f/s for %s\n", o.catchupRate, o.catchupDown)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		// Until stopped: the intake goes on while the backlog drains.
		measure.Pace(loadCtx, o.catchupRate, o.workers, 0, 24*time.Hour, pl.send)
	}()
	downUntil := time.Now().Add(o.catchupDown)
	for time.Now().Before(downUntil) {
		if err := pl.alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(30*time.Second, time.Until(downUntil))):
		}
		fmt.Fprintf(os.Stderr, "bench: pipeline: catch-up: %d accepted, backlog %d, %d deliveries refused\n", pl.track.nAccepted.Load(), pl.track.backlog(), pl.lms.refused.Load())
	}
	backlogAtUp := pl.track.backlog()
	pl.lms.down.Store(false)
	up := time.Now()
	fmt.Fprintf(os.Stderr, "bench: pipeline: catch-up: LMS up with a backlog of %d\n", backlogAtUp)
	caughtUp := time.Duration(-1)
	threshold := int64(math.Ceil(o.catchupRate)) // one second of intake
	for time.Since(up) < time.Hour {
		if err := pl.alive(); err != nil {
			return err
		}
		if pl.track.backlog() <= threshold {
			caughtUp = time.Since(up)
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if s := time.Since(up); s%(30*time.Second) < 100*time.Millisecond {
			fmt.Fprintf(os.Stderr, "bench: pipeline: catch-up: %s after the LMS came back, backlog %d\n", s.Round(time.Second), pl.track.backlog())
		}
	}
	stopLoad()
	<-loaded
	p("")
	p("catch-up: the LMS answered 503 for %s of %.0f/s intake, then 204 again, the intake going on:", o.catchupDown, o.catchupRate)
	p("  backlog when the LMS came back: %d events (%d deliveries refused while it was down)", backlogAtUp, pl.lms.refused.Load())
	if caughtUp < 0 {
		p("  NOT caught up within an hour: backlog %d", pl.track.backlog())
	} else {
		p("  caught up (backlog within one second of intake) %s after the LMS came back: %.0f events/s drained above the intake",
			caughtUp.Round(100*time.Millisecond), float64(backlogAtUp)/caughtUp.Seconds())
	}
	if d := pl.track.dups.Load(); d > 0 {
		p("  the LMS received %d events twice (deliveries it answered 2xx for)", d)
	}
	return nil
}

// benchMemory sends o.memoryWebhooks at o.memoryRate and prints the child's
// RSS as they go.
func benchMemory(ctx context.Context, o *pipeOptions, fresh func(string) (*pipeline, error), p func(string, ...any)) error {
	pl, err := fresh("memory")
	if err != nil {
		return err
	}
	defer pl.stop()
	dur := time.Duration(float64(o.memoryWebhooks) / o.memoryRate * float64(time.Second))
	fmt.Fprintf(os.Stderr, "bench: pipeline: memory: %d webhooks at %.0f/s (%s)\n", o.memoryWebhooks, o.memoryRate, dur.Round(time.Second))
	type point struct {
		accepted, delivered int64
		rss                 int64
	}
	var points []point
	step := int64(o.memoryWebhooks / 10)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		measure.Pace(ctx, o.memoryRate, o.workers, 0, dur, pl.send)
	}()
	next := step
	for {
		done := false
		select {
		case <-loadDone:
			done = true
		case <-time.After(200 * time.Millisecond):
		}
		if err := pl.alive(); err != nil {
			return err
		}
		if a := pl.track.nAccepted.Load(); a >= next || done {
			rss, err := pl.rss()
			if err != nil {
				return err
			}
			points = append(points, point{a, pl.track.nDelivered.Load(), rss})
			fmt.Fprintf(os.Stderr, "bench: pipeline: memory: %d accepted, %d delivered, RSS %d MiB\n", a, pl.track.nDelivered.Load(), rss>>20)
			next += step
		}
		if done {
			break
		}
	}
	drainStart := time.Now()
	for pl.track.backlog() > 0 && time.Since(drainStart) < 30*time.Minute && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	rss, err := pl.rss()
	if err != nil {
		return err
	}
	points = append(points, point{pl.track.nAccepted.Load(), pl.track.nDelivered.Load(), rss})
	p("")
	p("memory: RSS of `leadstream run` (its embedded nats-server included) while %d webhooks go through at %.0f/s:", o.memoryWebhooks, o.memoryRate)
	var b bytes.Buffer
	for i, pt := range points {
		label := ""
		if i == len(points)-1 {
			label = " (all delivered)"
		}
		fmt.Fprintf(&b, "  %9d accepted %9d delivered   RSS %5d MiB%s\n", pt.accepted, pt.delivered, pt.rss>>20, label)
	}
	p("%s", strings.TrimSuffix(b.String(), "\n"))
	if len(points) > 2 {
		first, last := points[1], points[len(points)-1]
		per := float64(last.rss-first.rss) / float64(max(last.accepted-first.accepted, 1))
		p("  from %d to %d webhooks RSS changed by %+d MiB (%+.0f bytes a webhook)", first.accepted, last.accepted, (last.rss-first.rss)>>20, per)
	}
	if f := pl.track.failed.Load(); f > 0 {
		p("  %d requests failed", f)
	}
	return nil
}
