package natsstream

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
)

// ErrWrongStream is the cause of a publish that JetStream stored, or would
// store, in a stream other than the adapter's: another stream took the
// subjects (after an operator deleted the ordered stream, say). No retry
// cures that; an operator must.
var ErrWrongStream = errors.New("subjects bound to another stream")

// ErrTooLarge is the cause of an event larger than the server or the stream
// takes.
var ErrTooLarge = errors.New("event too large for the ordered stream")

// classify marks a publish failure terminal when no retry can cure it: the
// message is too large, the subjects belong to another stream, or JetStream
// refused it with a 4xx other than 408 and 429 (the classes the webhook
// adapter uses, so one contract covers both). Timeouts, no responders (no
// stream leader yet, or no server), a lost connection and JetStream's 5xx
// (storage failed, insufficient resources, a clustered stream that has no
// quorum) are left retryable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		return adapter.Terminal(fmt.Errorf("%w: %w", ErrTooLarge, err))
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	switch {
	case apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum,
		apiErr.ErrorCode == errCodeHeaderExceedsMaximum,
		// A file store's own limit comes as a 503 "store failed".
		apiErr.ErrorCode == errCodeStoreFailed && strings.Contains(apiErr.Description, "too large"):
		return adapter.Terminal(fmt.Errorf("%w: %w", ErrTooLarge, err))
	case apiErr.ErrorCode == errCodeStreamNotMatch:
		return adapter.Terminal(fmt.Errorf("%w: %w", ErrWrongStream, err))
	case apiErr.Code == http.StatusRequestTimeout, apiErr.Code == http.StatusTooManyRequests, apiErr.Code >= 500:
		return err
	case apiErr.Code >= 400:
		return adapter.Terminal(err)
	default:
		return err
	}
}

// JetStream error codes nats.go has no constant for (nats-server's
// errors.json).
const (
	// errCodeStreamNotMatch: "expected stream does not match".
	errCodeStreamNotMatch jetstream.ErrorCode = 10060
	// errCodeStoreFailed: the stream's store refused the message.
	errCodeStoreFailed jetstream.ErrorCode = 10077
	// errCodeHeaderExceedsMaximum: headers over 64 KiB.
	errCodeHeaderExceedsMaximum jetstream.ErrorCode = 10097
)
