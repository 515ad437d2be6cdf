package normalizer

import (
	"github.com/nats-io/nats.go"

	"github.com/leadstream/leadstream/pkg/envelope"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// CloudEvents headers of EVENTS messages, as named by their one codec in
// pkg/envelope. Their values are percent-encoded: read them with
// envelope.HeaderValue.
const (
	HdrCESpecVersion = envelope.HdrCESpecVersion
	HdrCEID          = envelope.HdrCEID
	HdrCEType        = envelope.HdrCEType
	HdrCESource      = envelope.HdrCESource
	HdrCETime        = envelope.HdrCETime
	HdrCESubject     = envelope.HdrCESubject
)

// eventMsg is the EVENTS message of ev, encoded by the codec the dispatcher
// and downstream teams decode with.
func eventMsg(subject string, ev *leadstreamv1.Event, data []byte) *nats.Msg {
	return envelope.EventMsg(subject, ev, data)
}
