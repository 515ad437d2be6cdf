package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
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
	// CPU is how many CPUs' worth of time the process used meanwhile
	// (normalizer, nats-server, the bench's polling: well below 1, the
	// consumer waited, mostly for fsyncs, not for the core) and other
	// processes (they make the figures noisy), unknown where not Linux.
	CPU benchkit.Use
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
	if !k.CPU.Known() || k.Rate() == 0 {
		return 0
	}
	return time.Duration(k.CPU.Self / k.Rate() * float64(time.Second))
}

// Rate is events per second.
func (k KindResult) Rate() float64 { return benchkit.PerSecond(k.Events, k.Elapsed) }

// EndToEnd is the whole pipeline at a steady load: how long an event takes
// from the edge's 2xx to its arrival in EVENTS.
type EndToEnd struct {
	// Load is the load: edge, normalizer, nats-server and the load
	// generator share GOMAXPROCS cores; Accepted counts the sends the edge
	// answered 2xx.
	benchkit.Load
	// Arrived counts accepted events found in EVENTS within the drain time.
	Arrived int
	// Latency is from the 2xx to the arrival.
	Latency benchkit.Summary
	// Early counts arrivals before their 2xx was read (the normalizer won
	// the race with the answer), counted as zero latency.
	Early int
	// DuplicateArrivals counts events that arrived more than once.
	DuplicateArrivals int
	// DeadLettered and Failed are the normalizer's counts over the whole
	// phase, warmup included.
	DeadLettered, Failed int
	// Answer is the edge's own answer times, which Latency does not
	// include.
	Answer benchkit.Summary
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
		t := benchkit.NewTable(w, benchkit.Column{Name: "kind", Width: 14, Left: true}, benchkit.Column{Name: "events", Width: 8},
			benchkit.Column{Name: "seconds", Width: 9}, benchkit.Column{Name: "events/s", Width: 10}, benchkit.Column{Name: "core busy", Width: 10},
			benchkit.Column{Name: "CPU/event", Width: 10}, benchkit.Column{Name: "other procs", Width: 12}, benchkit.Column{Name: "per commit", Width: 14})
		t.Header()
		var (
			events  int
			elapsed time.Duration
			noisy   bool
		)
		for _, k := range r.Kinds {
			t.Row(k.Kind, fmt.Sprint(k.Events), seconds(k.Elapsed), fmt.Sprintf("%.0f", k.Rate()), percent(k.CPU.Self), micros(k.CPUPerEvent()),
				benchkit.CPUs(k.CPU.Others), fmt.Sprintf("%.0f / %.0f", k.Commits["events"].Mean(), k.Commits["dedupe"].Mean()))
			events += k.Events
			elapsed += k.Elapsed
			noisy = noisy || k.CPU.Noisy()
		}
		if len(r.Kinds) > 1 && elapsed > 0 {
			t.Row("all, in turn", fmt.Sprint(events), seconds(elapsed), fmt.Sprintf("%.0f", float64(events)/elapsed.Seconds()))
		}
		p("  (core busy: this process's CPU time - normalizer, nats-server, polling - per second of the run, and per event;")
		p("   other procs: CPUs' worth of time other processes used meanwhile; per commit: events and dedupe records")
		p("   committed together on average, as one atomic batch or as individual publishes in flight together)")
		if noisy {
			p("%s", benchkit.NoiseWarning)
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
		p("end to end (edge 2xx -> event in EVENTS, read by an ordered consumer; edge, normalizer, nats-server and load")
		p("  generator share the cores): %s", e.Load)
		p("  accepted %d (%.0f/s), arrived %d; %s", e.Accepted, e.Achieved(), e.Arrived, e.Latency)
		p("  the edge itself answered in p50 %s, p99 %s (not in the figures above)", benchkit.Millis(e.Answer.P50), benchkit.Millis(e.Answer.P99))
		e.PrintNotes(w)
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
	}
}

// seconds formats a measurement's length with three decimals.
func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

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
