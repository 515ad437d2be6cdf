// Package natsstream is the adapter that gives NATS subscribers what an LMS
// gets from the webhook adapter: every event in causal order per aggregate,
// orphans marked. It publishes each delivery to an ordered stream of its own
// (ORDERED_<NAME>, subjects ordered.<adapter>.<kind>.<action>.<tenant>),
// with the body and CloudEvents headers of EVENTS. The order is the
// dispatcher's: its lane hands an aggregate's events over one at a time and
// waits for Deliver, and Deliver returns only once JetStream acknowledged
// the publish, so the stream holds each aggregate's events in the order the
// lane chose. EVENTS itself stays in arrival order.
package natsstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natskey"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/internal/inflight"
)

// Type is the adapter type in config (adapters[].type).
const Type = "nats"

// Headers the ordered stream's messages carry beyond those of EVENTS
// (envelope.EventMsg): the orphan marker and what the orphan went without,
// as CloudEvents extensions under the names the webhook adapter uses, and
// the attempt for a subscriber's logs.
const (
	// HeaderOrphan is "true" on an event delivered without its causal
	// prerequisite, after max_park; absent otherwise.
	HeaderOrphan = "ce-leadstreamorphan"
	// HeaderMissing names, on an orphan, the facts it went without,
	// comma-separated and percent-encoded as every ce-* value
	// (envelope.HeaderValue reads it), e.g. "lead.invoiced".
	HeaderMissing = "ce-leadstreammissing"
	// HeaderAttempt is Delivery.Attempt of the publish that was stored. It
	// is for logs: a subscriber dedupes on ce-id (= Nats-Msg-Id).
	HeaderAttempt = "leadstream-attempt"
)

// Adapter publishes deliveries to its ordered stream. Build it with New.
type Adapter struct {
	cfg        Config
	log        *zap.Logger
	group      inflight.Group
	timeoutErr error

	mu sync.Mutex // guards nc and js against Connect racing Close
	nc *nats.Conn
	js jetstream.JetStream
}

var _ adapter.Adapter = (*Adapter)(nil)

// New validates cfg and builds an adapter; log may be nil. It connects to
// nothing before Connect.
func New(cfg Config, log *zap.Logger) (*Adapter, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Adapter{
		cfg:        cfg,
		log:        log.With(zap.String("adapter", cfg.Name)),
		timeoutErr: fmt.Errorf("no PubAck within the adapter's timeout of %s: %w", cfg.Timeout, context.DeadlineExceeded),
	}, nil
}

// Connect connects to NATS and creates the ordered stream, or updates it to
// the configuration. A server that cannot be reached or a stream JetStream
// refuses (its subjects overlap another stream's, say) fails it: the
// dispatcher does not start with an adapter that cannot publish.
func (a *Adapter) Connect(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.nc != nil {
		return nil
	}
	nc, js, err := natsconn.Connect(a.cfg.URL, natsconn.Options{Name: "leadstream-dispatcher-" + a.cfg.Name, CredsFile: a.cfg.CredsFile, Logger: a.log})
	if err != nil {
		return fmt.Errorf("natsstream %s: %w", a.cfg.Name, err)
	}
	sc := a.cfg.ordered().Config()
	if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
		nc.Close()
		return fmt.Errorf("natsstream %s: creating or updating stream %s: %w", a.cfg.Name, sc.Name, err)
	}
	if err := a.group.Open(); err != nil {
		nc.Close()
		return fmt.Errorf("natsstream %s: connect: %w", a.cfg.Name, err)
	}
	// Deliveries admitted from here on wait for mu, held until these are set.
	a.nc, a.js = nc, js
	a.log.Info("ordered stream ready", zap.String("stream", sc.Name), zap.Strings("subjects", sc.Subjects))
	return nil
}

// Deliver publishes d to the ordered stream and returns nil once JetStream
// acknowledged it, also as a duplicate: the event id is the Nats-Msg-Id, so
// a publish made again within the duplicate window is stored once. An event
// too large, one whose subject cannot be published to, or subjects that
// another stream took return an error wrapping adapter.ErrTerminal; a
// timeout, no responders, a lost connection or a JetStream 5xx return a
// retryable one. One Deliver is one publish: no retries of its own. Before
// Connect and after Close it returns an error wrapping
// adapter.ErrNotConnected.
func (a *Adapter) Deliver(ctx context.Context, d *adapter.Delivery) error {
	ctx, done, err := a.group.Enter(ctx)
	if err != nil {
		return fmt.Errorf("natsstream %s: %w", a.cfg.Name, err)
	}
	defer done()
	a.mu.Lock()
	js := a.js
	a.mu.Unlock()

	msg, err := a.message(d)
	if err != nil {
		return fmt.Errorf("natsstream %s: %w", a.cfg.Name, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, a.cfg.Timeout, a.timeoutErr)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg,
		// The stream that must store it: JetStream refuses the publish when
		// another stream has taken the subjects.
		jetstream.WithExpectStream(a.cfg.Stream),
		// One Deliver is one attempt; the dispatcher retries with backoff.
		jetstream.WithRetryAttempts(0))
	if err != nil {
		if ctx.Err() != nil {
			// Say why the attempt ended: our timeout, the caller's deadline
			// or cancellation, or Close giving up.
			err = context.Cause(ctx)
		}
		return fmt.Errorf("natsstream %s: publishing event %s to %s: %w", a.cfg.Name, d.Event.GetId(), msg.Subject, classify(err))
	}
	if ack.Stream != a.cfg.Stream {
		return adapter.Terminal(fmt.Errorf("natsstream %s: event %s stored in stream %s, not %s: %w", a.cfg.Name, d.Event.GetId(), ack.Stream, a.cfg.Stream, ErrWrongStream))
	}
	return nil
}

// message is the ordered stream's message of d: EVENTS' subject under the
// adapter's prefix, EVENTS' body and headers, plus the orphan marker, what
// the orphan is missing and the attempt. Errors wrap adapter.ErrTerminal.
func (a *Adapter) message(d *adapter.Delivery) (*nats.Msg, error) {
	if d == nil || d.Event == nil {
		return nil, adapter.Terminal(errors.New("delivery without an event"))
	}
	ev := d.Event
	if ev.GetId() == "" || ev.GetType() == "" {
		return nil, adapter.Terminal(fmt.Errorf("event %q of type %q: a CloudEvent needs both", ev.GetId(), ev.GetType()))
	}
	kind, action, _ := strings.Cut(ev.GetType(), ".")
	subject := streams.OrderedSubject(a.cfg.SubjectPrefix, kind, action, ev.GetTenant(), ev.GetAggregateId())
	if err := natskey.CheckSubject(subject); err != nil {
		return nil, adapter.Terminal(fmt.Errorf("event %s: subject from its type and tenant: %w", ev.GetId(), err))
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, adapter.Terminal(fmt.Errorf("encoding event %s: %w", ev.GetId(), err))
	}
	msg := envelope.EventMsg(subject, ev, data)
	if d.Orphan {
		msg.Header[HeaderOrphan] = []string{"true"}
	}
	if len(d.Missing) > 0 {
		msg.Header[HeaderMissing] = []string{envelope.HeaderEncode(strings.Join(d.Missing, ","))}
	}
	msg.Header[HeaderAttempt] = []string{strconv.Itoa(d.Attempt)}
	return msg, nil
}

// Close turns new deliveries away and waits for those in flight; when ctx
// ends first, it cancels them (they fail as retryable) and returns ctx's
// error. Then it closes the connection: nothing is buffered, since every
// publish waited for its PubAck.
func (a *Adapter) Close(ctx context.Context) error {
	err := a.group.Close(ctx)
	a.mu.Lock()
	if a.nc != nil {
		a.nc.Close()
	}
	a.mu.Unlock()
	if err != nil {
		return fmt.Errorf("natsstream %s: %w", a.cfg.Name, err)
	}
	return nil
}
