package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
)

// Goal is the edge's target rate as a multiple of the baseline's (one
// js.PublishMsg per request at the same concurrency), with its p99 within
// twice the baseline's: issue 10's ">= 2.5x at 64 concurrent requests, >= 5x
// at 256".
func Goal(concurrency int) float64 {
	if concurrency >= 256 {
		return 5
	}
	return 2.5
}

// CommitStats describes the edge's commits of one mode in the window.
type CommitStats struct {
	// Commits and Messages count the commits and what they held.
	Commits, Messages int
	// MeanTook is a commit's mean time from its first publish to its last
	// acknowledgement.
	MeanTook time.Duration
}

// Mean is the mean number of messages per commit.
func (c CommitStats) Mean() float64 {
	if c.Commits == 0 {
		return 0
	}
	return float64(c.Messages) / float64(c.Commits)
}

// Result is one measurement: the edge over HTTP, or the ceiling.
type Result struct {
	// Requests is how many requests (publishes) were answered well in the
	// measurement window: 202 from the edge, a PubAck for the ceiling.
	Requests int
	// Elapsed is the window, from its opening until the last request started
	// in it was answered.
	Elapsed time.Duration
	// Summary is the latencies of the good answers.
	benchkit.Summary
	// Errors counts requests in the window without a good answer.
	Errors int
	// Statuses counts the edge's answers other than 202 in the window, by
	// status. Transport errors are in Errors only.
	Statuses map[int]int
	// FirstError is the first transport or publish error, if any.
	FirstError string
	// Fresh and Duplicates count good answers of the whole phase, warmup
	// included, by their duplicate flag.
	Fresh, Duplicates int
}

// Rate is good answers per second in the window.
func (r Result) Rate() float64 { return benchkit.PerSecond(r.Requests, r.Elapsed) }

// Report is what Run measured.
type Report struct {
	// Concurrency, Warmup and Duration are the load's shape, the same for
	// both measurements.
	Concurrency      int
	Warmup, Duration time.Duration
	// CPUs and GOMAXPROCS describe the machine: edge, load generator and
	// nats-server share these cores.
	CPUs, GOMAXPROCS int
	// CPU is this process's and other processes' use during the edge's and
	// the ceiling's window, unknown where not Linux. Other work on the
	// machine makes the figures noisy.
	CPU [2]benchkit.Use
	// StoreDir is where JetStream stored both streams; TempStore says it was
	// a temporary directory, removed after the run.
	StoreDir  string
	TempStore bool
	// Mix is how many samples of each provider the round robin goes over.
	Mix map[string]int
	// Presigned counts Marktplaats LMS requests signed before the clock;
	// SignedInRun those signed during the edge phase because the pool ran
	// out (outside their latency, but on the same cores).
	Presigned, SignedInRun int

	// Edge is the edge measured over HTTP; Ceiling plain JetStream publishes
	// of the same bodies at the same concurrency.
	Edge, Ceiling Result

	// Commits describe the edge's group commit in the window: atomic
	// batches [0] and groups of individual publishes [1].
	Commits [2]CommitStats
	// AtomicThreshold is the smallest group the edge committed as an atomic
	// batch at the window's end, from its measured costs (0: none).
	AtomicThreshold int
	// CommitWait is the edge's mean wait for JetStream in the window, from
	// handing a request to the publisher until its batch's ack.
	CommitWait time.Duration

	// RawStored and CeilingStored are the messages the run added to RAW
	// and CEILING: one for every fresh answer, no more.
	RawStored, CeilingStored uint64
}

// Ratio is the edge's rate over the baseline's.
func (r *Report) Ratio() float64 {
	if r.Ceiling.Rate() == 0 {
		return 0
	}
	return r.Edge.Rate() / r.Ceiling.Rate()
}

// Print writes the report as a table and a few lines of explanation.
func (r *Report) Print(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("edge: each measurement %d concurrent, %s warmup + %s measured; %d CPUs, GOMAXPROCS %d (edge, load generator and nats-server share them)",
		r.Concurrency, r.Warmup, r.Duration, r.CPUs, r.GOMAXPROCS)
	store := r.StoreDir
	if r.TempStore {
		store += ", temporary"
	}
	p("durability: RAW and BASELINE are file streams fsynced before every ack in both measurements (store %s)", store)
	if r.CPU[0].Known() && r.CPU[1].Known() {
		busy := ""
		if r.CPU[0].Noisy() || r.CPU[1].Noisy() {
			busy = " - " + benchkit.NoiseWarning
		}
		p("other processes used %.2f CPUs during the edge window, %.2f during the baseline's%s", r.CPU[0].Others, r.CPU[1].Others, busy)
	}
	p("load: round robin over %s; %d Marktplaats LMS requests RSA-signed before the clock, %d during the run",
		mixString(r.Mix), r.Presigned, r.SignedInRun)
	p("")
	t := benchkit.NewTable(w, benchkit.Column{Width: 28, Left: true}, benchkit.Column{Name: "requests", Width: 9},
		benchkit.Column{Name: "req/s", Width: 10}, benchkit.Column{Name: "mean", Width: 9}, benchkit.Column{Name: "p50", Width: 9},
		benchkit.Column{Name: "p99", Width: 9}, benchkit.Column{Name: "p99.9", Width: 9}, benchkit.Column{Name: "max", Width: 9},
		benchkit.Column{Name: "errors", Width: 7})
	t.Header()
	row := func(name string, x Result) {
		t.Row(name, fmt.Sprint(x.Requests), fmt.Sprintf("%.0f", x.Rate()), benchkit.Millis(x.Mean), benchkit.Millis(x.P50),
			benchkit.Millis(x.P99), benchkit.Millis(x.P999), benchkit.Millis(x.Max), fmt.Sprint(x.Errors))
	}
	row("edge (signed HTTP -> RAW)", r.Edge)
	row("baseline (js.PublishMsg each)", r.Ceiling)
	p("")
	goal := Goal(r.Concurrency)
	verdict := "at or above"
	if r.Ratio() < goal {
		verdict = "BELOW"
	}
	p("edge/baseline: %.2fx the requests/s (%s the goal of %.1fx); p99 %.2fx the baseline's (goal: at most 2x)",
		r.Ratio(), verdict, goal, r.P99Ratio())
	for i, mode := range []string{"atomic batches", "individual publishes"} {
		c := r.Commits[i]
		p("edge group commit, %-20s %6d commits, %8d requests, mean %6.1f per commit, mean commit %s", mode+":", c.Commits, c.Messages, c.Mean(), benchkit.Millis(c.MeanTook))
	}
	p("edge group commit: groups of %s go as one atomic batch (measured costs at the window's end); mean wait for JetStream %s of %s mean request latency",
		thresholdString(r.AtomicThreshold), benchkit.Millis(r.CommitWait), benchkit.Millis(r.Edge.Mean))
	p("edge answers other than 202: %s", statusString(r.Edge.Statuses))
	for _, x := range []struct {
		name string
		res  Result
	}{{"edge", r.Edge}, {"baseline", r.Ceiling}} {
		if x.res.FirstError != "" {
			p("%s: first error: %s", x.name, x.res.FirstError)
		}
	}
	if r.Edge.Duplicates > 0 {
		p("WARNING: %d edge answers were duplicates: the load should be all unique", r.Edge.Duplicates)
	}
	if r.RawStored != uint64(r.Edge.Fresh) {
		p("WARNING: RAW gained %d messages but the edge accepted %d fresh requests", r.RawStored, r.Edge.Fresh)
	}
	if r.SignedInRun > 0 {
		p("note: the pre-signed pool ran out; %d RSA signatures were made during the edge run on the same cores (raise --presign)", r.SignedInRun)
	}
	if r.Ratio() < goal && r.Edge.Requests > 0 {
		rest := max(0, r.Edge.Mean-r.CommitWait)
		p("below the goal: of the edge's %s mean latency, %s is the wait for JetStream and %s the rest",
			benchkit.Millis(r.Edge.Mean), benchkit.Millis(r.CommitWait), benchkit.Millis(rest))
		p("  (HTTP, verification, extraction, and the load generator and nats-server on the same cores);")
		p("  see where the CPU goes with `go run ./cmd/bench -cpuprofile cpu.out` and `go tool pprof -top cpu.out`")
	}
}

func mixString(m map[string]int) string {
	var parts []string
	total := 0
	for _, prov := range config.Providers {
		if n := m[prov]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", prov, n))
			total += n
		}
	}
	return fmt.Sprintf("%d samples (%s)", total, strings.Join(parts, ", "))
}

func statusString(m map[int]int) string {
	if len(m) == 0 {
		return "none"
	}
	var keys []int
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d x%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func thresholdString(n int) string {
	if n == 0 {
		return "no size"
	}
	return fmt.Sprintf("%d or more", n)
}

// P99Ratio is the edge's p99 over the baseline's.
func (r *Report) P99Ratio() float64 {
	if r.Ceiling.P99 == 0 {
		return 0
	}
	return float64(r.Edge.P99) / float64(r.Ceiling.P99)
}
