package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/adapter"
)

// lane delivers to one adapter: its own durable consumer on EVENTS, its own
// timers, its own workers. An LMS that is slow or down only ever slows its
// own lane.
//
// Admitting an event (recording it in its aggregate's queue and acking it)
// and delivering are done by different workers: admission is one KV write
// and never waits behind an LMS, so an EVENTS message is acked well within
// ack_wait even while its aggregate is busy delivering. (Admitted behind
// deliveries, messages of a busy aggregate outlived ack_wait, came back,
// and a copy that arrived after its event had left the bounded list of
// delivered ids was delivered a second time.)
type lane struct {
	cfg        *config.Adapter
	ad         adapter.Adapter
	js         jetstream.JetStream
	events     jetstream.Stream
	st         states
	log        *zap.Logger
	m          *metrics
	maxPark    time.Duration
	subscribed func(string) bool
	now        func() time.Time
	// admitters[i] and pumps[i] serve the aggregates that hash to i, so
	// each aggregate is admitted in arrival order and delivered serially.
	admitters []chan admission
	pumps     []*pumpSet
}

// admission is an EVENTS message to admit.
type admission struct {
	agg string
	m   jetstream.Msg
}

// pumpSet holds the aggregates a delivery worker has to pump, each once
// however often it was asked for, in the order they were first asked for.
type pumpSet struct {
	mu    sync.Mutex
	set   map[string]struct{}
	order []string
	wake  chan struct{}
}

func newPumpSet() *pumpSet {
	return &pumpSet{set: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

func (p *pumpSet) add(agg string) {
	p.mu.Lock()
	if _, ok := p.set[agg]; !ok {
		p.set[agg] = struct{}{}
		p.order = append(p.order, agg)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pumpSet) take() (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) == 0 {
		return "", false
	}
	agg := p.order[0]
	p.order = p.order[1:]
	delete(p.set, agg)
	return agg, true
}

// timer is the body of a timer message.
type timer struct {
	Aggregate string    `json:"aggregate"`
	Due       time.Time `json:"due"`
}

func (l *lane) durable() string      { return "dispatch-" + l.cfg.Name }
func (l *lane) timerDurable() string { return "timers-" + l.cfg.Name }
func (l *lane) timerSubject() string { return "dispatch.timers." + l.cfg.Name }

func (l *lane) consumerConfig(maxAckPending int, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        l.durable(),
		Description:    "leadstream dispatcher for adapter " + l.cfg.Name,
		FilterSubjects: filterSubjects(l.cfg),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ackWait,
		MaxDeliver:     -1,
		MaxAckPending:  maxAckPending,
	}
}

func (l *lane) timerConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       l.timerDurable(),
		Description:   "leadstream dispatcher timers for adapter " + l.cfg.Name,
		FilterSubject: l.timerSubject(),
		AckPolicy:     jetstream.AckExplicitPolicy,
		// A due timer is acked as soon as its aggregate is handed to its
		// delivery worker; one not due yet is nakked with its delay.
		AckWait:       time.Minute,
		MaxDeliver:    -1,
		MaxAckPending: 1024,
	}
}

// run consumes EVENTS and timers until ctx ends, or until one of its
// consumers can deliver nothing more (it returns that error). Whichever
// way it returns, its workers and consumers are stopped first, within
// stopTimeout.
func (l *lane) run(ctx context.Context, workers int) error {
	events, err := l.js.Consumer(ctx, streams.EVENTS, l.durable())
	if err != nil {
		return stopped(ctx, fmt.Errorf("dispatcher %s: %w", l.cfg.Name, err))
	}
	timers, err := l.js.Consumer(ctx, streams.TIMERS, l.timerDurable())
	if err != nil {
		return stopped(ctx, fmt.Errorf("dispatcher %s: %w", l.cfg.Name, err))
	}
	// The workers end with this ctx, also when run returns early.
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg        sync.WaitGroup
		consuming []jetstream.ConsumeContext
	)
	defer func() {
		cancel()
		deadline := time.NewTimer(stopTimeout)
		defer deadline.Stop()
		stopConsuming(l.log.With(zap.String("adapter", l.cfg.Name)), deadline.C, consuming...)
		if !waitTimeout(&wg, deadline.C) {
			l.log.Warn("lane workers still busy at shutdown; what they hold is in the ordering state", zap.String("adapter", l.cfg.Name), zap.Duration("within", stopTimeout))
		}
	}()
	l.admitters = make([]chan admission, workers)
	l.pumps = make([]*pumpSet, workers)
	for i := range workers {
		l.admitters[i] = make(chan admission, 64)
		l.pumps[i] = newPumpSet()
		wg.Go(func() { l.admitLoop(ctx, l.admitters[i]) })
		wg.Go(func() { l.pumpLoop(ctx, l.pumps[i]) })
	}
	watch := newConsumerWatch(l.m, l.log.With(zap.String("adapter", l.cfg.Name)))
	ec, err := events.Consume(func(m jetstream.Msg) {
		// ce-subject is percent-encoded (CloudEvents NATS binding); decoded
		// it is the aggregate id, as replay and the sweep name it. One that
		// does not decode is left to admit, which reads the event's own.
		agg, _ := envelope.HeaderValue(m.Headers(), envelope.HdrCESubject)
		select {
		case l.admitters[l.worker(agg)] <- admission{agg: agg, m: m}:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(64), watch.handler(l.durable(), events))
	if err != nil {
		return fmt.Errorf("dispatcher %s: consuming EVENTS: %w", l.cfg.Name, err)
	}
	consuming = append(consuming, ec)
	tc, err := timers.Consume(func(m jetstream.Msg) {
		var t timer
		if json.Unmarshal(m.Data(), &t) != nil {
			_ = m.Term()
			return
		}
		if wait := t.Due.Sub(l.now()); wait > 0 {
			_ = m.NakWithDelay(wait)
			return
		}
		// The state, not the timer, says what is due: a pump that fails
		// schedules a new timer, and the sweep finds what a crash lost.
		l.wake(t.Aggregate)
		_ = m.Ack()
	}, jetstream.PullMaxMessages(64), watch.handler(l.timerDurable(), timers))
	if err != nil {
		return fmt.Errorf("dispatcher %s: consuming timers: %w", l.cfg.Name, err)
	}
	consuming = append(consuming, tc)
	// After a restart, pick up whatever was admitted but not yet delivered.
	wg.Go(func() { l.sweep(ctx) })
	l.log.Info("dispatching", zap.String("adapter", l.cfg.Name), zap.Strings("subjects", filterSubjects(l.cfg)))
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-watch.reports:
			if err := watch.check(ctx, r); err != nil {
				return fmt.Errorf("dispatcher %s: %w", l.cfg.Name, err)
			}
		}
	}
}

// stopped is err, or nil when ctx ended: a shutdown during start-up is no
// failure.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// waitTimeout waits for wg until deadline, and reports whether wg was done.
func waitTimeout(wg *sync.WaitGroup, deadline <-chan time.Time) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-deadline:
		return false
	}
}

// worker is the index of the admitter and delivery worker that own agg.
func (l *lane) worker(agg string) int {
	h := fnv.New32a()
	h.Write([]byte(agg))
	return int(h.Sum32() % uint32(len(l.pumps)))
}

// wake asks agg's delivery worker to pump it.
func (l *lane) wake(agg string) { l.pumps[l.worker(agg)].add(agg) }

func (l *lane) admitLoop(ctx context.Context, ch <-chan admission) {
	for {
		select {
		case a := <-ch:
			agg, err := l.admit(ctx, a.agg, a.m)
			if err != nil {
				if ctx.Err() == nil {
					l.log.Warn("admitting event failed, will retry", zap.String("adapter", l.cfg.Name), zap.Error(err))
				}
				_ = a.m.NakWithDelay(nakDelay(a.m))
				continue
			}
			if agg != "" {
				l.wake(agg)
			}
		case <-ctx.Done():
			return
		}
	}
}

func (l *lane) pumpLoop(ctx context.Context, p *pumpSet) {
	for {
		for agg, ok := p.take(); ok; agg, ok = p.take() {
			if err := l.pump(ctx, agg); err != nil {
				if ctx.Err() != nil {
					return // shutting down: the state holds what is left
				}
				l.log.Warn("delivery step failed, will retry", zap.String("adapter", l.cfg.Name), zap.Error(err))
				l.schedule(ctx, agg, l.now().Add(time.Second))
			}
		}
		select {
		case <-p.wake:
		case <-ctx.Done():
			return
		}
	}
}

// nakDelay spaces the redeliveries of an EVENTS message that could not be
// admitted: 1s, 2s, 4s ... up to a minute, so that a DLQ or bucket that is
// down for long is not asked every second.
func nakDelay(m jetstream.Msg) time.Duration {
	n := uint64(1)
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 0 {
		n = md.NumDelivered
	}
	return min(time.Second<<min(n-1, 6), time.Minute)
}

// admit records an EVENTS message in its aggregate's queue, durably, and
// acks it: from here on the queue, not the consumer, holds the event. It
// returns the aggregate to pump ("" when nothing was queued).
func (l *lane) admit(ctx context.Context, agg string, m jetstream.Msg) (string, error) {
	md, err := m.Metadata()
	if err != nil {
		return "", err
	}
	var ev leadstreamv1.Event
	// A message that cannot be admitted is acked only once its dead letter
	// is in DLQ: until then the consumer holds it, and it comes back.
	if err := proto.Unmarshal(m.Data(), &ev); err != nil || ev.Id == "" {
		if err := l.deadLetter(ctx, m.Subject(), md.Sequence.Stream, m.Headers(), m.Data(), "undecodable", fmt.Errorf("decoding event: %v", err), nil, 0); err != nil {
			return "", err
		}
		return "", m.Ack()
	}
	if agg == "" {
		agg = ev.AggregateId
	}
	if agg == "" {
		if err := l.deadLetter(ctx, m.Subject(), md.Sequence.Stream, m.Headers(), m.Data(), "no_aggregate", fmt.Errorf("event %s has no aggregate id to order on", ev.Id), nil, 0); err != nil {
			return "", err
		}
		return "", m.Ack()
	}
	key := stateKey(l.cfg.Name, agg)
	hashed := hashedKey(key, l.cfg.Name)
	e := &entry{ID: ev.Id, Seq: md.Sequence.Stream, Type: ev.Type, Requires: requires(&ev, l.subscribed), Provides: provides(&ev), Since: l.now()}
	st, err := l.st.update(ctx, key, func(st *aggState) bool {
		if st.index(e.ID) >= 0 || containsStr(st.Delivered, e.ID) {
			return false // a redelivered EVENTS message
		}
		if hashed {
			st.Aggregate = agg
		}
		st.Queue = append(st.Queue, e)
		return true
	})
	if reason, ok := permanent(err); ok {
		// No redelivery can cure it: dead-letter rather than loop.
		if err := l.deadLetter(ctx, m.Subject(), md.Sequence.Stream, m.Headers(), m.Data(), reason, err, nil, 0); err != nil {
			return "", err
		}
		return "", m.Ack()
	}
	if err != nil {
		return "", err
	}
	if !st.satisfied(e) {
		l.schedule(ctx, agg, e.Since.Add(l.maxPark))
	}
	return agg, m.Ack()
}

// permanent tells a failure no retry will cure from a transient one, and
// names it for a dead letter: a key NATS would refuse, or a message larger
// than the server takes.
func permanent(err error) (reason string, ok bool) {
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, natskey.ErrInvalidKey), errors.Is(err, jetstream.ErrInvalidKey):
		return "invalid_key", true
	case errors.Is(err, nats.ErrMaxPayload):
		return "too_large", true
	default:
		return "", false
	}
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// pump delivers the aggregate's deliverable events, in order, until none is
// left, one is waiting for a prerequisite, or one is being retried.
func (l *lane) pump(ctx context.Context, agg string) error {
	key := stateKey(l.cfg.Name, agg)
	for ctx.Err() == nil {
		st, _, err := l.st.load(ctx, key)
		if err != nil {
			return err
		}
		now := l.now()
		e, orphan := st.next(now, l.maxPark)
		if e == nil {
			return nil
		}
		attempt, first, log := 1, now, []string(nil)
		var pending *retry // a dead letter DLQ did not take yet
		if st.Retry != nil && st.Retry.ID == e.ID {
			if now.Before(st.Retry.Next) {
				return nil // its timer will come
			}
			attempt, first, log = st.Retry.Attempts+1, st.Retry.First, st.Retry.Log
			if st.Retry.DeadLetter != "" {
				pending = st.Retry
			}
		}
		raw, err := l.events.GetMsg(ctx, e.Seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) && l.mayLag(ctx, e) {
			// A direct get is answered by any replica, and one that is
			// catching up (a node just restarted) has not got the event yet.
			return fmt.Errorf("reading event %s: sequence %d not on the replica that answered yet", e.ID, e.Seq)
		}
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			if err := l.deadLetter(ctx, "", e.Seq, nil, nil, "event_missing", fmt.Errorf("event %s no longer in EVENTS (sequence %d)", e.ID, e.Seq), log, attempt-1); err != nil {
				return err // it stays queued, and is dead-lettered on a later pump
			}
			if _, err := l.st.update(ctx, key, func(st *aggState) bool { st.done(e.ID, false); return true }); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("reading event %s: %w", e.ID, err)
		}
		if pending != nil {
			if err := l.giveUp(ctx, agg, e, raw, pending.DeadLetter, errors.New(pending.Error), pending.Log, pending.Attempts, pending.First); err != nil {
				return err
			}
			continue
		}
		var ev leadstreamv1.Event
		if err := proto.Unmarshal(raw.Data, &ev); err != nil {
			return fmt.Errorf("decoding event %s: %w", e.ID, err)
		}

		dctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout.Duration)
		start := time.Now()
		d := &adapter.Delivery{Event: &ev, Orphan: orphan, Attempt: attempt}
		if orphan {
			d.Missing = missing(st, e)
		}
		derr := l.ad.Deliver(dctx, d)
		cancel()
		if derr != nil && ctx.Err() != nil {
			// Shutdown cut the attempt short: it is no answer of the LMS's,
			// and must not count towards giving up. The event stays where
			// it was and is delivered after the restart.
			return ctx.Err()
		}
		l.m.attempts.WithLabelValues(l.cfg.Name).Inc()
		outcome := "delivered"
		if derr != nil {
			outcome = adapter.Detail(derr)
		}
		log = appendLog(log, fmt.Sprintf("attempt %d at %s (%s): %s", attempt, start.UTC().Format(time.RFC3339Nano), time.Since(start).Round(time.Millisecond), outcome))

		switch {
		case derr == nil:
			rctx, cancel := recordCtx(ctx)
			_, err := l.st.update(rctx, key, func(st *aggState) bool { st.done(e.ID, true); return true })
			cancel()
			if err != nil {
				return err
			}
			label := "delivered"
			if orphan {
				label = "delivered_orphan"
			}
			l.m.deliveries.WithLabelValues(l.cfg.Name, label).Inc()
			if r := ev.GetReceivedAt(); r != nil {
				l.m.endToEnd.WithLabelValues(l.cfg.Name).Observe(time.Since(r.AsTime()).Seconds())
			}
			if ce := l.log.Check(zap.DebugLevel, "delivered"); ce != nil {
				ce.Write(zap.String("adapter", l.cfg.Name), zap.String("event_id", e.ID), zap.String("type", e.Type), zap.Bool("orphan", orphan), zap.Int("attempt", attempt))
			}
		case adapter.IsTerminal(derr) || (attempt >= l.cfg.MaxAttempts && now.Sub(first) >= l.cfg.MaxAge.Duration):
			reason := "terminal"
			if !adapter.IsTerminal(derr) {
				reason = "retries_exhausted"
			}
			if err := l.giveUp(ctx, agg, e, raw, reason, derr, log, attempt, first); err != nil {
				return err
			}
		default:
			delay := l.backoff(attempt)
			if after, ok := adapter.RetryAfter(derr); ok && after > delay {
				delay = after
			}
			next := now.Add(delay)
			rctx, cancel := recordCtx(ctx)
			_, err := l.st.update(rctx, key, func(st *aggState) bool {
				if st.index(e.ID) < 0 {
					return false
				}
				st.Retry = &retry{ID: e.ID, Attempts: attempt, First: first, Next: next, Log: log}
				return true
			})
			cancel()
			if err != nil {
				return err
			}
			l.m.deliveries.WithLabelValues(l.cfg.Name, "retry").Inc()
			l.log.Warn("delivery failed, will retry", zap.String("adapter", l.cfg.Name), zap.String("event_id", e.ID),
				zap.Int("attempt", attempt), zap.Duration("in", delay), zap.Error(derr))
			l.schedule(ctx, agg, next)
			return nil
		}
	}
	return ctx.Err()
}

// giveUp dead-letters e, which will not be delivered, and takes it off its
// aggregate's queue. When DLQ does not take the letter, e stays first in
// the queue marked for DLQ (its retry names the reason), so that a later
// pump dead-letters it without asking the LMS again; it is never dropped
// without its letter. Like every record of an LMS's answer, it is made
// even when shutdown has begun, within recordTimeout for each write.
func (l *lane) giveUp(ctx context.Context, agg string, e *entry, raw *jetstream.RawStreamMsg, reason string, cause error, log []string, attempts int, first time.Time) error {
	key := stateKey(l.cfg.Name, agg)
	rctx, cancel := recordCtx(ctx)
	dlErr := l.deadLetter(rctx, raw.Subject, e.Seq, raw.Header, raw.Data, reason, cause, log, attempts)
	cancel()
	rctx, cancel = recordCtx(ctx)
	defer cancel()
	if dlErr == nil {
		_, err := l.st.update(rctx, key, func(st *aggState) bool { st.done(e.ID, false); return true })
		return err
	}
	next := l.now().Add(l.backoff(attempts))
	if _, err := l.st.update(rctx, key, func(st *aggState) bool {
		if st.index(e.ID) < 0 {
			return false
		}
		st.Retry = &retry{ID: e.ID, Attempts: attempts, First: first, Next: next, Log: log, DeadLetter: reason, Error: errorText(cause)}
		return true
	}); err != nil {
		return errors.Join(dlErr, err)
	}
	l.log.Warn("dead-lettering failed, will retry", zap.String("adapter", l.cfg.Name), zap.String("event_id", e.ID),
		zap.String("reason", reason), zap.Time("next", next), zap.Error(dlErr))
	l.schedule(ctx, agg, next)
	return nil
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// mayLag reports whether a direct get that did not find e's EVENTS message
// may have asked a lagging replica: the sequence is still within the
// stream, as its leader reports it, and e was admitted less than
// lagBound ago. An event gone from the stream (aged out, purged) is not.
func (l *lane) mayLag(ctx context.Context, e *entry) bool {
	if l.now().Sub(e.Since) > lagBound {
		return false
	}
	info, err := l.events.Info(ctx)
	if err != nil {
		return true // cannot tell: try again later
	}
	return e.Seq >= info.State.FirstSeq && e.Seq <= info.State.LastSeq
}

// lagBound bounds how long a replica may lag behind: past it, an event not
// found is missing.
const lagBound = 5 * time.Minute

func appendLog(log []string, line string) []string {
	log = append(log, line)
	if len(log) > maxLog {
		log = log[len(log)-maxLog:]
	}
	return log
}

// backoff is exponential from BackoffInitial to BackoffMax, with ±20%
// jitter so that many retrying aggregates do not come back at once.
func (l *lane) backoff(attempt int) time.Duration {
	d := l.cfg.BackoffInitial.Duration << min(attempt-1, 30)
	if d <= 0 || d > l.cfg.BackoffMax.Duration {
		d = l.cfg.BackoffMax.Duration
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// schedule makes the aggregate be pumped again at due, durably: a timer
// message that the lane's timer consumer holds back until due.
func (l *lane) schedule(ctx context.Context, agg string, due time.Time) {
	data, _ := json.Marshal(timer{Aggregate: agg, Due: due})
	msg := &nats.Msg{Subject: l.timerSubject(), Data: data, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s|%d", natskey.ID(agg), due.UnixMilli()))
	if _, err := l.js.PublishMsg(ctx, msg); err != nil {
		// The periodic sweep will find the aggregate all the same.
		l.log.Warn("scheduling timer failed", zap.String("adapter", l.cfg.Name), zap.Error(err))
	}
}

// deadLetter writes a delivery that will not happen to dlq.deliver.<adapter>.
// It makes one attempt (and, for a letter too large for the server, one
// with less in it), within ctx, and returns an error when DLQ did not take
// the letter: the caller then keeps the event, so that it is dead-lettered
// again later. The letter's message id is its EVENTS sequence, so a retry
// after a lost acknowledgement is stored once.
func (l *lane) deadLetter(ctx context.Context, subject string, seq uint64, hdr nats.Header, body []byte, reason string, cause error, log []string, attempts int) error {
	errText := errorText(cause)
	letter := &dlq.Letter{Stage: dlq.StageDeliver, Name: l.cfg.Name, Reason: reason, Error: errText, Subject: subject, Sequence: seq,
		Attempts: attempts, Header: hdr, Body: body, Log: log}
	id := fmt.Sprintf("%s:%s:%d", dlq.StageDeliver, l.cfg.Name, seq)
	for {
		_, err := l.js.PublishMsg(ctx, letter.Msg(id))
		if err == nil {
			break
		}
		// An event close to the server's max_payload may not fit with the
		// attempt log; without the log it does (it fit in EVENTS), and the
		// letter still names the event's EVENTS sequence should it not.
		if errors.Is(err, nats.ErrMaxPayload) && letter.Log != nil {
			letter.Log = nil
			letter.Error = errText + " (attempt log left out: too large)"
			continue
		}
		if errors.Is(err, nats.ErrMaxPayload) && letter.Body != nil {
			letter.Body, letter.Header = nil, nil
			letter.Error = fmt.Sprintf("%s (event left out: too large; it is EVENTS sequence %d)", errText, seq)
			continue
		}
		return fmt.Errorf("dead-lettering EVENTS sequence %d (%s): %w", seq, reason, err)
	}
	l.m.deliveries.WithLabelValues(l.cfg.Name, "dead_lettered").Inc()
	l.m.deadLetters.WithLabelValues(l.cfg.Name, reason).Inc()
	l.log.Warn("dead-lettered", zap.String("adapter", l.cfg.Name), zap.Uint64("events_sequence", seq), zap.String("reason", reason), zap.Int("attempts", attempts))
	return nil
}

// sweep runs at start and then periodically: it pumps every aggregate that
// has something deliverable (a restart, or a timer that was lost), and
// refreshes the parked and retry gauges.
func (l *lane) sweep(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		l.sweepOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweepTimeout bounds one sweep's reading of the bucket; a sweep cut off
// leaves the gauges as they were, and the next one tries again.
const sweepTimeout = time.Minute

func (l *lane) sweepOnce(ctx context.Context) {
	// Its own ctx also ends the goroutine nats.go keeps per watcher until
	// the watcher's ctx is done.
	ctx, cancel := context.WithTimeout(ctx, sweepTimeout)
	defer cancel()
	w, err := l.st.kv.WatchFiltered(ctx, []string{l.cfg.Name + ".>"}, jetstream.IgnoreDeletes())
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("sweeping ordering state failed", zap.String("adapter", l.cfg.Name), zap.Error(err))
		}
		return
	}
	defer func() { _ = w.Stop() }()
	now := l.now()
	parked, retrying := 0, 0
	var oldest time.Duration
	for {
		var e jetstream.KeyValueEntry
		select {
		case u, ok := <-w.Updates():
			if !ok {
				return // cut off
			}
			e = u
		case <-ctx.Done():
			return
		}
		if e == nil {
			break // the current values are all in
		}
		var st aggState
		if json.Unmarshal(e.Value(), &st) != nil {
			continue
		}
		for _, q := range st.Queue {
			if !st.satisfied(q) {
				parked++
				oldest = max(oldest, now.Sub(q.Since))
			}
		}
		if st.Retry != nil {
			retrying++
		}
		if next, _ := st.next(now, l.maxPark); next != nil && (st.Retry == nil || !now.Before(st.Retry.Next)) {
			agg, ok := aggregateOf(e.Key(), l.cfg.Name)
			if !ok && st.Aggregate != "" {
				agg, ok = st.Aggregate, true
			}
			if ok {
				l.wake(agg)
			}
		}
	}
	l.m.parked.WithLabelValues(l.cfg.Name).Set(float64(parked))
	l.m.oldestParked.WithLabelValues(l.cfg.Name).Set(oldest.Seconds())
	l.m.retryBacklog.WithLabelValues(l.cfg.Name).Set(float64(retrying))
}
