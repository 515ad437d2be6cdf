package bench

import (
	"fmt"
	"io"
	"time"

	"github.com/leadstream/leadstream/pkg/measure"
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
	// Busy and Others are how many CPUs' worth of time this process (the
	// dispatcher, nats-server, the LMS, polling) and other processes used
	// meanwhile, -1 where unknown (not Linux).
	Busy, Others float64
	// Complete says the LMS got every event; false when the measurement
	// stalled.
	Complete bool
}

// Rate is distinct deliveries per second.
func (t *Throughput) Rate() float64 {
	if t.Elapsed <= 0 {
		return 0
	}
	return float64(t.Delivered) / t.Elapsed.Seconds()
}

// EndToEnd is the whole pipeline at a steady load: how long an event takes
// from the edge receiving it to the LMS accepting it.
type EndToEnd struct {
	// Rate is the load's schedule in events per second, from Workers
	// goroutines; Warmup and Duration its unmeasured and measured parts;
	// Load the caller's description of what was sent.
	Rate             float64
	Workers          int
	Warmup, Duration time.Duration
	Load             string
	// GOMAXPROCS is the cores edge, normalizer, dispatcher, nats-server, the
	// LMS and the load generator shared.
	GOMAXPROCS int
	// Accepted counts sends of the window answered 2xx; Errors the others,
	// with the first error's text in FirstError.
	Accepted, Errors int
	FirstError       string
	// Delivered counts accepted events the LMS accepted within the drain
	// time.
	Delivered int
	// P50, P99 and Max are latencies from the request going out (the
	// edge's receipt, on loopback) to the LMS accepting the event.
	P50, P99, Max time.Duration
	// AcceptedP50, AcceptedP99 and AcceptedMax are the same from the
	// edge's 2xx: what the pipeline behind the edge adds.
	AcceptedP50, AcceptedP99, AcceptedMax time.Duration
	// Early counts events the LMS accepted before their 2xx was read,
	// counted as zero in the latencies from the 2xx.
	Early int
	// AnswerP50 and AnswerP99 are the edge's own answer times.
	AnswerP50, AnswerP99 time.Duration
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
	// MaxLag is the longest a send started after it was due: large, and
	// the load was not the steady rate it claims.
	MaxLag time.Duration
	// Busy and Others are how many CPUs' worth of time this process and
	// other processes used during the window, -1 where unknown.
	Busy, Others float64
}

// LabelLatency is the end-to-end latency of one label's events.
type LabelLatency struct {
	Label    string
	Events   int
	P50, P99 time.Duration
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
		p("%-8s %9s %14s %11s %10s %12s", "events", "seconds", "deliveries/s", "duplicates", "CPUs used", "other procs")
		p("%-8d %9.3f %14.0f %11d %10s %12s", t.Delivered, t.Elapsed.Seconds(), t.Rate(), t.Duplicates, measure.CPUs(t.Busy), measure.CPUs(t.Others))
		p("  (CPUs used: this process's CPU time - dispatcher, nats-server, LMS - per second of the run;")
		p("   other procs: CPUs' worth of time other processes used meanwhile)")
		if t.Projection > 0 {
			p("  the leads projection, on the same events meanwhile, had merged them all after %.3fs", t.Projection.Seconds())
		}
		if t.Others > measure.Noisy {
			p("other work shared the cores: the figures are noisy, run again on a quiet machine")
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
		p("  %.0f/s scheduled for %s after %s warmup, %d workers, GOMAXPROCS %d (all of it shares the cores)", e.Rate, e.Duration, e.Warmup, e.Workers, e.GOMAXPROCS)
		if e.Load != "" {
			p("  load: %s", e.Load)
		}
		p("  accepted %d (%.0f/s), delivered %d; from the request: p50 %s, p99 %s, max %s", e.Accepted, e.Achieved(), e.Delivered, measure.Millis(e.P50), measure.Millis(e.P99), measure.Millis(e.Max))
		p("  from the edge's 202: p50 %s, p99 %s, max %s; the edge answered in p50 %s, p99 %s",
			measure.Millis(e.AcceptedP50), measure.Millis(e.AcceptedP99), measure.Millis(e.AcceptedMax), measure.Millis(e.AnswerP50), measure.Millis(e.AnswerP99))
		if len(e.Labels) > 1 {
			p("  slowest from the request, by p99:")
			for _, l := range e.Labels[:min(3, len(e.Labels))] {
				p("    %-36s %6d events  p50 %s, p99 %s", l.Label, l.Events, measure.Millis(l.P50), measure.Millis(l.P99))
			}
		}
		p("  duplicates %d, orphans %d, retries %d, dead letters %d (whole phase, warmup included)", e.Duplicates, e.Orphans, e.Retries, e.DeadLetters)
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
		if e.MaxLag > measure.LagWarning {
			p("note: a send started up to %s after it was due: the load fell behind its schedule, the edge answering", e.MaxLag)
			p("  too slowly for %d workers to keep the rate", e.Workers)
		}
	}
}
