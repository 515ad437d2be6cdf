package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
)

// ContentType is the Content-Type of every webhook request: CloudEvents in
// structured mode, the whole event in the body, so it is all under the
// signature.
const ContentType = "application/cloudevents+json"

// CloudEvent is the body of a webhook request, CloudEvents 1.0 structured
// JSON. An LMS may decode it with any CloudEvents SDK; the extension
// attributes carry what CloudEvents has no attribute for.
type CloudEvent struct {
	// SpecVersion is always "1.0".
	SpecVersion string `json:"specversion"`
	// ID is the event id: the same on every attempt and on a replay from
	// the dead-letter queue, and equal to the webhook-id header.
	ID string `json:"id"`
	// Type is the event type, e.g. "lead.created".
	Type string `json:"type"`
	// Source is "/leadstream/sources/<source>", the webhook source the
	// event arrived at.
	Source string `json:"source"`
	// Subject is the aggregate the event belongs to (Event.aggregate_id).
	Subject string `json:"subject,omitempty"`
	// Time is when the event happened at the provider, else when leadstream
	// received it.
	Time time.Time `json:"time,omitzero"`
	// DataContentType is "application/json" when Data is set.
	DataContentType string `json:"datacontenttype,omitempty"`
	// Data is the protojson (lowerCamelCase names) of the event's typed
	// data, e.g. the Lead of a lead.created.
	Data json.RawMessage `json:"data,omitempty"`
	// Tenant is the extension attribute leadstreamtenant.
	Tenant string `json:"leadstreamtenant,omitempty"`
	// Provider is the extension attribute leadstreamprovider.
	Provider string `json:"leadstreamprovider,omitempty"`
	// Orphan is the extension attribute leadstreamorphan, present (true)
	// only on an event delivered without its causal prerequisite.
	Orphan bool `json:"leadstreamorphan,omitempty"`
	// Missing is the extension attribute leadstreammissing: on an orphan,
	// what it went without (Delivery.Missing), comma-separated, e.g.
	// "lead.invoiced". CloudEvents extensions have no list type.
	Missing string `json:"leadstreammissing,omitempty"`
}

// NewCloudEvent builds the CloudEvent of a delivery. An event without an id
// or type cannot be a CloudEvent: that error wraps adapter.ErrTerminal.
func NewCloudEvent(d *adapter.Delivery) (*CloudEvent, error) {
	if d == nil || d.Event == nil {
		return nil, adapter.Terminal(errors.New("delivery without an event"))
	}
	ev := d.Event
	if ev.GetId() == "" || ev.GetType() == "" {
		return nil, adapter.Terminal(fmt.Errorf("event %q of type %q: a CloudEvent needs both", ev.GetId(), ev.GetType()))
	}
	ce := &CloudEvent{
		SpecVersion: "1.0",
		ID:          ev.GetId(),
		Type:        ev.GetType(),
		Source:      "/leadstream/sources/" + url.PathEscape(ev.GetSource()),
		Subject:     ev.GetAggregateId(),
		Tenant:      ev.GetTenant(),
		Provider:    ev.GetProvider(),
		Orphan:      d.Orphan,
		Missing:     strings.Join(d.Missing, ","),
	}
	switch {
	case ev.GetOccurredAt().IsValid():
		ce.Time = ev.GetOccurredAt().AsTime().UTC()
	case ev.GetReceivedAt().IsValid():
		ce.Time = ev.GetReceivedAt().AsTime().UTC()
	}
	if data := typedData(ev); data != nil {
		b, err := protojson.Marshal(data)
		if err != nil {
			return nil, adapter.Terminal(fmt.Errorf("encoding the data of event %s: %w", ev.GetId(), err))
		}
		ce.DataContentType = "application/json"
		ce.Data = b
	}
	return ce, nil
}

// typedData returns the message set in the event's data oneof, or nil. It
// reads the oneof by reflection so that a data case added to the proto is
// delivered without a change here.
func typedData(ev *leadstreamv1.Event) proto.Message {
	m := ev.ProtoReflect()
	oneof := m.Descriptor().Oneofs().ByName("data")
	if oneof == nil {
		return nil
	}
	field := m.WhichOneof(oneof)
	if field == nil || field.Message() == nil {
		return nil
	}
	return m.Get(field).Message().Interface()
}

// Marshal encodes the CloudEvent compactly. protojson varies its spacing
// from build to build on purpose; re-encoding compacts Data, so the same
// event gives the same bytes from any build of the dispatcher.
func (ce *CloudEvent) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Titles like "Golf & Polo <nieuw>" stay readable in the LMS's logs.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ce); err != nil {
		return nil, fmt.Errorf("encoding cloudevent %s: %w", ce.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
