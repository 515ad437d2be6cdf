package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/leadstream/leadstream/pkg/measure"
)

// KindResult is one kind's consumer normalizing a filled RAW on one core.
type KindResult struct {
	// Kind is the consumer's kind; Samples how many payloads its envelopes
	// were made from.
	Kind    string
	Samples int
	// Stored is how many envelopes RAW was filled with; Events how many
	// events EVENTS gained from them.
	Stored, Events int
	// Elapsed runs from the normalizer's start to the last event stored.
	Elapsed time.Duration
	// Busy is how many CPUs' worth of time the process used meanwhile
	// (normalizer, nats-server, the bench's polling), -1 where unknown (not
	// Linux). Well below 1, the consumer waited, mostly for fsyncs, not for
	// the core.
	Busy float64
	// Others is how many CPUs' worth of time other processes used
	// meanwhile, -1 where unknown: they make the figures noisy.
	Others float64
	// Normalized, Deduplicated, DeadLettered and Failed are the normalizer's
	// own counts of its outcomes.
	Normalized, Deduplicated, DeadLettered, Failed int
	// Complete says the consumer acked every envelope; false when the
	// measurement stalled.
	Complete bool
	// Commits are the normalizer's group commits, by stream ("events",
	// "dedupe").
	Commits map[string]Commits
}

// Commits counts the group commits into one stream.
type Commits struct {
	// Commits is how many there were, Atomic how many of them were atomic
	// batches, and Writes how many messages they held in all.
	Commits, Atomic, Writes int
}

// Mean is the writes per commit.
func (c Commits) Mean() float64 {
	if c.Commits == 0 {
		return 0
	}
	return float64(c.Writes) / float64(c.Commits)
}

// CPUPerEvent is the process's CPU time per event: the core's busy share
// over the rate. Zero where either is unknown.
func (k KindResult) CPUPerEvent() time.Duration {
	if k.Busy < 0 || k.Rate() == 0 {
		return 0
	}
	return time.Duration(k.Busy / k.Rate() * float64(time.Second))
}

// Rate is events per second.
func (k KindResult) Rate() float64 {
	if k.Elapsed <= 0 {
		return 0
	}
	return float64(k.Events) / k.Elapsed.Seconds()
}

// EndToEnd is the whole pipeline at a steady load: how long an event takes
// from the edge's 2xx to its arrival in EVENTS.
type EndToEnd struct {
	// Rate is the load's schedule in events per second, from Workers
	// goroutines; Warmup and Duration its unmeasured and measured parts.
	Rate             float64
	Workers          int
	Warmup, Duration time.Duration
	// GOMAXPROCS is the cores edge, normalizer, nats-server and the load
	// generator shared.
	GOMAXPROCS int
	// Accepted counts sends of the window answered 2xx; Errors the others,
	// with the first error's text in FirstError.
	Accepted, Errors int
	FirstError       string
	// Arrived counts accepted events found in EVENTS within the drain time.
	Arrived int
	// P50, P99 and Max are latencies from the 2xx to the arrival.
	P50, P99, Max time.Duration
	// Early counts arrivals before their 2xx was read (the normalizer won
	// the race with the answer), counted as zero latency.
	Early int
	// DuplicateArrivals counts events that arrived more than once.
	DuplicateArrivals int
	// DeadLettered and Failed are the normalizer's counts over the whole
	// phase, warmup included.
	DeadLettered, Failed int
	// AnswerP50 and AnswerP99 are the edge's own answer times, which the
	// latency above does not include.
	AnswerP50, AnswerP99 time.Duration
	// MaxLag is the longest a send started after it was due: large, and
	// the load was not the steady rate it claims.
	MaxLag time.Duration
	// Busy and Others are how many CPUs' worth of time this process and
	// other processes used during the window, -1 where unknown.
	Busy, Others float64
}

// Achieved is accepted events per second of the window.
func (e *EndToEnd) Achieved() float64 {
	if e.Duration <= 0 {
		return 0
	}
	return float64(e.Accepted) / e.Duration.Seconds()
}

// Report is what Run measured.
type Report struct {
	// CPUs and GOMAXPROCS describe the machine outside the one-core phase.
	CPUs, GOMAXPROCS int
	// Subscribers and MaxAckPending are the normalizer's consumer settings
	// per kind: with fsync before every ack they, more than the core, bound
	// one consumer's rate.
	Subscribers, MaxAckPending int
	// Kinds holds one result per measured kind, in order.
	Kinds []KindResult
	// EndToEnd is nil when it was not measured.
	EndToEnd *EndToEnd
}

// Print writes the report as a table and a few lines of explanation.
func (r *Report) Print(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("normalizer: each kind's consumer alone on one core: GOMAXPROCS 1 while it runs, restored after (the nats-server")
	p("  runs in this process and shares that core); RAW filled before the clock starts; file streams fsynced before every")
	p("  ack; per kind %d subscriptions, max_ack_pending %d", r.Subscribers, r.MaxAckPending)
	if len(r.Kinds) > 0 {
		p("")
		p("%-14s %8s %9s %10s %10s %10s %12s %14s", "kind", "events", "seconds", "events/s", "core busy", "CPU/event", "other procs", "per commit")
		var (
			events  int
			elapsed time.Duration
			others  float64
		)
		for _, k := range r.Kinds {
			p("%-14s %8d %9.3f %10.0f %10s %10s %12s %14s", k.Kind, k.Events, k.Elapsed.Seconds(), k.Rate(), percent(k.Busy), micros(k.CPUPerEvent()),
				measure.CPUs(k.Others), fmt.Sprintf("%.0f / %.0f", k.Commits["events"].Mean(), k.Commits["dedupe"].Mean()))
			events += k.Events
			elapsed += k.Elapsed
			others = max(others, k.Others)
		}
		if len(r.Kinds) > 1 && elapsed > 0 {
			p("%-14s %8d %9.3f %10.0f", "all, in turn", events, elapsed.Seconds(), float64(events)/elapsed.Seconds())
		}
		p("  (core busy: this process's CPU time - normalizer, nats-server, polling - per second of the run, and per event;")
		p("   other procs: CPUs' worth of time other processes used meanwhile; per commit: events and dedupe records")
		p("   committed together on average, as one atomic batch or as individual publishes in flight together)")
		if others > measure.Noisy {
			p("other work shared the cores: the figures are noisy, run again on a quiet machine")
		}
		for _, k := range r.Kinds {
			if !k.Complete {
				p("WARNING: %s: the consumer stalled before acking all %d envelopes", k.Kind, k.Stored)
			}
			if k.Events != k.Stored || k.DeadLettered+k.Failed+k.Deduplicated > 0 {
				p("WARNING: %s: %d envelopes gave %d events (normalized %d, deduplicated %d, dead-lettered %d, failed attempts %d)",
					k.Kind, k.Stored, k.Events, k.Normalized, k.Deduplicated, k.DeadLettered, k.Failed)
			}
		}
	}
	if e := r.EndToEnd; e != nil {
		p("")
		p("end to end (edge 2xx -> event in EVENTS, read by an ordered consumer): %.0f/s scheduled for %s after %s warmup,",
			e.Rate, e.Duration, e.Warmup)
		p("  %d workers, GOMAXPROCS %d (edge, normalizer, nats-server and load generator share the cores)", e.Workers, e.GOMAXPROCS)
		p("  accepted %d (%.0f/s), arrived %d; p50 %s, p99 %s, max %s", e.Accepted, e.Achieved(), e.Arrived, measure.Millis(e.P50), measure.Millis(e.P99), measure.Millis(e.Max))
		p("  the edge itself answered in p50 %s, p99 %s (not in the figures above)", measure.Millis(e.AnswerP50), measure.Millis(e.AnswerP99))
		if e.Busy >= 0 {
			busy := ""
			if e.Others > measure.Noisy {
				busy = " - other work shared the cores: the figures are noisy, run again on a quiet machine"
			}
			p("  this process used %.2f CPUs during the window, other processes %.2f%s", e.Busy, e.Others, busy)
		}
		if e.Errors > 0 {
			p("WARNING: %d sends were not accepted; first error: %s", e.Errors, e.FirstError)
		}
		if e.Arrived < e.Accepted {
			p("WARNING: %d accepted events did not arrive in EVENTS in time", e.Accepted-e.Arrived)
		}
		if e.DeadLettered+e.Failed > 0 {
			p("WARNING: the normalizer dead-lettered %d messages and had %d failed attempts", e.DeadLettered, e.Failed)
		}
		if e.DuplicateArrivals > 0 {
			p("WARNING: %d events arrived in EVENTS more than once", e.DuplicateArrivals)
		}
		if e.Early > 0 {
			p("note: %d events arrived before their 2xx was read (counted as 0ms)", e.Early)
		}
		if e.MaxLag > measure.LagWarning {
			p("note: a send started up to %s after it was due: the load fell behind its schedule, the edge answering", e.MaxLag.Round(time.Millisecond))
			p("  too slowly for --e2e-workers %d to keep the rate", e.Workers)
		}
	}
}

// micros formats a CPU time per event, "-" when unknown.
func micros(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

// percent formats a share of one core, "-" when unknown.
func percent(x float64) string {
	if x < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*x)
}
