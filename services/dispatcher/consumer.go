package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// recordTimeout bounds each write that records what an LMS answered. Those
// writes are made even when shutdown has begun (an unrecorded delivery is
// made again after the restart), so ctx alone does not end them.
const recordTimeout = 5 * time.Second

// stopTimeout bounds a consuming loop's shutdown: its consumers stopped
// and its workers back. A worker's longest step after ctx ends is giving
// up on an event (its dead letter, then its record: two writes), so
// stopTimeout leaves room for that. What is still unfinished after it is
// left to JetStream: unacknowledged messages come back after ack_wait, or
// at once to the next process's take-over.
const stopTimeout = 3 * recordTimeout

// recordCtx is the context of writes that record an LMS's answer: not
// cancelled with ctx, and bounded by recordTimeout.
func recordCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}

// consumerWatch sees what nats.go reports about the consumers of one
// consuming loop (a missed heartbeat, a deleted consumer, a leader change):
// it counts and logs every report, and tells the loop when consuming has
// ended for good, which would otherwise stall the loop without a word.
type consumerWatch struct {
	m       *metrics
	log     *zap.Logger
	reports chan consumerReport
}

// consumerReport is one error a consumer's Consume reported.
type consumerReport struct {
	name string
	c    jetstream.Consumer
	err  error
}

func newConsumerWatch(m *metrics, log *zap.Logger) *consumerWatch {
	return &consumerWatch{m: m, log: log, reports: make(chan consumerReport, 16)}
}

// handler is the error handler to consume c (durable name) with. nats.go
// calls it from its own goroutines, so it never blocks: a report that finds
// the queue full is only counted and logged (one queued report is enough
// for the loop to look).
func (w *consumerWatch) handler(name string, c jetstream.Consumer) jetstream.PullConsumeOpt {
	return jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		w.m.consumerErrors.WithLabelValues(name).Inc()
		w.log.Warn("consuming reported an error", zap.String("consumer", name), zap.Error(err))
		select {
		case w.reports <- consumerReport{name: name, c: c, err: err}:
		default:
		}
	})
}

// check returns an error when r means that the consumer delivers nothing
// more: nats.go stopped consuming (the consumer was deleted, the request
// refused, the connection closed for good), or the consumer no longer
// exists (reported only as missed heartbeats when it went while the
// connection was down). The loop ends with that error, and with it the
// dispatcher, so that its supervisor restarts it and New creates the
// consumer again, as for a connection closed for good.
func (w *consumerWatch) check(ctx context.Context, r consumerReport) error {
	if errors.Is(r.err, jetstream.ErrConsumerDeleted) || errors.Is(r.err, jetstream.ErrBadRequest) || errors.Is(r.err, jetstream.ErrConnectionClosed) {
		return fmt.Errorf("consuming with %s stopped: %w", r.name, r.err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := r.c.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("consumer %s no longer exists (after %v): %w", r.name, r.err, err)
	}
	// Anything else passes: nats.go pulls again after a missed heartbeat
	// and after a reconnect.
	return nil
}

// stopConsuming stops cs and waits, until deadline, for their handlers to
// return. Messages they had not yet acked come back to the next consumer.
func stopConsuming(log *zap.Logger, deadline <-chan time.Time, cs ...jetstream.ConsumeContext) {
	for _, c := range cs {
		c.Stop()
	}
	for _, c := range cs {
		select {
		case <-c.Closed():
		case <-deadline:
			log.Warn("consumers not stopped in time; their messages come back after ack_wait", zap.Duration("within", stopTimeout))
			return
		}
	}
}
