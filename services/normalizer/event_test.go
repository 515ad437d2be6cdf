package normalizer

import (
	"bytes"
	"context"
	"testing"
	"time"

	cenats "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// TestEventsReadByCloudEventsSDK reads what the normalizer publishes to
// EVENTS with the CloudEvents Go SDK's JetStream protocol, as a downstream
// team would, and checks every attribute against the event in the body.
func TestEventsReadByCloudEventsSDK(t *testing.T) {
	f := newFixture(t, nil)
	f.start()
	want := 0
	for _, smp := range samples {
		f.publishRaw(rawOf(t, smp, ""), "")
		if smp.kind != envelope.KindUnknown {
			want++
		}
	}
	f.waitCount(streams.EVENTS, uint64(want))
	stored := f.events()

	nc, _ := natstest.Connect(t, f.ns)
	consumer, err := cenats.NewConsumerFromConn(nc, streams.EVENTS, "events.>", nil, []nats.SubOpt{nats.DeliverAll()})
	if err != nil {
		t.Fatal(err)
	}
	client, err := cloudevents.NewClient(consumer)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan cloudevents.Event, want)
	done := make(chan error, 1)
	go func() {
		done <- client.StartReceiver(ctx, func(e cloudevents.Event) { got <- e })
	}()

	seen := map[string]bool{}
	for len(seen) < want {
		var e cloudevents.Event
		select {
		case e = <-got:
		case <-ctx.Done():
			t.Fatalf("the SDK received %d of %d events", len(seen), want)
		}
		if seen[e.ID()] {
			t.Fatalf("event %s received twice", e.ID())
		}
		seen[e.ID()] = true
		if err := e.Validate(); err != nil {
			t.Errorf("event %s is not a valid CloudEvent: %v", e.ID(), err)
		}
		var ev leadstreamv1.Event
		if err := proto.Unmarshal(e.Data(), &ev); err != nil {
			t.Fatalf("event %s: data is not a leadstream.v1.Event: %v", e.ID(), err)
		}
		at := ev.GetOccurredAt().AsTime()
		if !ev.GetOccurredAt().IsValid() {
			at = ev.GetReceivedAt().AsTime()
		}
		checks := []struct{ attr, got, want string }{
			{"specversion", e.SpecVersion(), "1.0"},
			{"id", e.ID(), ev.GetId()},
			{"type", e.Type(), ev.GetType()},
			{"source", e.Source(), "/leadstream/sources/" + ev.GetSource()},
			{"subject", e.Subject(), ev.GetAggregateId()},
			{"time", e.Time().UTC().Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339Nano)},
			{"datacontenttype", e.DataContentType(), "application/protobuf;messageType=leadstream.v1.Event"},
			{"leadstreamtenant", str(e.Extensions()["leadstreamtenant"]), "demo-dealer"},
			{"leadstreamprovider", str(e.Extensions()["leadstreamprovider"]), ev.GetProvider()},
		}
		for _, c := range checks {
			if c.got != c.want || c.want == "" {
				t.Errorf("event %s (%s): %s = %q, want %q", e.ID(), ev.GetType(), c.attr, c.got, c.want)
			}
		}
		if len(e.Extensions()) != 2 {
			t.Errorf("event %s: extensions %v, want leadstreamtenant and leadstreamprovider only", e.ID(), e.Extensions())
		}
		// The bytes the SDK hands over are the very body in EVENTS.
		if m := stored[e.ID()]; m == nil || !bytes.Equal(e.Data(), m.Data) {
			t.Errorf("event %s: SDK data differs from the EVENTS body", e.ID())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("StartReceiver: %v", err)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
