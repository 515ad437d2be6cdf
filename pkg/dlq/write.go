package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/streams"
)

// MsgID is the Nats-Msg-Id of a dead letter: its stage, its name and the
// original message's sequence ("deliver:crm:42"), so that one message
// dead-lettered again within DLQ's duplicate window (a retry after a lost
// acknowledgement, a redelivery of the message) is stored once. A letter
// that does not know its original's sequence gets none ("").
func MsgID(stage, name string, seq uint64) string {
	if seq == 0 {
		return ""
	}
	return stage + ":" + name + ":" + strconv.FormatUint(seq, 10)
}

// Write stores l in DLQ under MsgID, in one attempt within ctx, and
// returns nil once DLQ has it, also as a duplicate. A letter too large for
// the server's max_payload is sent again with less in it, its Error saying
// what was left out: first without its attempt log, then without the
// original message's headers and body (its Subject and Sequence still say
// where that is). l itself is not changed. The error wraps JetStream's.
func Write(ctx context.Context, js jetstream.JetStream, l *Letter) error {
	letter := *l
	for {
		_, err := js.PublishMsg(ctx, letter.Msg())
		if err == nil {
			return nil
		}
		if !errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("dead-lettering %s sequence %d (%s): %w", origin(l.Stage), l.Sequence, l.Reason, err)
		}
		switch {
		case len(letter.Log) > 0:
			letter.Log = nil
			letter.Error = l.Error + " (attempt log left out: too large)"
		case len(letter.Body) > 0 || len(letter.Header) > 0:
			letter.Body, letter.Header = nil, nil
			letter.Error = fmt.Sprintf("%s (original message left out: too large; it is %s sequence %d)", l.Error, origin(l.Stage), l.Sequence)
		default:
			return fmt.Errorf("dead-lettering %s sequence %d (%s): %w", origin(l.Stage), l.Sequence, l.Reason, err)
		}
	}
}

// origin names the stream a stage's letters come from.
func origin(stage string) string {
	switch stage {
	case StageNormalize:
		return streams.RAW
	case StageDeliver:
		return streams.EVENTS
	}
	return "stream"
}
