package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/measure"
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
	// Mean, P50, P99, P999 and Max are latencies of the good answers.
	Mean, P50, P99, P999, Max time.Duration
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
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Report is what Run measured.
type Report struct {
	// Concurrency, Warmup and Duration are the load's shape, the same for
	// both measurements.
	Concurrency      int
	Warmup, Duration time.Duration
	// CPUs and GOMAXPROCS describe the machine: edge, load generator and
	// nats-server share these cores.
	CPUs, GOMAXPROCS int
	// OtherCPUs is how many CPUs' worth of time other processes used during
	// the edge's and the ceiling's window, -1 where unknown (not Linux).
	// Other work on the machine makes the figures noisy.
	OtherCPUs [2]float64
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
	p("leadstream bench: each measurement %d concurrent, %s warmup + %s measured; %d CPUs, GOMAXPROCS %d (edge, load generator and nats-server share them)",
		r.Concurrency, r.Warmup, r.Duration, r.CPUs, r.GOMAXPROCS)
	store := r.StoreDir
	if r.TempStore {
		store += ", temporary"
	}
	p("durability: RAW and BASELINE are file streams fsynced before every ack in both measurements (store %s)", store)
	if r.OtherCPUs[0] >= 0 && r.OtherCPUs[1] >= 0 {
		busy := ""
		if max(r.OtherCPUs[0], r.OtherCPUs[1]) > measure.Noisy {
			busy = " - other work shared the cores: the figures are noisy, run again on a quiet machine"
		}
		p("other processes used %.2f CPUs during the edge window, %.2f during the baseline's%s", r.OtherCPUs[0], r.OtherCPUs[1], busy)
	}
	p("load: round robin over %s; %d Marktplaats LMS requests RSA-signed before the clock, %d during the run",
		mixString(r.Mix), r.Presigned, r.SignedInRun)
	p("")
	p("%-28s %9s %10s %9s %9s %9s %9s %9s %7s", "", "requests", "req/s", "mean", "p50", "p99", "p99.9", "max", "errors")
	row := func(name string, x Result) {
		p("%-28s %9d %10.0f %9s %9s %9s %9s %9s %7d", name, x.Requests, x.Rate(), measure.Millis(x.Mean), measure.Millis(x.P50), measure.Millis(x.P99), measure.Millis(x.P999), measure.Millis(x.Max), x.Errors)
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
		p("edge group commit, %-20s %6d commits, %8d requests, mean %6.1f per commit, mean commit %s", mode+":", c.Commits, c.Messages, c.Mean(), measure.Millis(c.MeanTook))
	}
	p("edge group commit: groups of %s go as one atomic batch (measured costs at the window's end); mean wait for JetStream %s of %s mean request latency",
		thresholdString(r.AtomicThreshold), measure.Millis(r.CommitWait), measure.Millis(r.Edge.Mean))
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
			measure.Millis(r.Edge.Mean), measure.Millis(r.CommitWait), measure.Millis(rest))
		p("  (HTTP, verification, extraction, and the load generator and nats-server on the same cores);")
		p("  see where the CPU goes with `leadstream bench --cpuprofile cpu.out` and `go tool pprof -top cpu.out`")
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
