package streams

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// TakeOver lets a starting process take over what a dead holder of a
// durable consumer left unacknowledged, instead of waiting out its AckWait:
// when messages are pending acknowledgement but no client is attached to
// the consumer (no pull request waiting, no push subscription bound), it
// resets the consumer to its ack floor (nats-server 2.14+), so that
// everything after the floor is delivered again at once.
//
// A reset redelivers every message above the ack floor, also those acked
// out of order, and restarts their delivery counts: consumers must be
// idempotent, as leadstream's are. Because a message's delivery count no
// longer tells whether it was delivered before, TakeOver returns the highest
// stream sequence the consumer had delivered before the reset: a message at
// or below it may have been (0: nothing was reset).
//
// It does nothing when another client is attached: the messages it holds
// may still be acknowledged, and those of a dead one come back after
// AckWait as usual. Callers treat an error as a warning: without a
// take-over the messages still come back, only later.
func TakeOver(ctx context.Context, js jetstream.JetStream, stream, consumer string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("taking over consumer %s: %w", consumer, err)
	}
	info, err := consumerInfo(ctx, s, consumer)
	if err != nil {
		return 0, fmt.Errorf("taking over consumer %s: %w", consumer, err)
	}
	if info.NumAckPending == 0 || info.NumWaiting > 0 || info.PushBound {
		return 0, nil
	}
	delivered := info.Delivered.Stream
	if _, err := s.ResetConsumer(ctx, consumer); err != nil {
		return 0, fmt.Errorf("taking over consumer %s: resetting to its ack floor: %w", consumer, err)
	}
	return delivered, nil
}

func consumerInfo(ctx context.Context, s jetstream.Stream, name string) (*jetstream.ConsumerInfo, error) {
	c, err := s.Consumer(ctx, name)
	if errors.Is(err, jetstream.ErrNotPullConsumer) {
		pc, perr := s.PushConsumer(ctx, name)
		if perr != nil {
			return nil, perr
		}
		return pc.Info(ctx)
	}
	if err != nil {
		return nil, err
	}
	return c.Info(ctx)
}
