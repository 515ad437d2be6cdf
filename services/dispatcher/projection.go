package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/leads"
)

// projectionConsumer reads every event into the leads projection. The
// projection merges in any order, so one consumer without ordering will do.
var projectionConsumer = jetstream.ConsumerConfig{
	Durable:       "projection-leads",
	Description:   "leadstream: order-independent lead state in KV leads",
	DeliverPolicy: jetstream.DeliverAllPolicy,
	AckPolicy:     jetstream.AckExplicitPolicy,
	AckWait:       30 * time.Second,
	MaxDeliver:    -1,
	MaxAckPending: 256,
}

// maxProjectBatch bounds the events merged and written together: at most
// what the consumer has in flight.
var maxProjectBatch = projectionConsumer.MaxAckPending

// project runs the projection's consumer until ctx ends: the events nats.go
// delivers are merged in batches of whatever has arrived meanwhile (see
// leads.Writer), each acked once its state is stored.
func (s *Service) project(ctx context.Context) error {
	cons, err := s.js.Consumer(ctx, streams.EVENTS, projectionConsumer.Durable)
	if err != nil {
		return stopped(ctx, fmt.Errorf("projection: %w", err))
	}
	watch := newConsumerWatch(s.m, s.log)
	// Never full: the consumer has at most MaxAckPending messages out.
	in := make(chan jetstream.Msg, projectionConsumer.MaxAckPending)
	cc, err := cons.Consume(func(m jetstream.Msg) { in <- m }, watch.handler(projectionConsumer.Durable, cons))
	if err != nil {
		return fmt.Errorf("projection: %w", err)
	}
	defer func() {
		// What was taken and not merged comes back to the next consumer.
		deadline := time.NewTimer(stopTimeout)
		defer deadline.Stop()
		stopConsuming(s.log, deadline.C, cc)
	}()
	batch := make([]jetstream.Msg, 0, maxProjectBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-watch.reports:
			if err := watch.check(ctx, r); err != nil {
				return fmt.Errorf("projection: %w", err)
			}
		case m := <-in:
			batch = append(batch[:0], m)
		more:
			for len(batch) < maxProjectBatch {
				select {
				case m := <-in:
					batch = append(batch, m)
				default:
					break more
				}
			}
			s.projectBatch(ctx, batch)
		}
	}
}

// projectBatch merges msgs' events into the projection and acks each
// message whose event is stored; it terms those no redelivery can store
// (the event itself is in EVENTS, and was dead-lettered or delivered by
// the lanes), and naks the others for a retry.
func (s *Service) projectBatch(ctx context.Context, msgs []jetstream.Msg) {
	evs := make([]*leadstreamv1.Event, 0, len(msgs))
	taken := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		ev := &leadstreamv1.Event{}
		if err := proto.Unmarshal(m.Data(), ev); err != nil {
			s.m.projected.WithLabelValues("undecodable").Inc()
			_ = m.Term()
			continue
		}
		evs, taken = append(evs, ev), append(taken, m)
	}
	for i, err := range s.projection.Apply(ctx, evs) {
		m, ev := taken[i], evs[i]
		if _, ok := permanent(err); ok || errors.Is(err, leads.ErrNoAggregate) {
			s.m.projected.WithLabelValues("unprojectable").Inc()
			s.log.Warn("event cannot be projected, skipped", zap.String("event_id", ev.Id), zap.Error(err))
			_ = m.Term()
			continue
		}
		if err != nil {
			s.m.projected.WithLabelValues("failed").Inc()
			if ctx.Err() == nil {
				s.log.Warn("projecting event failed, will retry", zap.String("event_id", ev.Id), zap.Error(err))
			}
			_ = m.NakWithDelay(time.Second)
			continue
		}
		s.m.projected.WithLabelValues("merged").Inc()
		_ = m.Ack()
	}
}
