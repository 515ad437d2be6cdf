package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotProvisioned is wrapped by the error of a service that finds
// something it uses missing: `leadstream provision` makes the topology, the
// services only bind to it.
var ErrNotProvisioned = errors.New("not provisioned (run `leadstream provision` with this config)")

// Need is what a service binds to: streams, buckets, and consumers
// ("STREAM > NAME").
type Need struct {
	Streams   []string
	Buckets   []string
	Consumers [][2]string
}

// Check looks everything in n up and returns an error wrapping
// ErrNotProvisioned that names all that is missing, or the first other
// error (JetStream not answering, say).
func (n Need) Check(ctx context.Context, js jetstream.JetStream) error {
	var missing []string
	for _, s := range n.Streams {
		if _, err := js.Stream(ctx, s); errors.Is(err, jetstream.ErrStreamNotFound) {
			missing = append(missing, "stream "+s)
		} else if err != nil {
			return fmt.Errorf("stream %s: %w", s, err)
		}
	}
	for _, b := range n.Buckets {
		if _, err := js.KeyValue(ctx, b); errors.Is(err, jetstream.ErrBucketNotFound) {
			missing = append(missing, "bucket "+b)
		} else if err != nil {
			return fmt.Errorf("bucket %s: %w", b, err)
		}
	}
	for _, c := range n.Consumers {
		st, err := js.Stream(ctx, c[0])
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			missing = append(missing, "consumer "+c[0]+" > "+c[1])
			continue
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", c[0], err)
		}
		if _, err := st.Consumer(ctx, c[1]); errors.Is(err, jetstream.ErrConsumerNotFound) {
			missing = append(missing, "consumer "+c[0]+" > "+c[1])
		} else if err != nil && !errors.Is(err, jetstream.ErrNotPullConsumer) {
			return fmt.Errorf("consumer %s > %s: %w", c[0], c[1], err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: %w", strings.Join(missing, ", "), ErrNotProvisioned)
	}
	return nil
}
