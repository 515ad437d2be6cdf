// Package jsbatch makes messages durable in a JetStream stream with group
// commit: concurrent callers' messages leave together, as one atomic batch
// or as pipelined individual publishes, whichever the publisher has
// measured to be cheaper for that many messages, and each caller is
// answered once its own message is acknowledged.
package jsbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// ErrUnavailable means a message is not known to be durable: JetStream did
// not acknowledge it in time, or the publisher is closed. The caller must
// retry.
var ErrUnavailable = errors.New("jetstream unavailable")

// ErrTooLarge means a message can never be published: with its headers it
// exceeds the NATS server's max_payload. Retrying cannot help.
var ErrTooLarge = errors.New("message over the server's max_payload")

// BatchHeaderBytes is what an atomic batch adds to a message (Nats-Batch-Id,
// -Sequence, -Commit), with room to spare: a message must fit max_payload
// with it.
const BatchHeaderBytes = 128

// Mode is how a commit is made.
type Mode int

const (
	// Adaptive picks, for each commit, the mode its measurements say is
	// cheaper for that many messages.
	Adaptive Mode = iota
	// Atomic commits every group of two or more as one atomic batch.
	Atomic
	// Individual publishes every message on its own, pipelined.
	Individual
)

func (m Mode) String() string {
	switch m {
	case Atomic:
		return "atomic"
	case Individual:
		return "individual"
	default:
		return "adaptive"
	}
}

// Config configures a Publisher.
type Config struct {
	// Timeout bounds the wait for JetStream's acknowledgement. Default 5s.
	Timeout time.Duration
	// MaxBatch is the most messages committed together. Default 1000, the
	// server's own limit for an atomic batch.
	MaxBatch int
	// MaxBatchBytes is the most bytes committed together (a first message
	// always goes). Default 16 MiB.
	MaxBatchBytes int
	// MinAtomic is the smallest group Adaptive commits as an atomic batch,
	// whatever the measured costs say. Default 8: on a single-replica
	// file stream the server stages an atomic batch in a store of its own
	// (directories, metadata files and the staged messages, each synced,
	// then removed): about as many synced file operations as eight
	// individual publishes, whichever is faster on an idle machine, and
	// disk and CPU the rest of a busy one then lacks.
	MinAtomic int
	// MaxCommits is how many commits may be in flight at once. Default 1:
	// a stream applies commits one after the other, so a second commit in
	// flight only splits what would have gone together.
	MaxCommits int
	// Queue is how many messages may wait for a commit. Default 4096.
	Queue int
	// Mode forces a commit mode; the default is Adaptive.
	Mode Mode
	// Observe, when set, is told about every commit.
	Observe func(Commit)
}

// Commit describes one commit, for metrics and the bench.
type Commit struct {
	// Size is how many messages it held.
	Size int
	// Atomic is set for an atomic batch, clear for individual publishes.
	Atomic bool
	// Took is from its first publish to its last acknowledgement.
	Took time.Duration
	// Threshold is the smallest group the publisher now commits as an
	// atomic batch (0: none up to MaxBatch).
	Threshold int
}

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 1000
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 16 << 20
	}
	if c.MaxCommits <= 0 {
		c.MaxCommits = 1
	}
	if c.MinAtomic <= 0 {
		c.MinAtomic = 8
	}
	if c.Queue <= 0 {
		c.Queue = 4096
	}
}

// Published is JetStream's answer for one message.
type Published struct {
	// Sequence is the message's stream sequence (for a duplicate, the
	// sequence of the message it duplicates); 0 when an atomic batch
	// stored it (the batch acknowledgement names only its last).
	Sequence uint64
	// Duplicate is set when JetStream already held a message with the same
	// Nats-Msg-Id (within the stream's duplicate window).
	Duplicate bool
}

// Publisher makes messages durable in one stream. Every message it is
// given must go to the same stream: an atomic batch cannot span streams.
//
// The publisher never waits to fill a batch: the first message goes at
// once, and whatever arrives while a commit is in flight goes together in
// the next one.
type Publisher struct {
	js    jetstream.JetStream
	cfg   Config
	in    chan *pending
	slots chan struct{}
	quit  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	mu    sync.Mutex // guards model
	model *costModel
}

type pending struct {
	msg  *nats.Msg
	size int
	done chan result
}

type result struct {
	pub Published
	err error
}

// New starts a publisher into js. Close stops it.
func New(js jetstream.JetStream, cfg Config) *Publisher {
	cfg.setDefaults()
	p := &Publisher{
		js:    js,
		cfg:   cfg,
		in:    make(chan *pending, cfg.Queue),
		slots: make(chan struct{}, cfg.MaxCommits),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
		model: newCostModel(time.Now()),
	}
	go p.run()
	return p
}

// Publish stores msg and returns once JetStream has acknowledged it. It
// returns an error wrapping ErrUnavailable when that is not known to have
// happened, or ErrTooLarge when msg can never fit the server's max_payload.
func (p *Publisher) Publish(ctx context.Context, msg *nats.Msg) (Published, error) {
	// A message the server would refuse must not join a batch: nats.go
	// would fail the whole batch, and every other caller in it with it.
	size := PayloadSize(msg)
	if limit := p.js.Conn().MaxPayload(); int64(size+BatchHeaderBytes) > limit {
		return Published{}, fmt.Errorf("%w: %d bytes with batch headers, max_payload %d", ErrTooLarge, size+BatchHeaderBytes, limit)
	}
	errClosed := fmt.Errorf("%w: publisher closed", ErrUnavailable)
	// select picks at random among ready cases: check quit first, so a
	// closed publisher never takes a message it will not commit.
	select {
	case <-p.quit:
		return Published{}, errClosed
	default:
	}
	pd := &pending{msg: msg, size: size, done: make(chan result, 1)}
	select {
	case p.in <- pd:
	case <-p.quit:
		return Published{}, errClosed
	case <-ctx.Done():
		return Published{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
	select {
	case r := <-pd.done:
		return r.pub, r.err
	case <-p.done:
		// The run loop has ended; a message queued after its last drain
		// will never be committed.
		select {
		case r := <-pd.done:
			return r.pub, r.err
		default:
			return Published{}, errClosed
		}
	case <-ctx.Done():
		return Published{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	}
}

// Close stops taking messages, waits for the commits in flight and answers
// the callers still queued with ErrUnavailable.
func (p *Publisher) Close() {
	p.once.Do(func() { close(p.quit) })
	<-p.done
}

func (p *Publisher) run() {
	defer close(p.done)
	var carry *pending // the message that did not fit the last batch's bytes
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-p.in:
			case <-p.quit:
				p.wg.Wait()
				p.failQueued()
				return
			}
		}
		// Take a commit slot first: while every slot is busy, arrivals queue
		// up and then leave together.
		p.slots <- struct{}{}
		batch, bytes := []*pending{first}, first.size
	fill:
		for len(batch) < p.cfg.MaxBatch {
			select {
			case pd := <-p.in:
				if bytes+pd.size > p.cfg.MaxBatchBytes {
					carry = pd
					break fill
				}
				batch, bytes = append(batch, pd), bytes+pd.size
			default:
				break fill
			}
		}
		p.wg.Add(1)
		go func() {
			defer func() { <-p.slots; p.wg.Done() }()
			p.commit(batch)
		}()
	}
}

func (p *Publisher) failQueued() {
	for {
		select {
		case pd := <-p.in:
			pd.done <- result{err: fmt.Errorf("%w: publisher closed", ErrUnavailable)}
		default:
			return
		}
	}
}

// atomic reports whether a group of n goes as an atomic batch.
func (p *Publisher) atomic(n int) bool {
	switch {
	case n < 2:
		return false
	case p.cfg.Mode == Atomic:
		return true
	case p.cfg.Mode == Individual, n < p.cfg.MinAtomic:
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.model.atomic(n, time.Now())
}

func (p *Publisher) commit(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	atomic := p.atomic(len(batch))
	start := time.Now()
	var ok bool
	if atomic {
		ok = p.commitAtomic(ctx, batch)
	} else {
		ok = p.publishEach(ctx, batch)
	}
	took := time.Since(start)
	p.mu.Lock()
	if ok {
		// Only commits that went through teach the model: a timeout says
		// nothing about the cost of a mode.
		p.model.observe(atomic, len(batch), took, time.Now())
	}
	threshold := p.model.threshold(p.cfg.MaxBatch)
	p.mu.Unlock()
	if threshold > 0 && threshold < p.cfg.MinAtomic {
		threshold = p.cfg.MinAtomic
	}
	if p.cfg.Observe != nil {
		p.cfg.Observe(Commit{Size: len(batch), Atomic: atomic, Took: took, Threshold: threshold})
	}
}

// commitAtomic commits batch as one atomic batch and reports whether it
// was committed that way.
func (p *Publisher) commitAtomic(ctx context.Context, batch []*pending) bool {
	msgs := make([]*nats.Msg, len(batch))
	for i, pd := range batch {
		msgs[i] = batchCopy(pd.msg)
	}
	_, err := jetstreamext.PublishMsgBatch(ctx, p.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: p.cfg.Timeout})
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstreamext.JSErrCodeBatchPublishDuplicateMsgID {
		// Some message of the batch is a redelivery: the whole batch was
		// refused. Publish one by one to learn which, so every caller gets
		// its own duplicate flag. Duplicates are rare; this path is too.
		p.publishEach(ctx, batch)
		return false
	}
	for _, pd := range batch {
		if err != nil {
			pd.done <- result{err: fmt.Errorf("%w: committing batch of %d: %w", ErrUnavailable, len(batch), err)}
		} else {
			pd.done <- result{}
		}
	}
	return err == nil
}

// publishEach publishes every message of batch on its own, all in flight
// at once, answers each caller with its own acknowledgement, and reports
// whether all were acknowledged.
func (p *Publisher) publishEach(ctx context.Context, batch []*pending) bool {
	futures := make([]jetstream.PubAckFuture, len(batch))
	errs := make([]error, len(batch))
	for i, pd := range batch {
		futures[i], errs[i] = p.js.PublishMsgAsync(pd.msg)
	}
	ok := true
	for i, pd := range batch {
		if errs[i] != nil {
			ok = false
			pd.done <- result{err: classify(errs[i])}
			continue
		}
		select {
		case ack := <-futures[i].Ok():
			pd.done <- result{pub: Published{Sequence: ack.Sequence, Duplicate: ack.Duplicate}}
		case err := <-futures[i].Err():
			ok = false
			pd.done <- result{err: classify(err)}
		case <-ctx.Done():
			ok = false
			pd.done <- result{err: fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())}
		}
	}
	return ok
}

func classify(err error) error {
	if errors.Is(err, nats.ErrMaxPayload) {
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// batchCopy returns msg with its own header map: the batch publisher adds
// batch headers, which must not stick to msg if it is published again alone.
func batchCopy(msg *nats.Msg) *nats.Msg {
	h := make(nats.Header, len(msg.Header)+3)
	for k, v := range msg.Header {
		h[k] = v
	}
	return &nats.Msg{Subject: msg.Subject, Header: h, Data: msg.Data}
}

// PayloadSize is what max_payload counts of m: its headers and its data.
func PayloadSize(m *nats.Msg) int {
	n := 0
	if len(m.Header) > 0 {
		n = len("NATS/1.0\r\n") + len("\r\n")
		for k, vs := range m.Header {
			for _, v := range vs {
				n += len(k) + len(": ") + len(v) + len("\r\n")
			}
		}
	}
	return n + len(m.Data)
}
