package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStop, returned by the function Read calls, ends the reading early;
// Read then returns nil.
var ErrStop = errors.New("stop reading")

// readBatch is how many messages Read asks for at once.
const readBatch = 256

// Read calls f, in stream order, for every message of stream that cfg
// selects and that the stream held when Read started: it reads to the end
// the stream had then, not on into what arrives meanwhile. It reads with an
// ordered consumer, so that an operator's look leaves no consumer behind;
// like every ordered consumer it needs the permissions to create, read and
// delete consumers on stream. An error of f ends the reading and is
// returned as it is (ErrStop as nil); the others say which stream.
func Read(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.OrderedConsumerConfig, f func(jetstream.Msg, *jetstream.MsgMetadata) error) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("reading %s: %w", stream, err)
	}
	state := st.CachedInfo().State
	if state.Msgs == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("reading %s: %w", stream, err)
	}
	for {
		batch, err := cons.FetchNoWait(readBatch)
		if err != nil {
			return fmt.Errorf("reading %s: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("reading %s: %w", stream, err)
			}
			if md.Sequence.Stream > state.LastSeq {
				return nil // stored after Read started
			}
			if err := f(m, md); err != nil {
				if errors.Is(err, ErrStop) {
					return nil
				}
				return err
			}
			if md.NumPending == 0 || md.Sequence.Stream >= state.LastSeq {
				return nil
			}
		}
		if err := batch.Error(); err != nil {
			return fmt.Errorf("reading %s: %w", stream, err)
		}
		if n == 0 {
			return nil
		}
	}
}
