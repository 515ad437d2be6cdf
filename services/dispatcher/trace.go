package dispatcher

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/streams"
)

// AdapterTrace is what became of one event at one adapter, from the
// adapter's ordering state of the event's aggregate.
type AdapterTrace struct {
	Adapter string `json:"adapter"`
	// Status is delivered (or given up on: the ordering state counts both
	// as done; a dead letter tells them apart), queued (next in line), parked (waiting for
	// Missing), retrying (Attempts so far, Next), dead_letter_pending (DLQ
	// did not take its letter yet), not_subscribed, or unknown: not in the
	// state (not admitted yet, or delivered long enough ago to have left the
	// bounded list of delivered ids, or dead-lettered: see the letters).
	Status   string    `json:"status"`
	Missing  []string  `json:"missing,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Attempts int       `json:"attempts,omitempty"`
	Next     time.Time `json:"next,omitzero"`
	Log      []string  `json:"log,omitempty"`
}

// Trace reads, for every adapter of cfg, what became of event id of type
// typ and tenant in aggregate agg.
func Trace(ctx context.Context, js jetstream.JetStream, cfg *config.Config, agg, id, typ, tenant string) ([]AdapterTrace, error) {
	kv, err := js.KeyValue(ctx, streams.DispatchBucket)
	if err != nil {
		return nil, fmt.Errorf("dispatch bucket: %w", err)
	}
	st := states{kv: kv}
	var out []AdapterTrace
	for i := range cfg.Adapters {
		a := &cfg.Adapters[i]
		t := AdapterTrace{Adapter: a.Name}
		if !subscribedFunc(a)(typ) || (len(a.Tenants) > 0 && !slices.Contains(a.Tenants, tenant)) {
			t.Status = "not_subscribed"
			out = append(out, t)
			continue
		}
		s, _, err := st.load(ctx, stateKey(a.Name, agg))
		if err != nil {
			return nil, err
		}
		switch i := s.index(id); {
		case slices.Contains(s.Delivered, id):
			t.Status = "delivered"
		case i >= 0:
			e := s.Queue[i]
			t.Since = e.Since
			t.Status = "queued"
			if !s.satisfied(e) {
				t.Status, t.Missing = "parked", missing(s, e)
			}
			if r := s.Retry; r != nil && r.ID == id {
				t.Status, t.Attempts, t.Next, t.Log = "retrying", r.Attempts, r.Next, r.Log
				if r.DeadLetter != "" {
					t.Status = "dead_letter_pending"
				}
			}
		default:
			t.Status = "unknown"
		}
		out = append(out, t)
	}
	return out, nil
}
