// Package dlq is the dead-letter stream's message format and the operator
// verbs over it (list, show, drop): what any stage could not process lands
// here with its reason, origin and attempts, and can be replayed by the
// stage that knows how.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/streams"
)

// Dead-letter header names. A dead letter also keeps the headers of the
// message it was made from (the RAW envelope, or the event's CloudEvents
// headers) but for JetStream's own (Nats-*), and its body is that
// message's body.
const (
	hdrStage    = "Leadstream-Dlq-Stage"
	hdrName     = "Leadstream-Dlq-Name"
	hdrReason   = "Leadstream-Dlq-Reason"
	hdrError    = "Leadstream-Dlq-Error"
	hdrSubject  = "Leadstream-Dlq-Subject"
	hdrSequence = "Leadstream-Dlq-Sequence"
	hdrAttempts = "Leadstream-Dlq-Attempts"
	hdrAt       = "Leadstream-Dlq-At"
	// hdrLog carries the per-attempt outcomes of a delivery, one per line.
	hdrLog = "Leadstream-Dlq-Attempt-Log"
)

// Stages.
const (
	StageNormalize = "normalize"
	StageDeliver   = "deliver"
)

// ErrNotFound means no dead letter has the given sequence.
var ErrNotFound = errors.New("dlq: no such dead letter")

// Letter is one dead letter.
type Letter struct {
	// Seq is the letter's own sequence in DLQ (set when read).
	Seq uint64
	// Stage is "normalize" or "deliver"; Name the kind or adapter.
	Stage, Name string
	// Reason is a short stable label ("unsupported_type", "terminal_status"...).
	Reason string
	// Error is the error text; never payload values.
	Error string
	// Subject and Sequence locate the original message (RAW or EVENTS).
	Subject  string
	Sequence uint64
	// Attempts is how often processing was tried.
	Attempts int
	// At is when the letter was written.
	At time.Time
	// Log holds one line per attempt (deliver stage): when, and what happened.
	Log []string
	// Header holds the original message's headers.
	Header nats.Header
	// Body is the original message's body.
	Body []byte
}

// Msg encodes l for the DLQ stream on dlq.<stage>.<name>, with
// Nats-Msg-Id = MsgID(l.Stage, l.Name, l.Sequence). Write sends it.
func (l *Letter) Msg() *nats.Msg {
	h := nats.Header{}
	for k, v := range l.Header {
		if kept(k) {
			h[k] = append([]string(nil), v...)
		}
	}
	set := func(k, v string) {
		if v != "" {
			h.Set(k, v)
		}
	}
	set(nats.MsgIdHdr, MsgID(l.Stage, l.Name, l.Sequence))
	set(hdrStage, l.Stage)
	set(hdrName, l.Name)
	set(hdrReason, l.Reason)
	set(hdrError, oneLine(l.Error))
	set(hdrSubject, l.Subject)
	if l.Sequence > 0 {
		set(hdrSequence, strconv.FormatUint(l.Sequence, 10))
	}
	set(hdrAttempts, strconv.Itoa(l.Attempts))
	at := l.At
	if at.IsZero() {
		at = time.Now()
	}
	set(hdrAt, at.UTC().Format(time.RFC3339Nano))
	if len(l.Log) > 0 {
		set(hdrLog, oneLine(strings.Join(l.Log, logSep)))
	}
	return &nats.Msg{Subject: streams.DLQSubject(l.Stage, l.Name), Header: h, Data: l.Body}
}

// logSep separates attempts in the hdrLog header (a header is one line).
const logSep = " | "

// oneLine keeps a header value on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// FromMsg decodes a stored dead letter.
func FromMsg(m *jetstream.RawStreamMsg) *Letter {
	get := m.Header.Get
	l := &Letter{
		Seq:     m.Sequence,
		Stage:   get(hdrStage),
		Name:    get(hdrName),
		Reason:  get(hdrReason),
		Error:   get(hdrError),
		Subject: get(hdrSubject),
		Header:  nats.Header{},
		Body:    m.Data,
	}
	l.Sequence, _ = strconv.ParseUint(get(hdrSequence), 10, 64)
	l.Attempts, _ = strconv.Atoi(get(hdrAttempts))
	l.At, _ = time.Parse(time.RFC3339Nano, get(hdrAt))
	if v := get(hdrLog); v != "" {
		l.Log = strings.Split(v, logSep)
	}
	for k, v := range m.Header {
		if kept(k) {
			l.Header[k] = v
		}
	}
	return l
}

// kept reports whether a header of the original message belongs in its dead
// letter. JetStream's own headers do not: a direct get adds Nats-Stream,
// Nats-Sequence, Nats-Subject and Nats-Time-Stamp to the message it returns,
// and a stored copy of them would be read back as the letter's own location
// (dlq show would print the original's sequence, and a replay or drop by it
// would hit another letter). Nats-Msg-Id is the letter's own, and the
// letter's headers are written anew.
func kept(k string) bool {
	return !hasPrefixFold(k, "Nats-") && !strings.HasPrefix(k, "Leadstream-Dlq-")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// Filter selects dead letters.
type Filter struct {
	// Stage and Name, when set, must match.
	Stage, Name string
}

func (f Filter) subject() string {
	stage, name := "*", "*"
	if f.Stage != "" {
		stage = f.Stage
	}
	if f.Name != "" {
		name = f.Name
	}
	return streams.DLQSubject(stage, name)
}

// List returns the dead letters matching f, oldest first.
func List(ctx context.Context, js jetstream.JetStream, f Filter) ([]*Letter, error) {
	var out []*Letter
	err := streams.Read(ctx, js, streams.DLQ, jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.subject()}}, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		out = append(out, FromMsg(&jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: md.Sequence.Stream, Header: m.Headers(), Data: m.Data(), Time: md.Timestamp}))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	return out, nil
}

// Newest returns the newest n dead letters matching f, newest first,
// without their bodies, and how many match in all: what a list shows. It
// reads headers only and keeps n letters at a time, so a DLQ of a bad day
// costs the reading, not the memory.
func Newest(ctx context.Context, js jetstream.JetStream, f Filter, n int) ([]*Letter, int, error) {
	ring := make([]*Letter, 0, n)
	total := 0
	err := streams.Read(ctx, js, streams.DLQ, jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.subject()}, HeadersOnly: true}, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
		if n > 0 {
			l := FromMsg(&jetstream.RawStreamMsg{Subject: m.Subject(), Sequence: md.Sequence.Stream, Header: m.Headers(), Time: md.Timestamp})
			if len(ring) < n {
				ring = append(ring, l)
			} else {
				ring[total%n] = l
			}
		}
		total++
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("dlq: %w", err)
	}
	out := make([]*Letter, 0, len(ring))
	for i := range len(ring) {
		// The newest is the one written last: at (total-1) % n once the ring has wrapped.
		out = append(out, ring[(total-1-i+len(ring))%len(ring)])
	}
	return out, total, nil
}

// Get returns the dead letter at seq.
func Get(ctx context.Context, js jetstream.JetStream, seq uint64) (*Letter, error) {
	st, err := js.Stream(ctx, streams.DLQ)
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("dlq: reading %d: %w", seq, err)
	}
	l := FromMsg(m)
	// A letter written before JetStream's headers were left out carries its
	// original's Nats-Sequence, which the direct get reads as its own.
	l.Seq = seq
	return l, nil
}

// Drop deletes the dead letter at seq.
func Drop(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	st, err := js.Stream(ctx, streams.DLQ)
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	if err := st.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("%w: %d", ErrNotFound, seq)
		}
		return fmt.Errorf("dlq: deleting %d: %w", seq, err)
	}
	return nil
}
