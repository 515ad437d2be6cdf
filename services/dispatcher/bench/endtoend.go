package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/streams"
)

// Receipt is the edge's acceptance of one event of the load.
type Receipt struct {
	// EventID is the event id of the edge's 2xx: the LMS's webhook-id.
	EventID string
	// Sent is when the request was handed to the network, after signing
	// it: on loopback, the edge's receipt.
	Sent time.Time
	// Label names what was sent, e.g. its sample; the report shows the
	// labels with the slowest deliveries.
	Label string
}

// Edge is the front of the pipeline that the end-to-end load goes to.
type Edge interface {
	// Send posts one new provider event to the edge, signed as its provider
	// signs it, and returns its Receipt once the edge answered 2xx, i.e.
	// once the event is durably in RAW. Any other answer, and a duplicate,
	// is an error. Send is called from several goroutines at once.
	Send(ctx context.Context) (Receipt, error)
	// Close stops the edge. It is called once, after the last Send returned.
	Close() error
}

// StartEdge starts an Edge that stores into RAW on the JetStream server at
// natsURL. RAW exists when it is called.
type StartEdge func(ctx context.Context, natsURL string) (Edge, error)

// Service is a pipeline service the bench runs until it is done with it.
type Service interface {
	// Run works until ctx ends and returns nil then.
	Run(ctx context.Context) error
}

// StartNormalizer prepares a normalizer for every kind against the
// JetStream server at natsURL, which js is connected to, with cfg: the
// bench's copy of the config, with one replica. RAW, EVENTS and DLQ exist
// when it is called.
type StartNormalizer func(ctx context.Context, cfg *config.Config, natsURL string, js jetstream.JetStream) (Service, error)

// runEndToEnd runs the caller's edge and normalizer and a dispatcher with
// the bench adapter on one JetStream, sends events at a fixed rate, and
// times each from the edge's receipt (and from its 2xx) to the fake LMS
// accepting it.
func runEndToEnd(ctx context.Context, o *Options, cfg *config.Config, secret string) (*EndToEnd, error) {
	pt, err := startPart(ctx, o, cfg, secret, "e2e", true)
	if err != nil {
		return nil, err
	}
	defer pt.close()
	j, l, cfg := pt.j, pt.lms, pt.cfg

	norm, err := o.Normalizer(ctx, cfg, j.URL, j.JS)
	if err != nil {
		return nil, fmt.Errorf("bench: starting the normalizer: %w", err)
	}
	disp, reg, err := pt.newDispatcher(ctx, o)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	nran, dran := make(chan error, 1), make(chan error, 1)
	go func() { nran <- norm.Run(runCtx) }()
	go func() { dran <- disp.Run(runCtx) }()
	stopServices := sync.OnceValue(func() error {
		cancel()
		nerr, derr := <-nran, <-dran
		if nerr != nil {
			nerr = fmt.Errorf("normalizer: %w", nerr)
		}
		if derr != nil {
			derr = fmt.Errorf("dispatcher: %w", derr)
		}
		return errors.Join(nerr, derr)
	})
	defer stopServices()

	paced, err := benchkit.PaceEdge[Receipt](ctx, &o.Options, "dispatcher", o.Edge, j.URL)
	if err != nil {
		return nil, err
	}
	accepted := make([]sent, len(paced.OK))
	for i, c := range paced.OK {
		accepted[i] = sent{Receipt: c.Result, accepted: c.End}
		// Where the edge says nothing of when the request went out, the
		// call's start stands for it.
		if accepted[i].Sent.IsZero() {
			accepted[i].Sent = c.Begin
		}
	}

	res := &EndToEnd{Load: paced.Load, Samples: o.Samples}
	o.Step("dispatcher: end to end: waiting up to %s for %d accepted events to reach the LMS", o.Drain, len(accepted))
	ids := make([]string, len(accepted))
	for i, s := range accepted {
		ids[i] = s.EventID
	}
	delivered := func(id string) bool { _, ok := l.accepted(id); return ok }
	if err := benchkit.Drained(ctx, ids, o.Drain, delivered); err != nil {
		return nil, err
	}
	fromSend, from202, answer := benchkit.NewLatency(), benchkit.NewLatency(), benchkit.NewLatency()
	byLabel := map[string]*benchkit.Latency{}
	for _, s := range accepted {
		answer.Record(s.accepted.Sub(s.Sent))
		at, ok := l.accepted(s.EventID)
		if !ok {
			continue
		}
		fromSend.Record(at.Sub(s.Sent))
		if byLabel[s.Label] == nil {
			byLabel[s.Label] = benchkit.NewLatency()
		}
		byLabel[s.Label].Record(at.Sub(s.Sent))
		// Not clock noise (one process, one monotonic clock): the edge's
		// answer can lose the race with the whole pipeline when the
		// sender's goroutine waits for a core. Counted as zero.
		if at.Before(s.accepted) {
			res.Early++
		}
		from202.Record(at.Sub(s.accepted))
	}
	res.Delivered = fromSend.Count()
	res.Latency, res.FromAccepted, res.Answer = fromSend.Summary(), from202.Summary(), answer.Summary()
	for label, lat := range byLabel {
		res.Labels = append(res.Labels, LabelLatency{Label: label, Events: lat.Count(), Latency: lat.Summary()})
	}
	// Slowest first: they explain the overall p99.
	slices.SortFunc(res.Labels, func(a, b LabelLatency) int {
		if c := cmp.Compare(b.Latency.P99, a.Latency.P99); c != 0 {
			return c
		}
		return strings.Compare(a.Label, b.Label)
	})
	res.Duplicates = l.duplicates()
	res.BadSignatures = int(l.bad.Load())

	out, err := readOutcomes(reg)
	if err != nil {
		return nil, err
	}
	res.Orphans, res.Retries = out.orphans, out.retries
	dlq, err := benchkit.StreamState(ctx, j.JS, streams.DLQ)
	if err != nil {
		return nil, err
	}
	res.DeadLetters = int(dlq.Msgs)
	if !o.NoProjection {
		if _, err := awaitConsumer(ctx, j.JS, projectionDurable, o.Drain); err != nil {
			return nil, err
		}
	}
	if err := stopServices(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	return res, nil
}

// sent is an accepted send of the end-to-end load.
type sent struct {
	Receipt
	// accepted is when its 2xx was read.
	accepted time.Time
}
