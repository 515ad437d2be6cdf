package dispatcher

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/tracing"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
)

// ReplayDeadLetter delivers a deliver-stage dead letter to its adapter
// again, with the same event id (the LMS's webhook-id), and removes it from
// DLQ on success. What it establishes (a lead.created, say) is recorded, so
// events parked behind it go out too.
func (s *Service) ReplayDeadLetter(ctx context.Context, seq uint64) error {
	l, err := dlq.Get(ctx, s.js, seq)
	if err != nil {
		return err
	}
	if l.Stage != dlq.StageDeliver {
		return fmt.Errorf("dead letter %d is from stage %q, not %q", seq, l.Stage, dlq.StageDeliver)
	}
	var ln *lane
	for _, x := range s.lanes {
		if x.cfg.Name == l.Name {
			ln = x
		}
	}
	if ln == nil {
		return fmt.Errorf("dead letter %d: adapter %q is not configured here", seq, l.Name)
	}
	var ev leadstreamv1.Event
	if err := proto.Unmarshal(l.Body, &ev); err != nil || ev.Id == "" {
		return fmt.Errorf("dead letter %d: no event to deliver (%s)", seq, l.Reason)
	}
	dctx, cancel := context.WithTimeout(ctx, ln.cfg.Timeout.Duration)
	// Linked to the webhook's trace (the letter keeps EVENTS' headers), not
	// part of it: an operator's replay is new work.
	dctx, span := tracing.Start(dctx, "dlq replay "+ln.cfg.Name, l.Header, true, trace.WithAttributes(attribute.String("leadstream.event_id", ev.Id)))
	err = ln.ad.Deliver(dctx, &adapter.Delivery{Event: &ev, Attempt: l.Attempts + 1})
	span.End()
	cancel()
	if err != nil {
		return fmt.Errorf("dead letter %d still fails: %w", seq, err)
	}
	ln.m.deliveries.WithLabelValues(ln.cfg.Name, "delivered").Inc()
	if p := provides(&ev); len(p) > 0 {
		key := stateKey(ln.cfg.Name, ev.AggregateId)
		if _, err := ln.st.update(ctx, key, func(st *aggState) bool {
			st.Queue = append(st.Queue, &entry{ID: ev.Id, Provides: p})
			st.done(ev.Id, true)
			return true
		}); err != nil {
			return err
		}
		// The member that owns the aggregate pumps what waited for it:
		// nudged now, or found by its next sweep.
		_ = s.js.Conn().Publish(wakeSubject(ln.cfg.Name), []byte(ev.AggregateId))
	}
	return dlq.Drop(ctx, s.js, seq)
}
