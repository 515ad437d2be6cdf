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

// goal is the edge's target share of the ceiling's rate (the issue's "above
// half of that ceiling").
const goal = 0.5

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

	// Commits and BatchMean describe the edge's group commit in the window:
	// atomic batches committed and their mean size.
	Commits   int
	BatchMean float64
	// CommitWait is the edge's mean wait for JetStream in the window, from
	// handing a request to the publisher until its batch's ack.
	CommitWait time.Duration

	// RawStored and CeilingStored are the messages the run added to RAW
	// and CEILING: one for every fresh answer, no more.
	RawStored, CeilingStored uint64
}

// Ratio is the edge's rate over the ceiling's.
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
	p("durability: RAW and CEILING are file streams fsynced before every ack in both measurements (store %s)", store)
	if r.OtherCPUs[0] >= 0 && r.OtherCPUs[1] >= 0 {
		busy := ""
		if max(r.OtherCPUs[0], r.OtherCPUs[1]) > measure.Noisy {
			busy = " - other work shared the cores: the figures are noisy, run again on a quiet machine"
		}
		p("other processes used %.2f CPUs during the edge window, %.2f during the ceiling's%s", r.OtherCPUs[0], r.OtherCPUs[1], busy)
	}
	p("load: round robin over %s; %d Marktplaats LMS requests RSA-signed before the clock, %d during the run",
		mixString(r.Mix), r.Presigned, r.SignedInRun)
	p("")
	p("%-28s %9s %10s %9s %9s %9s %9s %9s %7s", "", "requests", "req/s", "mean", "p50", "p99", "p99.9", "max", "errors")
	row := func(name string, x Result) {
		p("%-28s %9d %10.0f %9s %9s %9s %9s %9s %7d", name, x.Requests, x.Rate(), measure.Millis(x.Mean), measure.Millis(x.P50), measure.Millis(x.P99), measure.Millis(x.P999), measure.Millis(x.Max), x.Errors)
	}
	row("edge (signed HTTP -> RAW)", r.Edge)
	row("ceiling (js.PublishMsg)", r.Ceiling)
	p("")
	verdict := "above"
	if r.Ratio() < goal {
		verdict = "BELOW"
	}
	p("edge/ceiling: %.2f (%s the goal of %.2f)", r.Ratio(), verdict, goal)
	p("edge group commit: %d batches, mean %.1f requests per batch; mean wait for the commit ack %s of %s mean request latency",
		r.Commits, r.BatchMean, measure.Millis(r.CommitWait), measure.Millis(r.Edge.Mean))
	p("edge answers other than 202: %s", statusString(r.Edge.Statuses))
	for _, x := range []struct {
		name string
		res  Result
	}{{"edge", r.Edge}, {"ceiling", r.Ceiling}} {
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
		p("below the goal: of the edge's %s mean latency, %s is the wait for its batch's commit ack and %s the rest",
			measure.Millis(r.Edge.Mean), measure.Millis(r.CommitWait), measure.Millis(rest))
		p("  (HTTP, verification, extraction, and the load generator and nats-server on the same cores)")
		if r.CommitWait >= rest {
			p("  -> the commit wait dominates: JetStream is the limit at %.1f requests per batch (a ceiling publish waits %s);", r.BatchMean, measure.Millis(r.Ceiling.Mean))
			p("     bigger batches, i.e. fewer commits in flight, would spread each fsync over more requests")
		} else {
			p("  -> the rest dominates: CPU is the limit; see where it goes with")
			p("     `leadstream bench --cpuprofile cpu.out` and `go tool pprof -top cpu.out`")
		}
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
