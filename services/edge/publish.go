package edge

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
// not acknowledge it in time, or the publisher is closed. The provider must
// retry (503).
var ErrUnavailable = errors.New("jetstream unavailable")

// ErrTooLarge means a message can never be published: with its headers it
// exceeds the NATS server's max_payload. Retrying cannot help (413).
var ErrTooLarge = errors.New("message over the server's max_payload")

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Timeout bounds the wait for JetStream's acknowledgement. Default 5s.
	Timeout time.Duration
	// MaxBatch is the most messages committed together. Default 256; the
	// server's own limit is 1000.
	MaxBatch int
	// MaxCommits is how many batches may be committing at once. Default 4.
	MaxCommits int
	// Queue is how many messages may wait for a commit. Default 4096.
	Queue int
	// Observe, when set, is told the size of every committed batch.
	Observe func(size int)
}

func (c *PublisherConfig) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 256
	}
	if c.MaxCommits <= 0 {
		c.MaxCommits = 4
	}
	if c.Queue <= 0 {
		c.Queue = 4096
	}
}

// Published is JetStream's answer for one message.
type Published struct {
	// Duplicate is set when JetStream already held a message with the same
	// Nats-Msg-Id (within the stream's duplicate window).
	Duplicate bool
}

// Publisher makes messages durable in one stream, grouping concurrent
// messages into atomic batches (group commit).
//
// With fsync before every acknowledgement, a stream can sync only a few
// thousand times a second; an atomic batch is stored with one sync. The
// publisher never waits to fill a batch: the first message goes at once, and
// whatever arrives while commits are in flight goes together in the next one.
// Each caller is answered only after its own batch's commit acknowledgement.
type Publisher struct {
	js    jetstream.JetStream
	cfg   PublisherConfig
	in    chan *pending
	slots chan struct{}
	quit  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

type pending struct {
	msg  *nats.Msg
	done chan result
}

type result struct {
	pub Published
	err error
}

// NewPublisher starts a publisher into js. Close stops it.
func NewPublisher(js jetstream.JetStream, cfg PublisherConfig) *Publisher {
	cfg.setDefaults()
	p := &Publisher{
		js:    js,
		cfg:   cfg,
		in:    make(chan *pending, cfg.Queue),
		slots: make(chan struct{}, cfg.MaxCommits),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
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
	if size, limit := msgSize(msg)+batchHeaderBytes, p.js.Conn().MaxPayload(); size > limit {
		return Published{}, fmt.Errorf("%w: %d bytes with batch headers, max_payload %d", ErrTooLarge, size, limit)
	}
	errClosed := fmt.Errorf("%w: publisher closed", ErrUnavailable)
	// select picks at random among ready cases: check quit first, so a
	// closed publisher never takes a message it will not commit.
	select {
	case <-p.quit:
		return Published{}, errClosed
	default:
	}
	pd := &pending{msg: msg, done: make(chan result, 1)}
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
	for {
		var first *pending
		select {
		case first = <-p.in:
		case <-p.quit:
			p.wg.Wait()
			p.failQueued()
			return
		}
		// Take a commit slot first: while every slot is busy, arrivals queue
		// up and then leave together.
		p.slots <- struct{}{}
		batch := []*pending{first}
	fill:
		for len(batch) < p.cfg.MaxBatch {
			select {
			case pd := <-p.in:
				batch = append(batch, pd)
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

func (p *Publisher) commit(batch []*pending) {
	if p.cfg.Observe != nil {
		p.cfg.Observe(len(batch))
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	if len(batch) == 1 {
		pub, err := p.publishOne(ctx, batch[0].msg)
		batch[0].done <- result{pub, err}
		return
	}
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
		return
	}
	for _, pd := range batch {
		if err != nil {
			pd.done <- result{err: fmt.Errorf("%w: committing batch of %d: %w", ErrUnavailable, len(batch), err)}
		} else {
			pd.done <- result{}
		}
	}
}

func (p *Publisher) publishOne(ctx context.Context, msg *nats.Msg) (Published, error) {
	ack, err := p.js.PublishMsg(ctx, msg)
	if errors.Is(err, nats.ErrMaxPayload) {
		return Published{}, fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	if err != nil {
		return Published{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return Published{Duplicate: ack.Duplicate}, nil
}

func (p *Publisher) publishEach(ctx context.Context, batch []*pending) {
	futures := make([]jetstream.PubAckFuture, len(batch))
	errs := make([]error, len(batch))
	for i, pd := range batch {
		futures[i], errs[i] = p.js.PublishMsgAsync(pd.msg)
	}
	for i, pd := range batch {
		if errs[i] != nil {
			pd.done <- result{err: fmt.Errorf("%w: %w", ErrUnavailable, errs[i])}
			continue
		}
		select {
		case ack := <-futures[i].Ok():
			pd.done <- result{pub: Published{Duplicate: ack.Duplicate}}
		case err := <-futures[i].Err():
			pd.done <- result{err: fmt.Errorf("%w: %w", ErrUnavailable, err)}
		case <-ctx.Done():
			pd.done <- result{err: fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())}
		}
	}
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
