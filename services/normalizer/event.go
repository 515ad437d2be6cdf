package normalizer

import (
	"time"

	"github.com/nats-io/nats.go"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// CloudEvents binary-mode headers on EVENTS messages.
const (
	HdrCESpecVersion = "ce-specversion"
	HdrCEID          = "ce-id"
	HdrCEType        = "ce-type"
	HdrCESource      = "ce-source"
	HdrCETime        = "ce-time"
	HdrCESubject     = "ce-subject"
	HdrContentType   = "content-type"
	// ContentType of an EVENTS message body.
	ContentType = "application/protobuf; messageType=\"leadstream.v1.Event\""
)

// eventMsg is the EVENTS message of ev: protobuf body, CloudEvents
// binary-mode headers, Nats-Msg-Id = event id.
func eventMsg(subject string, ev *leadstreamv1.Event, data []byte) *nats.Msg {
	t := ev.GetOccurredAt().AsTime()
	if ev.GetOccurredAt() == nil {
		t = ev.GetReceivedAt().AsTime()
	}
	h := nats.Header{}
	h.Set(nats.MsgIdHdr, ev.Id)
	h[HdrCESpecVersion] = []string{"1.0"}
	h[HdrCEID] = []string{ev.Id}
	h[HdrCEType] = []string{ev.Type}
	h[HdrCESource] = []string{"/leadstream/sources/" + ev.Source}
	h[HdrCETime] = []string{t.UTC().Format(time.RFC3339Nano)}
	h[HdrCESubject] = []string{ev.AggregateId}
	h[HdrContentType] = []string{ContentType}
	return &nats.Msg{Subject: subject, Header: h, Data: data}
}
