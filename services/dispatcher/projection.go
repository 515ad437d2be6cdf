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

func (s *Service) project(ctx context.Context) error {
	cons, err := s.js.Consumer(ctx, streams.EVENTS, projectionConsumer.Durable)
	if err != nil {
		return stopped(ctx, fmt.Errorf("projection: %w", err))
	}
	watch := newConsumerWatch(s.m, s.log)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ev leadstreamv1.Event
		if err := proto.Unmarshal(m.Data(), &ev); err != nil {
			s.m.projected.WithLabelValues("undecodable").Inc()
			_ = m.Term()
			return
		}
		err := s.projection.Apply(ctx, &ev)
		if _, ok := permanent(err); ok || errors.Is(err, leads.ErrNoAggregate) {
			// No redelivery can store it; the event itself is in EVENTS
			// and was dead-lettered or delivered by the lanes.
			s.m.projected.WithLabelValues("unprojectable").Inc()
			s.log.Warn("event cannot be projected, skipped", zap.String("event_id", ev.Id), zap.Error(err))
			_ = m.Term()
			return
		}
		if err != nil {
			s.m.projected.WithLabelValues("failed").Inc()
			s.log.Warn("projecting event failed, will retry", zap.String("event_id", ev.Id), zap.Error(err))
			_ = m.NakWithDelay(time.Second)
			return
		}
		s.m.projected.WithLabelValues("merged").Inc()
		_ = m.Ack()
	}, watch.handler(projectionConsumer.Durable, cons))
	if err != nil {
		return fmt.Errorf("projection: %w", err)
	}
	defer func() {
		deadline := time.NewTimer(stopTimeout)
		defer deadline.Stop()
		stopConsuming(s.log, deadline.C, cc)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-watch.reports:
			if err := watch.check(ctx, r); err != nil {
				return fmt.Errorf("projection: %w", err)
			}
		}
	}
}
