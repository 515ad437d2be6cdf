package normalizer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/backoff"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/logging"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/tracing"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// Metadata keys the RAW unmarshaler adds to a watermill message.
const (
	mdSubject   = "leadstream_raw_subject"
	mdSequence  = "leadstream_raw_sequence"
	mdDelivered = "leadstream_num_delivered"
	mdStored    = "leadstream_raw_stored"
	mdReason    = "leadstream_dlq_reason"
	mdAttempt   = "leadstream_attempt"
)

// Run consumes until ctx ends, then stops the handlers, letting the
// messages in flight finish (each one acked or nacked).
func (s *Service) Run(ctx context.Context) error {
	wlog := quietLogger{watermill.NewSlogLogger(logging.Slog(s.log.Named("watermill"))), s.log.Core().Enabled(zap.DebugLevel)}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: s.cfg.Normalizer.AckWait.Duration}, wlog)
	if err != nil {
		return fmt.Errorf("normalizer: %w", err)
	}
	var subs []*wmnats.Subscriber
	// Closing a subscriber drains its connection; the router does not
	// always close them itself.
	defer func() {
		for _, sub := range subs {
			if err := sub.Close(); err != nil {
				s.log.Warn("closing subscriber", zap.Error(err))
			}
		}
	}()
	for _, kind := range s.kinds {
		s.metrics.initKind(kind)
		// A process that restarts after a crash takes over what it held at
		// once, instead of waiting out its AckWait.
		takenUpTo, err := streams.TakeOver(ctx, s.js, streams.RAW, Durable(kind))
		if err != nil {
			s.log.Warn("taking over unacknowledged messages failed; they come back after ack_wait", zap.String("kind", kind), zap.Error(err))
		} else if takenUpTo > 0 {
			s.log.Info("took over unacknowledged messages", zap.String("kind", kind), zap.Uint64("raw_sequence_up_to", takenUpTo))
		}
		sub, err := s.subscriber(kind, wlog)
		if err != nil {
			return err
		}
		subs = append(subs, sub)
		dlqPub := &dlqPublisher{js: s.js, kind: kind, timeout: s.cfg.Normalizer.HandlerTimeout.Duration}
		poison, err := middleware.PoisonQueueWithFilter(dlqPub, streams.DLQSubject(dlq.StageNormalize, kind), func(err error) bool {
			var dl *deadLetter
			var panicked middleware.RecoveredPanicError
			return errors.As(err, &dl) || errors.As(err, &panicked)
		})
		if err != nil {
			return fmt.Errorf("normalizer: %w", err)
		}
		h := router.AddConsumerHandler("normalize-"+kind, consumerConfig(s.cfg, kind).FilterSubject, sub, s.handler(kind, takenUpTo))
		h.AddMiddleware(
			poison,
			s.countDeadLetters(kind),
			middleware.Retry{
				MaxRetries:      s.cfg.Normalizer.Retries,
				InitialInterval: 100 * time.Millisecond,
				MaxInterval:     2 * time.Second,
				Multiplier:      2,
				ShouldRetry: func(p middleware.RetryParams) bool {
					var dl *deadLetter
					return !errors.As(p.Err, &dl)
				},
				ResetContextOnRetry: true,
				Logger:              wlog,
			}.Middleware,
			middleware.Recoverer,
			middleware.Timeout(s.cfg.Normalizer.HandlerTimeout.Duration),
		)
	}
	// The lag watcher is joined before Run returns: it uses the service's
	// connection, which the caller closes after Run. Its requests end with
	// lagCtx, so the join is as short as one of them.
	lagCtx, stopLag := context.WithCancel(ctx)
	lagDone := make(chan struct{})
	go func() {
		defer close(lagDone)
		s.watchLag(lagCtx)
	}()
	defer func() {
		stopLag()
		<-lagDone
	}()
	s.log.Info("normalizer consuming", zap.Strings("kinds", s.kinds))
	if err := router.Run(ctx); err != nil {
		return fmt.Errorf("normalizer: %w", err)
	}
	return nil
}

// subscriber subscribes to kind's durable consumer through watermill-nats,
// configured as its pitfalls require: manual, explicit acks (else nats.go
// acks after the callback, and a nacked message is lost), bound to the
// consumer created at start-up (never auto-provisioned), a Nak delay for
// redeliveries, and its own connection because closing a subscriber drains
// its connection.
func (s *Service) subscriber(kind string, wlog watermill.LoggerAdapter) (*wmnats.Subscriber, error) {
	nc, _, err := natsconn.Connect(s.url, natsconn.Options{Name: "leadstream-" + Durable(kind), CredsFile: s.cfg.NATS.CredsFile, Logger: s.log})
	if err != nil {
		return nil, err
	}
	durable := Durable(kind)
	sub, err := wmnats.NewSubscriberWithNatsConn(nc, wmnats.SubscriberSubscriptionConfig{
		Unmarshaler:      rawUnmarshaler{},
		SubscribersCount: s.cfg.Normalizer.Subscribers,
		AckWaitTimeout:   s.cfg.Normalizer.AckWait.Duration,
		CloseTimeout:     s.cfg.Normalizer.AckWait.Duration,
		SubscribeTimeout: 30 * time.Second,
		QueueGroupPrefix: durable,
		NakDelay:         nakDelay{},
		JetStream: wmnats.JetStreamConfig{
			AutoProvision: false,
			// An ack that is lost only brings the message back after
			// AckWait, and the redelivery finds its dedupe record: no
			// handler waits for the server to confirm its ack.
			AckAsync: true,
			// Bound without a look-up of the consumer (New has checked that it
			// exists): a kind has as many subscriptions as handlers, and each
			// look-up is a round trip to JetStream while the messages already
			// delivered wait on the few subscriptions made so far.
			SubscribeOptions: []nats.SubOpt{nats.ManualAck(), nats.AckExplicit(), nats.Bind(streams.RAW, durable),
				nats.SkipConsumerLookup(), nats.DeliverSubject(consumerConfig(s.cfg, kind).DeliverSubject)},
			DurableCalculator: func(string, string) string { return durable },
		},
	}, wlog)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("normalizer: subscriber for %s: %w", kind, err)
	}
	return sub, nil
}

// quietLogger drops watermill's trace lines, and its debug lines unless
// debug is on, before they are built: watermill and watermill-nats write
// several for every message, each allocating its fields, and zap would
// drop them only after that.
type quietLogger struct {
	watermill.LoggerAdapter
	debug bool
}

func (quietLogger) Trace(string, watermill.LogFields) {}

func (l quietLogger) Debug(msg string, fields watermill.LogFields) {
	if l.debug {
		l.LoggerAdapter.Debug(msg, fields)
	}
}

func (l quietLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return quietLogger{l.LoggerAdapter.With(fields), l.debug}
}

// nakDelay spaces redeliveries of transiently failing messages: 2s after
// the first delivery, 4s after the second ... up to a minute. A Nak
// without delay would come straight back. watermill-nats passes the
// deliveries so far as retryNum.
type nakDelay struct{}

func (nakDelay) WaitTime(retryNum uint64) time.Duration {
	return backoff.Exponential(time.Second, time.Minute, int(min(retryNum, 64))+1)
}

// handler normalizes kind's messages. A message at or below RAW sequence
// takenUpTo may have been delivered before a take-over reset its delivery
// count, so it counts as redelivered.
func (s *Service) handler(kind string, takenUpTo uint64) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		raw, ref, stored, delivered, err := fromWatermill(msg)
		if err != nil {
			msg.Metadata.Set(mdReason, "bad_envelope")
			return &deadLetter{reason: "bad_envelope", err: err}
		}
		// An in-process retry is a redelivery too: the attempt before it may
		// have published.
		attempt, _ := strconv.Atoi(msg.Metadata.Get(mdAttempt))
		msg.Metadata.Set(mdAttempt, strconv.Itoa(attempt+1))
		redelivered := delivered > 1 || attempt > 0 || ref.Sequence <= takenUpTo
		h := nats.Header{}
		for _, k := range []string{"traceparent", "tracestate"} {
			if v := msg.Metadata.Get(k); v != "" {
				h.Set(k, v)
			}
		}
		ctx, span := tracing.Start(msg.Context(), "normalize "+kind, h, redelivered, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("messaging.system", "nats"), attribute.String("messaging.destination.name", ref.Subject),
				attribute.String("messaging.operation.type", "process"), attribute.String("leadstream.event_id", raw.EventID),
				attribute.Int64("messaging.nats.stream_sequence", int64(ref.Sequence))))
		outcome, err := s.Process(ctx, raw, ref, stored, redelivered)
		if err != nil {
			span.SetStatus(codes.Error, "not normalized")
		}
		span.End()
		if err != nil {
			var dl *deadLetter
			if errors.As(err, &dl) {
				msg.Metadata.Set(mdReason, dl.reason)
				return err
			}
			s.metrics.messages.WithLabelValues(kind, "failed").Inc()
			// The last delivery JetStream will make: dead-letter rather than
			// leave the message unacked in RAW for good.
			if delivered >= uint64(s.cfg.Normalizer.MaxDeliver) {
				msg.Metadata.Set(mdReason, "retries_exhausted")
				return &deadLetter{reason: "retries_exhausted", err: err}
			}
			s.log.Warn("normalize failed, will retry", zap.String("kind", kind), zap.String("event_id", raw.EventID), zap.Error(err))
			return err
		}
		switch outcome {
		case Deduplicated:
			s.metrics.messages.WithLabelValues(kind, "deduplicated").Inc()
		default:
			s.metrics.messages.WithLabelValues(kind, "normalized").Inc()
		}
		if ce := s.log.Check(zap.DebugLevel, "normalized"); ce != nil {
			ce.Write(zap.String("kind", kind), zap.String("event_id", raw.EventID), zap.Int("outcome", int(outcome)))
		}
		return nil
	}
}

// countDeadLetters counts and logs what the poison queue is about to take
// (it sits inside the poison middleware, so it sees the handler's error).
func (s *Service) countDeadLetters(kind string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			var dl *deadLetter
			var panicked middleware.RecoveredPanicError
			if errors.As(err, &dl) || errors.As(err, &panicked) {
				reason := msg.Metadata.Get(mdReason)
				if reason == "" {
					reason = "panic"
					msg.Metadata.Set(mdReason, reason)
				}
				s.metrics.messages.WithLabelValues(kind, "dead_lettered").Inc()
				s.metrics.deadLetters.WithLabelValues(kind, reason).Inc()
				s.log.Warn("dead-lettering", zap.String("kind", kind), zap.String("event_id", msg.Metadata.Get(envelope.HdrEventID)),
					zap.String("reason", reason), zap.String("raw_sequence", msg.Metadata.Get(mdSequence)))
			}
			return out, err
		}
	}
}

// rawUnmarshaler turns a RAW message into a watermill message: headers
// become metadata, plus the subject and the JetStream delivery metadata. It
// never fails: a message watermill cannot unmarshal is neither acked nor
// nacked and would wait for AckWait forever.
type rawUnmarshaler struct{}

func (rawUnmarshaler) Unmarshal(m *nats.Msg) (*message.Message, error) {
	id := m.Header.Get(nats.MsgIdHdr)
	if id == "" {
		id = watermill.NewUUID()
	}
	msg := message.NewMessage(id, m.Data)
	msg.Metadata = make(message.Metadata, len(m.Header)+4) // the headers and the keys below
	for k, v := range m.Header {
		if len(v) > 0 {
			msg.Metadata.Set(k, v[0])
		}
	}
	msg.Metadata.Set(mdSubject, m.Subject)
	if md, err := m.Metadata(); err == nil {
		msg.Metadata.Set(mdSequence, strconv.FormatUint(md.Sequence.Stream, 10))
		msg.Metadata.Set(mdDelivered, strconv.FormatUint(md.NumDelivered, 10))
		msg.Metadata.Set(mdStored, strconv.FormatInt(md.Timestamp.UnixNano(), 10))
	}
	return msg, nil
}

func fromWatermill(msg *message.Message) (raw *envelope.Raw, ref *leadstreamv1.RawRef, stored time.Time, delivered uint64, err error) {
	// One allocation for the map and one for the values, not one a header.
	h := make(nats.Header, len(msg.Metadata))
	vals := make([]string, 0, len(msg.Metadata))
	for k, v := range msg.Metadata {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	raw, err = envelope.FromMsg(&nats.Msg{Subject: msg.Metadata.Get(mdSubject), Header: h, Data: msg.Payload})
	if err != nil {
		return nil, nil, time.Time{}, 0, err
	}
	seq, _ := strconv.ParseUint(msg.Metadata.Get(mdSequence), 10, 64)
	delivered, _ = strconv.ParseUint(msg.Metadata.Get(mdDelivered), 10, 64)
	ns, _ := strconv.ParseInt(msg.Metadata.Get(mdStored), 10, 64)
	return raw, &leadstreamv1.RawRef{Stream: streams.RAW, Sequence: seq, Subject: msg.Metadata.Get(mdSubject)}, time.Unix(0, ns), delivered, nil
}

// dlqPublisher is the poison queue's publisher of kind: it writes each
// poisoned RAW message as a dead letter (dlq.Write) with the RAW body and
// envelope headers, plus reason, error, origin and attempts. The poison
// middleware hands over the handler's message, whose context has ended,
// so each write gets a context of its own, bounded by timeout.
type dlqPublisher struct {
	js      jetstream.JetStream
	kind    string
	timeout time.Duration
}

func (p *dlqPublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		err := dlq.Write(ctx, p.js, p.letter(msg))
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

// Close has nothing to close: the publisher uses the service's connection,
// which the caller owns.
func (p *dlqPublisher) Close() error { return nil }

func (p *dlqPublisher) letter(msg *message.Message) *dlq.Letter {
	h := nats.Header{}
	for k, v := range msg.Metadata {
		if strings.HasPrefix(k, "Leadstream-") {
			h.Set(k, v)
		}
	}
	seq, _ := strconv.ParseUint(msg.Metadata.Get(mdSequence), 10, 64)
	attempts, _ := strconv.Atoi(msg.Metadata.Get(mdDelivered))
	return &dlq.Letter{
		Stage:    dlq.StageNormalize,
		Name:     p.kind,
		Reason:   msg.Metadata.Get(mdReason),
		Error:    msg.Metadata.Get(middleware.ReasonForPoisonedKey),
		Subject:  msg.Metadata.Get(mdSubject),
		Sequence: seq,
		Attempts: attempts,
		Header:   h,
		Body:     msg.Payload,
	}
}

// watchLag keeps the consumer lag and DLQ depth gauges current.
func (s *Service) watchLag(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		s.watchDLQ(ctx)
		for _, kind := range s.kinds {
			c, err := s.js.PushConsumer(ctx, streams.RAW, Durable(kind))
			if err != nil {
				continue
			}
			if info, err := c.Info(ctx); err == nil {
				s.metrics.pending.WithLabelValues(kind).Set(float64(info.NumPending))
				s.metrics.ackPending.WithLabelValues(kind).Set(float64(info.NumAckPending))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) watchDLQ(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, streams.DLQ)
	if err != nil {
		return
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(streams.DLQSubject(dlq.StageNormalize, "*")))
	if err != nil {
		return
	}
	for _, kind := range s.kinds {
		s.metrics.dlqDepth.WithLabelValues(kind).Set(float64(info.State.Subjects[streams.DLQSubject(dlq.StageNormalize, kind)]))
	}
}
