package natsstream

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
)

// TestClassify covers the failures a test cannot make a healthy JetStream
// give on cue (publish_test.go covers those it can), as nats.go returns
// them.
func TestClassify(t *testing.T) {
	api := func(code int, errCode jetstream.ErrorCode, desc string) error {
		// How jetstream.PublishMsg wraps a PubAck's error.
		return fmt.Errorf("nats: %w", &jetstream.APIError{Code: code, ErrorCode: errCode, Description: desc})
	}
	for _, tt := range []struct {
		name     string
		err      error
		terminal bool
		cause    error
	}{
		{"timeout", nats.ErrTimeout, false, nil},
		{"deadline", context.DeadlineExceeded, false, nil},
		{"no responders", jetstream.ErrNoStreamResponse, false, nil},
		{"connection closed", nats.ErrConnectionClosed, false, nil},
		{"reconnecting", nats.ErrConnectionReconnecting, false, nil},
		{"disconnected, nothing buffered", nats.ErrReconnectBufExceeded, false, nil},
		{"store failed", api(503, errCodeStoreFailed, "write failed"), false, nil},
		{"insufficient resources", api(503, 10023, "insufficient resources"), false, nil},
		{"no quorum", api(500, 10008, "JetStream cluster not available"), false, nil},
		{"sequence mismatch during leader change", api(503, 10063, "expected stream sequence does not match"), false, nil},
		{"max payload", nats.ErrMaxPayload, true, ErrTooLarge},
		{"exceeds stream maximum", api(400, jetstream.JSErrCodeStreamMessageExceedsMaximum, "message size exceeds maximum allowed"), true, ErrTooLarge},
		{"file store limit", api(503, errCodeStoreFailed, "message too large"), true, ErrTooLarge},
		{"headers too large", api(400, errCodeHeaderExceedsMaximum, "header size exceeds maximum allowed of 64k"), true, ErrTooLarge},
		{"wrong stream", api(400, errCodeStreamNotMatch, "expected stream does not match"), true, ErrWrongStream},
		{"sealed stream", api(400, 10109, "invalid operation on sealed stream"), true, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.err)
			if !errors.Is(err, tt.err) {
				t.Errorf("classify(%v) = %v, want it to wrap the error", tt.err, err)
			}
			if got := adapter.IsTerminal(err); got != tt.terminal {
				t.Errorf("classify(%v): terminal %v, want %v", tt.err, got, tt.terminal)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("classify(%v) = %v, want it to wrap %v", tt.err, err, tt.cause)
			}
		})
	}
	if classify(nil) != nil {
		t.Error("classify(nil) != nil")
	}
}
