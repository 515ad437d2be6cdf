package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/pcgroups"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/backoff"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/tracing"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/kvcas"
)

// lane delivers to one adapter: its share of the adapter's consumer group
// on EVENTS (group.go), its own workers, and timers kept in process and
// derived again from the ordering state by every sweep. An LMS that is slow
// or down only ever slows its own lane.
//
// Admitting an event (taking it into its aggregate's queue) and delivering
// are done by different workers: admission never waits behind an LMS, so
// an EVENTS message is acked well within ack_wait even while its aggregate
// is busy delivering. (Admitted behind deliveries, messages of a busy
// aggregate outlived ack_wait, came back, and a copy that arrived after
// its event had left the bounded list of delivered ids was delivered a
// second time.) An event its aggregate can deliver next is held in memory
// instead of written, for at most holdFor: the write that records its
// delivery admits it too, one write instead of two (cache.go).
//
// A lane delivers only the aggregates of the partitions it owns, and from
// a partition it took over from a member that is still running, only after
// handoverGrace: by then that member has finished and recorded what it
// was delivering. The compare-and-set on the ordering state stays the
// safety net should two replicas ever pump one aggregate.
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
	// member is this process's name in the adapter's consumer group.
	member     string
	partitions int
	ackWait    time.Duration
	own        *ownership
	timers     *localTimers
	// cache holds the ordering states the lane works on and the events
	// it holds (cache.go); holdFor is the longest an event is held.
	cache   *aggCache
	holdFor time.Duration
	// recovery wakes the aggregates backing off once the LMS takes a
	// delivery again (recovery.go).
	recovery *recovery
	// sweepNow asks the sweep for a round now (partitions were gained).
	sweepNow chan struct{}
	// busy counts the pumps running per partition, so that a partition
	// that moved away is released once none of them is left.
	busyMu sync.Mutex
	busy   map[int]int
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

// localTimers wake aggregates when something of theirs falls due (a retry,
// the end of a park). They live in the process: the ordering state holds
// every due time, and each sweep sets them again, so a process that takes
// a partition over, after a crash too, finds them.
type localTimers struct {
	mu     sync.Mutex
	t      map[string]*dueTimer
	fire   func(agg string)
	closed bool
}

type dueTimer struct {
	due time.Time
	t   *time.Timer
}

func newLocalTimers(fire func(string)) *localTimers {
	return &localTimers{t: map[string]*dueTimer{}, fire: fire}
}

// at wakes agg at due, unless it is to be woken earlier already.
func (lt *localTimers) at(agg string, due time.Time, now time.Time) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.closed {
		return
	}
	if cur, ok := lt.t[agg]; ok {
		if !cur.due.After(due) {
			return
		}
		cur.t.Stop()
	}
	dt := &dueTimer{due: due}
	dt.t = time.AfterFunc(due.Sub(now), func() {
		lt.mu.Lock()
		if lt.t[agg] == dt {
			delete(lt.t, agg)
		}
		closed := lt.closed
		lt.mu.Unlock()
		if !closed {
			lt.fire(agg)
		}
	})
	lt.t[agg] = dt
}

func (lt *localTimers) stop() {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.closed = true
	for _, dt := range lt.t {
		dt.t.Stop()
	}
	clear(lt.t)
}

// handoverSubject is where a member says it released partitions it lost
// to a member that joined: their new owner delivers them from then on,
// instead of after handoverGrace. Core NATS: a release not heard only
// costs the grace.
func handoverSubject(adapter string) string { return "dispatch.handover." + adapter }

// handover is a release on handoverSubject.
type handover struct {
	Revision   uint64 `json:"revision"`
	Member     string `json:"member"`
	Partitions []int  `json:"partitions"`
}

// wakeSubject is where anyone may ask the owner of an aggregate to pump it
// (core NATS, at most once: the sweep finds what such a nudge would have
// woken). `dlq replay` does, after it delivered an event others wait for.
func wakeSubject(adapter string) string { return "dispatch.wake." + adapter }

// holdFor is the longest an event is held for ackWait: well within
// ack_wait, and short enough that a member's consumer is seen acking
// between two of the other members' looks (reap), whatever its LMS does.
func holdFor(ackWait time.Duration) time.Duration {
	if d := min(ackWait/2, time.Second); d > 0 {
		return d
	}
	return time.Second
}

// handoverGrace is how long a partition taken over from a running member
// waits before its deliveries start when that member does not say it
// released it: that member's longest step after it learned it lost the
// partition, a delivery (adapter timeout) and its record (tried for up to
// recordPersist, then one more write), with a margin.
func (l *lane) handoverGrace() time.Duration {
	return l.cfg.Timeout.Duration + recordPersist + recordTimeout + 2*time.Second
}

// stopTimeout bounds the lane's shutdown: consuming stopped, deliveries in
// flight finished and recorded, workers back.
func (l *lane) stopTimeout() time.Duration {
	return l.cfg.Timeout.Duration + 3*recordTimeout
}

// consumerConfig is the template of the lane's consumer in the group (its
// name, filters and priority group are the group's).
func (l *lane) consumerConfig(maxAckPending int, ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Description:   "leadstream dispatcher for adapter " + l.cfg.Name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
	}
}

// run consumes its partitions of EVENTS until ctx ends, or until its
// consumer group can deliver nothing more (it returns that error).
// Whichever way it returns, it stops consuming, lets the deliveries in
// flight finish and be recorded, and then leaves the group, so that the
// members that take its partitions over deliver them at once without a
// second delivery; all within stopTimeout.
func (l *lane) run(ctx context.Context, workers, maxAckPending int) error {
	// The workers end with this ctx, also when run returns early.
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg      sync.WaitGroup
		cg      pcgroups.ConsumerGroupConsumeContext
		wakeSub *nats.Subscription
		hoSub   *nats.Subscription
	)
	l.timers = newLocalTimers(l.wake)
	l.recovery = newRecovery()
	l.cache = newAggCache()
	l.sweepNow = make(chan struct{}, 1)
	l.busy = map[int]int{}
	l.admitters = make([]chan admission, workers)
	l.pumps = make([]*pumpSet, workers)
	for i := range workers {
		l.admitters[i] = make(chan admission, 64)
		l.pumps[i] = newPumpSet()
	}
	log := l.log.With(zap.String("adapter", l.cfg.Name), zap.String("member", l.member))
	ms := &membership{js: l.js, adapter: l.cfg.Name, member: l.member, own: l.own, every: reapEvery, rejoin: l.ackWait + time.Second,
		onChange: l.partitionsChanged,
		logf: func(msg string, kv ...any) {
			log.Warn(msg, zap.Any("details", kv))
		}}
	missing := make(chan struct{}, 1)
	ms.onMissing = func() {
		select {
		case missing <- struct{}{}:
		default:
		}
	}
	defer func() {
		deadline := time.NewTimer(l.stopTimeout())
		defer deadline.Stop()
		if cg != nil {
			cg.Stop()
		}
		if wakeSub != nil {
			_ = wakeSub.Unsubscribe()
		}
		if hoSub != nil {
			_ = hoSub.Unsubscribe()
		}
		cancel()
		clean := waitTimeout(&wg, deadline.C)
		if !clean {
			log.Warn("lane workers still busy at shutdown; what they hold is in the ordering state", zap.Duration("within", l.stopTimeout()))
		}
		l.timers.stop()
		if err := ms.leave(ctx); err != nil {
			log.Warn("leaving the consumer group failed; the others take its partitions over once they find it unserved", zap.Error(err))
		} else {
			log.Info("left the consumer group", zap.Bool("deliveries_recorded", clean))
		}
	}()
	for i := range workers {
		wg.Go(func() { l.admitLoop(ctx, l.admitters[i]) })
		wg.Go(func() { l.pumpLoop(ctx, l.pumps[i]) })
	}
	wg.Go(func() { l.flushHeld(ctx) })
	var err error
	wakeSub, err = l.js.Conn().Subscribe(wakeSubject(l.cfg.Name), func(m *nats.Msg) {
		// Whoever asks has written the state (`dlq replay`).
		if am := l.cache.peek(string(m.Data)); am != nil {
			am.stale.Store(true)
		}
		l.wake(string(m.Data))
	})
	if err != nil {
		return fmt.Errorf("dispatcher %s: %w", l.cfg.Name, err)
	}
	hoSub, err = l.js.Conn().Subscribe(handoverSubject(l.cfg.Name), func(m *nats.Msg) {
		var h handover
		if json.Unmarshal(m.Data, &h) != nil || h.Member == l.member {
			return
		}
		if ps := l.own.release(h.Revision, h.Member, h.Partitions); len(ps) > 0 {
			log.Info("partitions released by their previous member", zap.String("from", h.Member), zap.Ints("partitions", ps))
			l.sweepSoon()
		}
	})
	if err != nil {
		return fmt.Errorf("dispatcher %s: %w", l.cfg.Name, err)
	}
	msDone := make(chan error, 1)
	wg.Go(func() { msDone <- ms.run(ctx) })
	consume := func() (pcgroups.ConsumerGroupConsumeContext, error) {
		return pcgroups.ElasticConsume(ctx, l.js, streams.EVENTS, groupName(l.cfg.Name), l.member, func(m jetstream.Msg) {
			// ce-subject is percent-encoded (CloudEvents NATS binding);
			// decoded it is the aggregate id, as replay and the sweep name
			// it. One that does not decode is left to admit, which reads
			// the event's own.
			agg, _ := envelope.HeaderValue(m.Headers(), envelope.HdrCESubject)
			select {
			case l.admitters[l.worker(agg)] <- admission{agg: agg, m: m}:
			case <-ctx.Done():
			}
		}, l.consumerConfig(maxAckPending, l.ackWait))
	}
	if cg, err = consume(); err != nil {
		return stopped(ctx, fmt.Errorf("dispatcher %s: joining consumer group %s: %w", l.cfg.Name, groupName(l.cfg.Name), err))
	}
	// After a restart, pick up whatever was admitted but not yet delivered.
	wg.Go(func() { l.sweep(ctx) })
	log.Info("dispatching", zap.Strings("subjects", filterSubjects(l.cfg)), zap.Int("partitions", l.partitions))
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-msDone:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dispatcher %s: %w", l.cfg.Name, err)
		case err := <-cg.Done():
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				err = errors.New("the consumer group was deleted")
			}
			cg = nil
			return fmt.Errorf("dispatcher %s: consuming group %s stopped: %w", l.cfg.Name, groupName(l.cfg.Name), err)
		case <-missing:
			// pcgroups creates a member's consumer again only on a change
			// of the group; one deleted under it (or never created) is
			// noticed here, and consuming starts over.
			l.m.consumerErrors.WithLabelValues(l.durable()).Inc()
			log.Warn("this member's consumer is missing from the group's stream; joining again")
			cg.Stop()
			if cg, err = consume(); err != nil {
				return stopped(ctx, fmt.Errorf("dispatcher %s: joining consumer group %s again: %w", l.cfg.Name, groupName(l.cfg.Name), err))
			}
		}
	}
}

// durable names the lane's consumption in metrics and logs.
func (l *lane) durable() string { return "dispatch-" + l.cfg.Name }

// partitionsChanged is told what the group's change of revision rev gave
// and took: gained partitions are swept (at once, or when they are
// released or their grace ends); lost ones are skipped by the pumps from
// their next event on, and released once no pump of theirs is left.
func (l *lane) partitionsChanged(rev uint64, gained map[int]time.Time, lost []int) {
	l.log.Info("partitions changed", zap.String("adapter", l.cfg.Name), zap.String("member", l.member),
		zap.Int("gained", len(gained)), zap.Int("lost", len(lost)), zap.Int("owned", l.own.owned()))
	l.m.partitions.WithLabelValues(l.cfg.Name).Set(float64(l.own.owned()))
	// What this process knew of an aggregate may be older than another
	// member's writes now.
	l.cache.staleAll()
	if len(lost) > 0 {
		go l.releaseWhenIdle(rev, lost)
	}
	now := l.now()
	var later time.Time
	for _, at := range gained {
		if at.After(later) {
			later = at
		}
	}
	if len(gained) == 0 {
		return
	}
	if !later.After(now) {
		l.sweepSoon()
		return
	}
	l.sweepSoon() // those not in grace
	time.AfterFunc(later.Sub(now), l.sweepSoon)
}

// releaseWhenIdle says on handoverSubject that this member released the
// partitions it lost at revision rev, once no pump of theirs is running
// (the last delivery in flight recorded). Past handoverGrace it says
// nothing: the new owner starts then anyway.
func (l *lane) releaseWhenIdle(rev uint64, lost []int) {
	deadline := time.Now().Add(l.handoverGrace())
	for !l.idle(lost) {
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	data, _ := json.Marshal(handover{Revision: rev, Member: l.member, Partitions: lost})
	if err := l.js.Conn().Publish(handoverSubject(l.cfg.Name), data); err != nil {
		l.log.Warn("releasing partitions failed; their new owner waits out the grace", zap.String("adapter", l.cfg.Name), zap.Error(err))
	}
}

// idle reports whether no pump of partitions ps is running.
func (l *lane) idle(ps []int) bool {
	l.busyMu.Lock()
	defer l.busyMu.Unlock()
	for _, p := range ps {
		if l.busy[p] > 0 {
			return false
		}
	}
	return true
}

func (l *lane) sweepSoon() {
	select {
	case l.sweepNow <- struct{}{}:
	default:
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
	n := 1
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 0 {
		n = int(min(md.NumDelivered, 64))
	}
	return backoff.Exponential(time.Second, time.Minute, n)
}

// admit takes an EVENTS message into its aggregate's queue. An event the
// aggregate can deliver next is held (cache.go): its message is acked by
// the write that records its delivery, or by one made within holdFor.
// Any other event is written to the queue, durably, and its message acked
// at once: from there on the queue, not the consumer, holds it. admit
// returns the aggregate to pump ("" when nothing was queued).
func (l *lane) admit(ctx context.Context, agg string, m jetstream.Msg) (string, error) {
	md, err := eventsMetadata(m)
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
	if err := natskey.CheckKey(key); err != nil {
		// No redelivery can cure it: dead-letter rather than loop.
		if err := l.deadLetter(ctx, m.Subject(), md.Sequence.Stream, m.Headers(), m.Data(), "invalid_key", fmt.Errorf("writing ordering state: %w", err), nil, 0); err != nil {
			return "", err
		}
		return "", m.Ack()
	}
	e := l.entryOf(&ev, md.Sequence.Stream)

	am := l.cache.lock(agg, key)
	defer am.mu.Unlock()
	if err := l.current(ctx, am); err != nil {
		return "", err
	}
	if am.st.has(e.ID) {
		return agg, m.Ack() // a redelivered EVENTS message
	}
	if am.st.Overflow.covers(e.Seq) {
		// It waits in EVENTS, read back when the queue drains: no write.
		am.unread = max(am.unread, e.Seq)
		return agg, m.Ack()
	}
	if am.overflowsAt(e.Seq) {
		// The queue is full: this event and the aggregate's later ones
		// wait in EVENTS from here on (overflow.go).
		err := l.persist(ctx, am, func(st *aggState) bool {
			if st.Overflow != nil {
				return false
			}
			st.Overflow = &overflow{From: e.Seq, Next: e.Seq}
			return true
		})
		if err != nil {
			return "", err
		}
		if !am.st.Overflow.covers(e.Seq) {
			return "", errors.New("admitting event: overflow not written")
		}
		am.unread = max(am.unread, e.Seq)
		return agg, m.Ack()
	}
	if h := am.heldFor(e.ID); h != nil {
		// A copy of a message held here: the consumer was made again (the
		// group changed) and the first copy's ack would be lost.
		h.m = m
		return agg, nil
	}
	h := &held{e: e, m: m, ev: &ev, at: time.Now()}
	am.hold(h)
	if l.mayHold(am, agg, e) {
		return agg, nil
	}
	err = l.persist(ctx, am, nil)
	if am.heldFor(e.ID) == h {
		// Not written: the caller naks the message, and it comes back.
		am.release([]*held{h})
		if err == nil {
			err = errors.New("admitting event: not written")
		}
	}
	if err != nil {
		return "", err
	}
	if !am.st.satisfied(e) {
		l.schedule(ctx, agg, e.Since.Add(l.maxPark))
	}
	return agg, nil
}

// mayHold reports whether e, just held for agg, may stay held rather than
// be written at once: this member delivers agg now, nothing holds agg back
// (a retry), e's prerequisites are established, and not too many are held.
func (l *lane) mayHold(am *aggMem, agg string, e *entry) bool {
	if len(am.held) > maxHeld || am.st.Retry != nil || !am.st.satisfied(e) {
		return false
	}
	ok, _ := l.own.deliverable(agg)
	return ok
}

// current makes am's state fresh: read again when it is not known, was
// marked stale, or is older than stateFresh. Held events the state read
// already holds (a copy of their message was admitted elsewhere) are no
// longer held, and their messages are acked.
func (l *lane) current(ctx context.Context, am *aggMem) error {
	now := time.Now()
	if am.fresh(now) {
		return nil
	}
	am.stale.Store(false) // before the read: a mark made during it stays
	st, rev, err := l.st.load(ctx, am.key)
	if err != nil {
		return err
	}
	am.set(st, rev, now)
	l.releaseWritten(am)
	return nil
}

// releaseWritten stops holding the events am's state holds, and acks
// their messages.
func (l *lane) releaseWritten(am *aggMem) {
	var written []*held
	for _, h := range am.held {
		if am.st.has(h.e.ID) {
			written = append(written, h)
		}
	}
	if len(written) > 0 {
		am.release(written)
		for _, h := range written {
			_ = h.m.Ack()
		}
	}
}

// write stores agg's state with the held events hs added to its queue
// (those it does not have) and f applied (f reports whether it changed
// anything; nil changes nothing), by compare-and-set on the revision am
// knows; then it acks hs's messages. When another writer got there first,
// it reads the state again and starts over, a bounded number of times
// (kvcas.Attempts): past that it returns an error wrapping
// kvcas.ErrContention, which the caller retries later. am.mu is held.
func (l *lane) write(ctx context.Context, am *aggMem, hs []*held, f func(*aggState) bool) error {
	hashed := hashedKey(am.key, l.cfg.Name)
	for attempt := range kvcas.Attempts {
		if attempt > 0 {
			if err := kvcas.Backoff(ctx, attempt); err != nil {
				return fmt.Errorf("writing ordering state %s: %w", am.key, err)
			}
		}
		if am.st == nil || attempt > 0 {
			st, rev, err := l.st.load(ctx, am.key)
			if err != nil {
				return err
			}
			am.set(st, rev, time.Now())
		}
		next := am.st.clone()
		changed := false
		for _, h := range hs {
			if !next.has(h.e.ID) {
				next.Queue = append(next.Queue, h.e)
				next.MaxSeq = max(next.MaxSeq, h.e.Seq)
				changed = true
				if hashed {
					next.Aggregate = am.agg
				}
			}
		}
		if f != nil && f(next) {
			changed = true
		}
		if changed {
			rev, err := l.st.put(ctx, am.key, next, am.rev)
			if kvcas.Conflict(err) {
				continue
			}
			if err != nil {
				return err
			}
			am.set(next, rev, time.Now())
		}
		am.release(hs)
		for _, h := range hs {
			_ = h.m.Ack()
		}
		return nil
	}
	return fmt.Errorf("writing ordering state %s: %d attempts lost to other writers: %w", am.key, kvcas.Attempts, kvcas.ErrContention)
}

// persist writes am's state with every held event and f applied (see
// write). When the bucket refuses that for good (a state grown too large
// for the server), it admits the held events one by one, in their order,
// dead-letters those it cannot, as admission always did, and then applies
// f alone. am.mu is held.
func (l *lane) persist(ctx context.Context, am *aggMem, f func(*aggState) bool) error {
	err := l.write(ctx, am, slices.Clone(am.held), f)
	if _, ok := permanent(err); !ok || len(am.held) == 0 {
		return err
	}
	for _, h := range slices.Clone(am.held) {
		werr := l.write(ctx, am, []*held{h}, nil)
		if reason, ok := permanent(werr); ok {
			if err := l.deadLetter(ctx, h.m.Subject(), h.e.Seq, h.m.Headers(), h.m.Data(), reason, werr, nil, 0); err != nil {
				return err
			}
			am.release([]*held{h})
			_ = h.m.Ack()
			continue
		}
		if werr != nil {
			return werr
		}
	}
	if f == nil {
		return nil
	}
	return l.write(ctx, am, nil, f)
}

// record applies f to agg's state and writes it, with the events held for
// agg (see persist).
func (l *lane) record(ctx context.Context, agg string, f func(*aggState) bool) error {
	am := l.cache.lock(agg, stateKey(l.cfg.Name, agg))
	defer am.mu.Unlock()
	return l.persist(ctx, am, f)
}

// flushHeld runs while the lane does: every holdFor/4 it writes the events
// held longer than holdFor, and those of aggregates this member does not
// deliver now (the partitions moved), so that their messages are acked
// well within ack_wait and a busy or slow aggregate never looks like a
// dead member's; and it drops from the cache what it no longer needs.
func (l *lane) flushHeld(ctx context.Context) {
	t := time.NewTicker(l.holdFor / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, am := range l.cache.holding(time.Time{}) {
			mine, _ := l.own.deliverable(am.agg)
			if since := am.heldSince.Load(); since == 0 || (mine && now.Sub(time.Unix(0, since)) < l.holdFor) {
				continue
			}
			am.mu.Lock()
			if !am.evicted && len(am.held) > 0 {
				rctx, cancel := recordCtx(ctx)
				if err := l.persist(rctx, am, nil); err != nil && ctx.Err() == nil {
					l.log.Warn("writing held events failed, will retry", zap.String("adapter", l.cfg.Name), zap.Error(err))
				}
				cancel()
			}
			am.mu.Unlock()
		}
		l.cache.evict(now)
	}
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

// pump delivers the aggregate's deliverable events, in order, until none is
// left, one is waiting for a prerequisite, or one is being retried.
func (l *lane) pump(ctx context.Context, agg string) error {
	// Counted before ownership is checked: a partition is released only
	// when every pump that might have seen it owned is done.
	p := partitionOf(agg, l.partitions)
	l.busyMu.Lock()
	l.busy[p]++
	l.busyMu.Unlock()
	defer func() {
		l.busyMu.Lock()
		l.busy[p]--
		l.busyMu.Unlock()
	}()
	key := stateKey(l.cfg.Name, agg)
	for ctx.Err() == nil {
		if ok, from := l.own.deliverable(agg); !ok {
			if !from.IsZero() {
				l.schedule(ctx, agg, from) // taken over: after its grace
			}
			return nil // another member's
		}
		am := l.cache.lock(agg, key)
		if err := l.current(ctx, am); err != nil {
			am.mu.Unlock()
			return err
		}
		if _, err := l.refill(ctx, am); err != nil {
			am.mu.Unlock()
			return err
		}
		st := am.view()
		now := l.now()
		e, orphan := st.next(now, l.maxPark)
		if e == nil {
			if o := am.st.Overflow; o != nil && am.unread >= o.Next {
				// Admitted, and not on the replica that answered yet.
				l.schedule(ctx, agg, now.Add(overflowRetry))
			}
			am.mu.Unlock()
			return nil
		}
		attempt, first, log := 1, now, []string(nil)
		var pending *retry // a dead letter DLQ did not take yet
		if st.Retry != nil && st.Retry.ID == e.ID {
			if now.Before(st.Retry.Next) && !l.recovery.since(st.Retry.At) {
				am.mu.Unlock()
				return nil // its timer will come
			}
			attempt, first, log = st.Retry.Attempts+1, st.Retry.First, st.Retry.Log
			if st.Retry.DeadLetter != "" {
				pending = st.Retry
			}
		}
		var lacks []string
		if orphan {
			lacks = missing(st, e)
		}
		// A held event's body and headers are at hand; the others are read
		// back from EVENTS.
		var (
			ev     *leadstreamv1.Event
			header nats.Header
			copyOf jetstream.Msg // the held event's group stream message
		)
		if h := am.heldFor(e.ID); h != nil && pending == nil {
			ev, header, copyOf = h.ev, h.m.Headers(), h.m
		}
		am.mu.Unlock()

		var raw *jetstream.RawStreamMsg
		if ev == nil {
			var err error
			raw, err = l.events.GetMsg(ctx, e.Seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) && l.mayLag(ctx, e) {
				// A direct get is answered by any replica, and one that is
				// catching up (a node just restarted) has not got the event yet.
				return fmt.Errorf("reading event %s: sequence %d not on the replica that answered yet", e.ID, e.Seq)
			}
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				if err := l.deadLetter(ctx, "", e.Seq, nil, nil, "event_missing", fmt.Errorf("event %s no longer in EVENTS (sequence %d)", e.ID, e.Seq), log, attempt-1); err != nil {
					return err // it stays queued, and is dead-lettered on a later pump
				}
				if err := l.record(ctx, agg, func(st *aggState) bool { st.done(e.ID, false); return true }); err != nil {
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
			ev = &leadstreamv1.Event{}
			if err := proto.Unmarshal(raw.Data, ev); err != nil {
				return fmt.Errorf("decoding event %s: %w", e.ID, err)
			}
			header = raw.Header
		}

		// A delivery that has started is finished, also when shutdown has
		// begun: cut short, the LMS may have it all the same, and the
		// member that takes the partition over would deliver it again.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.Timeout.Duration)
		// The webhook's trace, from the EVENTS message: the first attempt is
		// part of it, a retry is linked to it.
		dctx, span := tracing.Start(dctx, "deliver "+l.cfg.Name, header, attempt > 1, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attribute.String("leadstream.adapter", l.cfg.Name), attribute.String("leadstream.event_id", e.ID),
				attribute.String("leadstream.type", e.Type), attribute.Int("leadstream.attempt", attempt), attribute.Bool("leadstream.orphan", orphan),
				attribute.Int64("messaging.nats.stream_sequence", int64(e.Seq))))
		start := time.Now()
		d := &adapter.Delivery{Event: ev, Orphan: orphan, Attempt: attempt, Missing: lacks}
		derr := l.ad.Deliver(dctx, d)
		if derr != nil {
			span.SetStatus(codes.Error, adapter.Detail(derr))
		}
		span.End()
		cancel()
		if derr != nil && ctx.Err() != nil {
			// A failure during shutdown does not count towards giving up:
			// the event stays where it was and the next owner tries again.
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
			if err := l.recordDelivered(ctx, agg, e.ID); err != nil {
				return err
			}
			if wake := l.recovery.delivered(agg, l.now()); len(wake) > 0 {
				l.log.Info("LMS takes deliveries again: retrying the aggregates backing off now", zap.String("adapter", l.cfg.Name), zap.Int("aggregates", len(wake)))
				for _, a := range wake {
					l.wake(a)
				}
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
			if raw == nil {
				raw = rawOf(e, copyOf)
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
			err := l.record(rctx, agg, func(st *aggState) bool {
				if st.index(e.ID) < 0 {
					return false
				}
				st.Retry = &retry{ID: e.ID, Attempts: attempt, First: first, At: now, Next: next, Log: log}
				return true
			})
			cancel()
			if err != nil {
				return err
			}
			l.recovery.failed(agg)
			l.m.deliveries.WithLabelValues(l.cfg.Name, "retry").Inc()
			l.log.Warn("delivery failed, will retry", zap.String("adapter", l.cfg.Name), zap.String("event_id", e.ID),
				zap.Int("attempt", attempt), zap.Duration("in", delay), zap.Error(derr))
			l.schedule(ctx, agg, next)
			return nil
		}
	}
	return ctx.Err()
}

// recordDelivered records that the LMS took event id. A record that fails
// means a second delivery later, so it is tried again while the process
// runs, for up to recordPersist: long enough for the bucket's stream to
// elect a new leader when a node is lost. Once shutdown has begun, it gets
// one attempt of recordTimeout.
func (l *lane) recordDelivered(ctx context.Context, agg, id string) error {
	deadline := time.Now().Add(recordPersist)
	for {
		rctx, cancel := recordCtx(ctx)
		err := l.record(rctx, agg, func(st *aggState) bool { st.done(id, true); return true })
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		l.log.Warn("recording a delivery failed, will retry", zap.String("adapter", l.cfg.Name), zap.String("event_id", id), zap.Error(err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// recordPersist bounds the attempts to record a delivery.
const recordPersist = 30 * time.Second

// giveUp dead-letters e, which will not be delivered, and takes it off its
// aggregate's queue. When DLQ does not take the letter, e stays first in
// the queue marked for DLQ (its retry names the reason), so that a later
// pump dead-letters it without asking the LMS again; it is never dropped
// without its letter. Like every record of an LMS's answer, it is made
// even when shutdown has begun, within recordTimeout for each write.
func (l *lane) giveUp(ctx context.Context, agg string, e *entry, raw *jetstream.RawStreamMsg, reason string, cause error, log []string, attempts int, first time.Time) error {
	rctx, cancel := recordCtx(ctx)
	dlErr := l.deadLetter(rctx, raw.Subject, e.Seq, raw.Header, raw.Data, reason, cause, log, attempts)
	cancel()
	rctx, cancel = recordCtx(ctx)
	defer cancel()
	if dlErr == nil {
		l.recovery.forget(agg)
		return l.record(rctx, agg, func(st *aggState) bool { st.done(e.ID, false); return true })
	}
	next := l.now().Add(l.backoff(attempts))
	if err := l.record(rctx, agg, func(st *aggState) bool {
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

// rawOf is e's EVENTS message, for a dead letter, made from its copy m in
// the adapter's group stream rather than read back (which would wait on
// JetStream): the same body and headers (plus those the sourcing added,
// which a letter does not keep), and m's subject without the partition
// the group put in front.
func rawOf(e *entry, m jetstream.Msg) *jetstream.RawStreamMsg {
	_, subject, _ := strings.Cut(m.Subject(), ".")
	return &jetstream.RawStreamMsg{Subject: subject, Sequence: e.Seq, Header: m.Headers(), Data: m.Data()}
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
	return backoff.Jitter(backoff.Exponential(l.cfg.BackoffInitial.Duration, l.cfg.BackoffMax.Duration, attempt), 0.2)
}

// schedule makes the aggregate be pumped again at due (in this process;
// the state holds why, and the sweep sets the timer again elsewhere).
func (l *lane) schedule(_ context.Context, agg string, due time.Time) {
	l.timers.at(agg, due, l.now())
}

// deadLetter writes a delivery that will not happen to dlq.deliver.<adapter>
// (dlq.Write: one attempt within ctx, and with less in the letter should it
// be too large for the server; an event close to max_payload may not fit
// with its attempt log) and returns an error when DLQ did not take the
// letter: the caller then keeps the event, so that it is dead-lettered
// again later.
func (l *lane) deadLetter(ctx context.Context, subject string, seq uint64, hdr nats.Header, body []byte, reason string, cause error, log []string, attempts int) error {
	letter := &dlq.Letter{Stage: dlq.StageDeliver, Name: l.cfg.Name, Reason: reason, Error: errorText(cause), Subject: subject, Sequence: seq,
		Attempts: attempts, Header: hdr, Body: body, Log: log}
	if err := dlq.Write(ctx, l.js, letter); err != nil {
		return err
	}
	l.m.deliveries.WithLabelValues(l.cfg.Name, "dead_lettered").Inc()
	l.m.deadLetters.WithLabelValues(l.cfg.Name, reason).Inc()
	l.log.Warn("dead-lettered", zap.String("adapter", l.cfg.Name), zap.Uint64("events_sequence", seq), zap.String("reason", reason), zap.Int("attempts", attempts))
	return nil
}

// sweep runs at start, periodically, and when partitions were gained: it
// pumps every aggregate of this process's partitions that has something
// deliverable, sets the timers of those waiting (a retry, a park), and
// refreshes the parked and retry gauges (of this process's partitions).
//
// A sweep reads every aggregate's state in the bucket, so its cost grows
// with the aggregates the adapter has seen: the periodic round waits at
// least sweepEvery, and at least sweepShare times as long as the last
// round took, which keeps it to a few percent of the process's time with
// millions of states. Timers and wakes, not the sweep, deliver what is due.
func (l *lane) sweep(ctx context.Context) {
	for {
		start := time.Now()
		l.sweepOnce(ctx)
		wait := max(sweepEvery, sweepShare*time.Since(start))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-l.sweepNow:
			t.Stop()
		}
	}
}

// sweepEvery is the shortest wait between periodic sweeps, and sweepShare
// how many times the last sweep's duration the wait is at least.
const (
	sweepEvery = 10 * time.Second
	sweepShare = 20
)

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
		agg, ok := aggregateOf(e.Key(), l.cfg.Name)
		if !ok && st.Aggregate != "" {
			agg, ok = st.Aggregate, true
		}
		if !ok {
			continue
		}
		if mine, _ := l.own.deliverable(agg); !mine {
			continue
		}
		if am := l.cache.peek(agg); am != nil && am.mu.TryLock() {
			if am.rev < e.Revision() {
				am.stale.Store(true) // written by someone else
			}
			am.mu.Unlock()
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
		if due, ok := st.due(now, l.maxPark); ok {
			if due.After(now) {
				l.schedule(ctx, agg, due)
			} else {
				l.wake(agg)
			}
		}
	}
	l.m.parked.WithLabelValues(l.cfg.Name).Set(float64(parked))
	l.m.oldestParked.WithLabelValues(l.cfg.Name).Set(oldest.Seconds())
	l.m.retryBacklog.WithLabelValues(l.cfg.Name).Set(float64(retrying))
}

// hdrStreamSource is the header nats-server adds to a sourced message.
const hdrStreamSource = "Nats-Stream-Source"

// eventsMetadata is the delivery metadata of a message of an adapter's
// group stream, with the stream sequence being the event's in EVENTS (the
// group stream's own is gone once acked): nats-server names it in the
// Nats-Stream-Source header of what it sources, "EVENTS <seq> ...".
func eventsMetadata(m jetstream.Msg) (*jetstream.MsgMetadata, error) {
	md, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	src := m.Headers().Get(hdrStreamSource)
	fields := strings.Fields(src)
	if len(fields) < 2 || fields[0] != streams.EVENTS {
		return nil, fmt.Errorf("message %d of %s is not sourced from EVENTS (%s: %q)", md.Sequence.Stream, md.Stream, hdrStreamSource, src)
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("message %d of %s: EVENTS sequence in %q: %w", md.Sequence.Stream, md.Stream, src, err)
	}
	out := *md
	out.Sequence.Stream = seq
	return &out, nil
}
