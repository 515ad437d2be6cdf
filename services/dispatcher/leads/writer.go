package leads

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/leadstream/leadstream/pkg/natskey"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/kvcas"
)

// Writer merges events into the bucket a batch at a time, for the
// projection's consumer, at a fraction of what Store.Apply costs per
// event: it keeps the states it read or wrote lately, with their
// revisions, so that an aggregate's next event is merged without reading
// the state back; it writes each aggregate of a batch once, whatever the
// number of its events; and it commits a batch's writes as one JetStream
// atomic batch (one sync of the bucket's stream for all of them, instead of
// one each) when there are enough of them to pay for it and the bucket's
// stream takes atomic batches, else pipelined.
//
// Every write is a compare-and-set on the revision the Writer knows. One
// that lost to another writer (another process's Writer, a Store), or an
// atomic batch that failed as a whole, is made again the way Store.Apply
// makes it: from the state read afresh, retried on conflict. A state kept
// in memory is trusted for at most cacheFresh: within that a merge that
// changes nothing writes nothing (the stored state, which only ever grows,
// holds what it holds); past it, the state is read again.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	bucket string
	atomic bool
	now    func() time.Time
	cache  map[string]*kept
	// wrote counts the states written, by how: in an atomic batch, by
	// pipelined publishes, and made again from the state read afresh.
	wrote struct{ atomic, pipelined, again int }
}

// kept is a state as last read or written: its bytes, the state they
// encode (canonical), and its revision (0: no key).
type kept struct {
	data []byte
	st   *State
	rev  uint64
	at   time.Time
}

// cacheFresh bounds how long a kept state is used without reading it
// again; the Writer drops older ones as it goes.
const cacheFresh = 2 * time.Second

// atomicMin is the fewest writes committed as one atomic batch: a batch
// costs the server about as much as a dozen individual writes, whatever its
// size (measured with R1 file streams syncing every write), so smaller
// groups go pipelined.
const atomicMin = 24

// NewWriter returns a Writer into kv (created with BucketConfig) over js.
// atomic says the bucket's stream takes atomic batches
// (AllowAtomicPublish); without, every write is an individual publish.
func NewWriter(js jetstream.JetStream, kv jetstream.KeyValue, atomic bool) *Writer {
	return &Writer{js: js, kv: kv, bucket: kv.Bucket(), atomic: atomic, now: time.Now, cache: map[string]*kept{}}
}

// write is one aggregate's part of a batch.
type write struct {
	key    string
	events []int // indexes into the batch
	old    *kept // nil: read afresh, as after a failed write
	data   []byte
	st     *State
}

// Apply merges evs into their aggregates' states and returns, per event,
// nil once the stored state holds it, or why not: an error wrapping
// ErrNoAggregate for an event without aggregate id, natskey.ErrInvalidKey
// for one whose key NATS would refuse, nats.ErrMaxPayload for a state too
// large to store, ErrContention when every attempt lost to other writers,
// or a KV error (ctx's included).
func (w *Writer) Apply(ctx context.Context, evs []*leadstreamv1.Event) []error {
	errs := make([]error, len(evs))
	now := w.now()
	for k, c := range w.cache {
		if now.Sub(c.at) >= cacheFresh {
			delete(w.cache, k)
		}
	}
	var writes []*write
	byKey := map[string]*write{}
	for i, ev := range evs {
		if ev.GetAggregateId() == "" {
			errs[i] = fmt.Errorf("applying event %q: %w", ev.GetId(), ErrNoAggregate)
			continue
		}
		key := Key(ev.GetAggregateId())
		if err := natskey.CheckKey(key); err != nil {
			errs[i] = fmt.Errorf("applying event %q: %w", ev.GetId(), err)
			continue
		}
		wr := byKey[key]
		if wr == nil {
			wr = &write{key: key}
			byKey[key] = wr
			writes = append(writes, wr)
		}
		wr.events = append(wr.events, i)
	}

	// Merge each aggregate's events into its state, kept or read.
	var pending []*write
	for _, wr := range writes {
		old := w.cache[wr.key]
		if old == nil {
			var err error
			if old, err = w.read(ctx, wr.key); err != nil {
				w.fail(errs, wr, err)
				continue
			}
		}
		wr.old = old
		st := old.st
		for _, i := range wr.events {
			st = Apply(st, evs[i])
		}
		st = canonical(st)
		data, err := Marshal(st)
		if err != nil {
			w.fail(errs, wr, err)
			continue
		}
		if bytes.Equal(data, old.data) {
			continue // the stored state holds them all already
		}
		wr.data, wr.st = data, st
		pending = append(pending, wr)
	}

	// Write them, each by compare-and-set; what fails is made again from
	// the state read afresh.
	for _, wr := range w.commit(ctx, pending) {
		w.apply(ctx, evs, errs, wr)
	}
	return errs
}

// read reads key's state.
func (w *Writer) read(ctx context.Context, key string) (*kept, error) {
	e, err := w.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return w.keep(key, nil, &State{}, 0), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state %s: %w", key, err)
	}
	st, err := Unmarshal(e.Value())
	if err != nil {
		return nil, fmt.Errorf("reading state %s: %w", key, err)
	}
	return w.keep(key, e.Value(), st, e.Revision()), nil
}

func (w *Writer) keep(key string, data []byte, st *State, rev uint64) *kept {
	k := &kept{data: data, st: st, rev: rev, at: w.now()}
	w.cache[key] = k
	return k
}

func (w *Writer) fail(errs []error, wr *write, err error) {
	for _, i := range wr.events {
		errs[i] = err
	}
}

// commitTimeout bounds a commit's wait for JetStream's acknowledgements.
const commitTimeout = 10 * time.Second

// commit writes ws by compare-and-set, and returns those not written.
func (w *Writer) commit(ctx context.Context, ws []*write) []*write {
	if len(ws) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, commitTimeout)
	defer cancel()
	msgs := make([]*nats.Msg, len(ws))
	for i, wr := range ws {
		m := nats.NewMsg("$KV." + w.bucket + "." + wr.key)
		m.Data = wr.data
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(wr.old.rev, 10))
		msgs[i] = m
	}
	if w.atomic && len(ws) >= atomicMin {
		ack, err := jetstreamext.PublishMsgBatch(ctx, w.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
		if err != nil {
			// One lost compare-and-set fails them all: each is made again.
			return ws
		}
		// A batch is stored in one piece, its messages in order, the last
		// at ack.Sequence. Should that ever not hold, a revision kept here
		// is wrong, and the next write of that key fails and is made again.
		for i, wr := range ws {
			w.keep(wr.key, wr.data, wr.st, ack.Sequence-uint64(len(ws)-1-i))
		}
		w.wrote.atomic += len(ws)
		return nil
	}
	futures := make([]jetstream.PubAckFuture, len(ws))
	var failed []*write
	for i, m := range msgs {
		f, err := w.js.PublishMsgAsync(m)
		if err != nil {
			failed = append(failed, ws[i])
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			w.keep(ws[i].key, ws[i].data, ws[i].st, ack.Sequence)
			w.wrote.pipelined++
		case <-f.Err():
			failed = append(failed, ws[i])
		case <-ctx.Done():
			failed = append(failed, ws[i])
		}
	}
	return failed
}

// apply merges wr's events as Store.Apply does: read afresh, merge, write
// by compare-and-set, retried on conflict; and keeps what it wrote. When
// the state with all of them cannot be stored (too large), each event is
// tried on its own, as Store.Apply would, so that only those that do not
// fit fail.
func (w *Writer) apply(ctx context.Context, evs []*leadstreamv1.Event, errs []error, wr *write) {
	delete(w.cache, wr.key)
	if len(wr.events) > 1 {
		if err := w.merge(ctx, evs, wr); errors.Is(err, nats.ErrMaxPayload) {
			for _, i := range wr.events {
				w.apply(ctx, evs, errs, &write{key: wr.key, events: []int{i}})
			}
		} else if err != nil {
			w.fail(errs, wr, err)
		}
		return
	}
	if err := w.merge(ctx, evs, wr); err != nil {
		w.fail(errs, wr, err)
	}
}

// merge reads wr's state afresh, merges its events and writes it by
// compare-and-set, retried on conflict.
func (w *Writer) merge(ctx context.Context, evs []*leadstreamv1.Event, wr *write) error {
	var (
		st   *State
		data []byte
	)
	rev, err := kvcas.Update(ctx, w.kv, wr.key, func(old []byte) ([]byte, bool, error) {
		st = &State{}
		if old != nil {
			var err error
			if st, err = Unmarshal(old); err != nil {
				return nil, false, fmt.Errorf("reading state %s: %w", wr.key, err)
			}
		}
		for _, i := range wr.events {
			st = Apply(st, evs[i])
		}
		st = canonical(st)
		var err error
		if data, err = Marshal(st); err != nil {
			return nil, false, err
		}
		return data, !bytes.Equal(data, old), nil
	})
	switch {
	case errors.Is(err, kvcas.ErrContention):
		return fmt.Errorf("applying %d events to %s: %d attempts: %w", len(wr.events), wr.key, kvcas.Attempts, ErrContention)
	case err != nil:
		return fmt.Errorf("applying %d events to %s: %w", len(wr.events), wr.key, err)
	case rev > 0:
		w.keep(wr.key, data, st, rev)
		w.wrote.again++
	}
	return nil
}
