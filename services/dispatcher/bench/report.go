package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/leadstream/leadstream/pkg/benchkit"
)

// Throughput is the dispatcher delivering a filled EVENTS to the fake LMS.
type Throughput struct {
	// Events is how many events EVENTS was filled with, over Aggregates
	// conversations; EarlyChats says each conversation's first chat message
	// was stored before its lead.
	Events, Aggregates int
	EarlyChats         bool
	// Elapsed runs from the dispatcher's start to the LMS accepting the
	// last new event.
	Elapsed time.Duration
	// Projection is when the leads projection had merged every event,
	// from the dispatcher's start; zero when it did not run. It shares the
	// cores and the disk with the deliveries.
	Projection time.Duration
	// Delivered counts distinct webhook-ids the LMS accepted; Duplicates
	// the requests that repeated one already accepted.
	Delivered, Duplicates int
	// OutOfOrder counts conversations of which the LMS accepted a chat
	// message before the lead.created (or without it).
	OutOfOrder int
	// Orphans, Retries and DeadLettered are the dispatcher's own counts of
	// those outcomes.
	Orphans, Retries, DeadLettered int
	// BadSignatures counts requests the LMS refused for their signature
	// (only when it verified them).
	BadSignatures int
	// CPU is how many CPUs' worth of time this process (the dispatcher,
	// nats-server, the LMS, polling) and other processes used meanwhile,
	// unknown where not Linux.
	CPU benchkit.Use
	// Complete says the LMS got every event; false when the measurement
	// stalled.
	Complete bool
}

// Rate is distinct deliveries per second.
func (t *Throughput) Rate() float64 { return benchkit.PerSecond(t.Delivered, t.Elapsed) }

// EndToEnd is the whole pipeline at a steady load: how long an event takes
// from the edge receiving it to the LMS accepting it.
type EndToEnd struct {
	// Load is the load: edge, normalizer, dispatcher, nats-server, the LMS
	// and the load generator share GOMAXPROCS cores; Accepted counts the
	// sends the edge answered 2xx.
	benchkit.Load
	// Samples is the caller's description of what was sent.
	Samples string
	// Delivered counts accepted events the LMS accepted within the drain
	// time.
	Delivered int
	// Latency is from the request going out (the edge's receipt, on
	// loopback) to the LMS accepting the event.
	Latency benchkit.Summary
	// FromAccepted is the same from the edge's 2xx: what the pipeline
	// behind the edge adds.
	FromAccepted benchkit.Summary
	// Early counts events the LMS accepted before their 2xx was read,
	// counted as zero in FromAccepted.
	Early int
	// Answer is the edge's own answer times.
	Answer benchkit.Summary
	// Labels are the latencies from the request by the Receipt's label,
	// slowest p99 first.
	Labels []LabelLatency
	// Duplicates counts requests to the LMS that repeated a webhook-id it
	// had accepted, over the whole phase, warmup included; so do Orphans
	// and Retries, the dispatcher's counts, and DeadLetters, the messages
	// in DLQ from any stage.
	Duplicates, Orphans, Retries, DeadLetters int
	// BadSignatures counts requests the LMS refused for their signature
	// (only when it verified them).
	BadSignatures int
}

// LabelLatency is the end-to-end latency of one label's events.
type LabelLatency struct {
	Label   string
	Events  int
	Latency benchkit.Summary
}

// Report is what Run measured.
type Report struct {
	// Workers, MaxAckPending and MaxPark are the dispatcher's settings;
	// Projection says the leads projection ran beside the adapter's lane.
	Workers, MaxAckPending int
	MaxPark                time.Duration
	Projection             bool
	// Verified says the fake LMS checked every signature.
	Verified bool
	// Throughput and EndToEnd are nil when they were not measured.
	Throughput *Throughput
	EndToEnd   *EndToEnd
}

// Print writes the report as a few lines of figures and explanation.
func (r *Report) Print(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	lms := "answers 204 at once without checking signatures (an LMS's work, not the dispatcher's)"
	if r.Verified {
		lms = "answers 204 after checking each Standard Webhooks signature"
	}
	projection := "leads projection on (as in `leadstream run`)"
	if !r.Projection {
		projection = "leads projection off"
	}
	p("dispatcher: one webhook adapter (CloudEvents JSON, Standard Webhooks signatures) to a fake LMS on 127.0.0.1")
	p("  that %s;", lms)
	p("  %d workers, max_ack_pending %d, max_park %s, %s;", r.Workers, r.MaxAckPending, r.MaxPark, projection)
	p("  file streams and buckets fsynced before every ack; a fresh JetStream for each part")
	if t := r.Throughput; t != nil {
		p("")
		order := "each lead.created stored before its chat messages"
		if t.EarlyChats {
			order = "each conversation's first chat message stored before its lead.created, parking until it"
		}
		p("throughput: EVENTS filled before the clock starts with %d events over %d conversations (%s)", t.Events, t.Aggregates, order)
		tb := benchkit.NewTable(w, benchkit.Column{Name: "events", Width: 8, Left: true}, benchkit.Column{Name: "seconds", Width: 9},
			benchkit.Column{Name: "deliveries/s", Width: 14}, benchkit.Column{Name: "duplicates", Width: 11},
			benchkit.Column{Name: "CPUs used", Width: 10}, benchkit.Column{Name: "other procs", Width: 12})
		tb.Header()
		tb.Row(fmt.Sprint(t.Delivered), fmt.Sprintf("%.3f", t.Elapsed.Seconds()), fmt.Sprintf("%.0f", t.Rate()), fmt.Sprint(t.Duplicates),
			benchkit.CPUs(t.CPU.Self), benchkit.CPUs(t.CPU.Others))
		p("  (CPUs used: this process's CPU time - dispatcher, nats-server, LMS - per second of the run;")
		p("   other procs: CPUs' worth of time other processes used meanwhile)")
		if t.Projection > 0 {
			p("  the leads projection, on the same events meanwhile, had merged them all after %.3fs", t.Projection.Seconds())
		}
		if t.CPU.Noisy() {
			p("%s", benchkit.NoiseWarning)
		}
		if !t.Complete || t.Delivered < t.Events {
			p("WARNING: the LMS got %d of %d events before the dispatcher stalled", t.Delivered, t.Events)
		}
		if t.Duplicates > 0 {
			p("WARNING: %d deliveries repeated a webhook-id the LMS had accepted", t.Duplicates)
		}
		if t.OutOfOrder > 0 {
			p("WARNING: %d conversations got a chat message before their lead", t.OutOfOrder)
		}
		if t.Orphans+t.Retries+t.DeadLettered+t.BadSignatures > 0 {
			p("WARNING: %d orphans, %d retries, %d dead-lettered, %d refused signatures", t.Orphans, t.Retries, t.DeadLettered, t.BadSignatures)
		}
	}
	if e := r.EndToEnd; e != nil {
		p("")
		p("end to end (request to the edge -> the LMS accepting the event; edge, normalizer, dispatcher in this process):")
		p("  %s (all of it shares the cores)", e.Load)
		if e.Samples != "" {
			p("  load: %s", e.Samples)
		}
		p("  accepted %d (%.0f/s), delivered %d; from the request: %s", e.Accepted, e.Achieved(), e.Delivered, e.Latency)
		p("  from the edge's 202: %s; the edge answered in p50 %s, p99 %s",
			e.FromAccepted, benchkit.Millis(e.Answer.P50), benchkit.Millis(e.Answer.P99))
		if len(e.Labels) > 1 {
			p("  slowest from the request, by p99:")
			for _, l := range e.Labels[:min(3, len(e.Labels))] {
				p("    %-36s %6d events  p50 %s, p99 %s", l.Label, l.Events, benchkit.Millis(l.Latency.P50), benchkit.Millis(l.Latency.P99))
			}
		}
		p("  duplicates %d, orphans %d, retries %d, dead letters %d (whole phase, warmup included)", e.Duplicates, e.Orphans, e.Retries, e.DeadLetters)
		e.PrintNotes(w)
		if e.Delivered < e.Accepted {
			p("WARNING: %d accepted events did not reach the LMS in time", e.Accepted-e.Delivered)
		}
		if e.Duplicates > 0 {
			p("WARNING: %d deliveries repeated a webhook-id the LMS had accepted", e.Duplicates)
		}
		if e.BadSignatures > 0 {
			p("WARNING: the LMS refused %d signatures", e.BadSignatures)
		}
		if e.Early > 0 {
			p("note: %d events reached the LMS before their 202 was read (counted as 0ms from the 202)", e.Early)
		}
	}
}
