package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher"
	"github.com/leadstream/leadstream/services/dispatcher/leads"
	"github.com/leadstream/leadstream/services/normalizer"
)

// webhookTrace is the life of one webhook: received, normalized or
// dead-lettered, and at each adapter; and the state of its lead.
type webhookTrace struct {
	EventID         string `json:"event_id"`
	Source          string `json:"source,omitempty"`
	ProviderEventID string `json:"provider_event_id,omitempty"`
	// Received is its RAW message (known once normalized, or from a
	// dead letter of the normalizer).
	Received *traceRaw `json:"received,omitempty"`
	// Normalized is its EVENTS message.
	Normalized *traceEvent `json:"normalized,omitempty"`
	// DeadLetters are its letters in DLQ, of either stage.
	DeadLetters []traceLetter             `json:"dead_letters,omitempty"`
	Adapters    []dispatcher.AdapterTrace `json:"adapters,omitempty"`
	Lead        *leads.State              `json:"lead,omitempty"`
	Found       bool                      `json:"found"`
}

type traceRaw struct {
	Sequence   uint64    `json:"sequence"`
	Subject    string    `json:"subject"`
	Provider   string    `json:"provider"`
	Kind       string    `json:"kind"`
	KeyID      string    `json:"key_id,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
}

type traceEvent struct {
	Sequence  uint64    `json:"sequence,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	Type      string    `json:"type"`
	Aggregate string    `json:"aggregate"`
	Tenant    string    `json:"tenant"`
	Occurred  time.Time `json:"occurred_at,omitzero"`
}

type traceLetter struct {
	Seq      uint64    `json:"dlq_sequence"`
	Stage    string    `json:"stage"`
	Name     string    `json:"name"`
	Reason   string    `json:"reason"`
	Error    string    `json:"error,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	At       time.Time `json:"at"`
}

func cmdTrace(args []string) error {
	fs := flag.NewFlagSet("trace", flag.ExitOnError)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos := parseArgs(fs, args)
	if err := wantArgs("trace", pos, 1); err != nil {
		return errors.New("usage: leadstream trace <event id | provider event id> [--json]")
	}
	cfg, nc, js, err := opsConn(*path)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := traceWebhook(ctx, js, cfg, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		out, _ := json.MarshalIndent(tr, "", "  ")
		fmt.Println(string(out))
	} else {
		printTrace(os.Stdout, tr)
	}
	if !tr.Found {
		return fmt.Errorf("no trace of %s (an event id, or a provider event id of a configured source)", pos[0])
	}
	return nil
}

// traceWebhook finds what became of id: a leadstream event id (the 202's
// id, the LMS's webhook-id), or a provider's own event id, tried for every
// configured source.
func traceWebhook(ctx context.Context, js jetstream.JetStream, cfg *config.Config, id string) (*webhookTrace, error) {
	type candidate struct{ source, eventID, providerID string }
	var cands []candidate
	if _, err := uuid.Parse(id); err == nil {
		for _, s := range cfg.Sources {
			cands = append(cands, candidate{source: s.Name, eventID: id})
		}
	}
	for _, s := range cfg.Sources {
		cands = append(cands, candidate{source: s.Name, eventID: eventid.New(s.Name, id), providerID: id})
	}
	letters, err := dlq.List(ctx, js, dlq.Filter{})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, err
	}
	// A normalized event first (its dedupe key names its source), then one
	// known only from dead letters.
	for _, lettersOnly := range []bool{false, true} {
		for _, c := range cands {
			tr := &webhookTrace{EventID: c.eventID, Source: c.source, ProviderEventID: c.providerID}
			seq, normalized, err := normalizer.EventSequence(ctx, js, c.source, c.eventID)
			if err != nil {
				return nil, err
			}
			if normalized == lettersOnly {
				continue
			}
			for _, l := range letters {
				if !letterOf(l, c.eventID) {
					continue
				}
				tr.DeadLetters = append(tr.DeadLetters, traceLetter{Seq: l.Seq, Stage: l.Stage, Name: l.Name, Reason: l.Reason, Error: l.Error, Attempts: l.Attempts, At: l.At})
				if l.Stage == dlq.StageNormalize && tr.Received == nil {
					tr.Received = rawInfo(ctx, js, l.Sequence)
					tr.Source = l.Header.Get(envelope.HdrSource)
				}
			}
			if lettersOnly && len(tr.DeadLetters) == 0 {
				continue
			}
			tr.Found = true
			if seq > 0 {
				if err := traceEvents(ctx, js, cfg, tr, seq); err != nil {
					return nil, err
				}
			}
			return tr, nil
		}
	}
	return &webhookTrace{EventID: id}, nil
}

// traceEvents fills in the EVENTS message at seq, the RAW message it came
// from, every adapter's view and the lead's state.
func traceEvents(ctx context.Context, js jetstream.JetStream, cfg *config.Config, tr *webhookTrace, seq uint64) error {
	st, err := js.Stream(ctx, streams.EVENTS)
	if err != nil {
		return err
	}
	m, err := st.GetMsg(ctx, seq)
	if err != nil {
		return fmt.Errorf("EVENTS sequence %d: %w", seq, err)
	}
	var ev leadstreamv1.Event
	if err := proto.Unmarshal(m.Data, &ev); err != nil || ev.Id != tr.EventID {
		return fmt.Errorf("EVENTS sequence %d is not event %s", seq, tr.EventID)
	}
	tr.ProviderEventID = ev.ProviderEventId
	tr.Normalized = &traceEvent{Sequence: seq, Subject: m.Subject, Type: ev.Type, Aggregate: ev.AggregateId, Tenant: ev.Tenant}
	if t := ev.GetOccurredAt(); t != nil {
		tr.Normalized.Occurred = t.AsTime()
	}
	if r := ev.GetRawRef(); r != nil && tr.Received == nil {
		tr.Received = rawInfo(ctx, js, r.GetSequence())
	}
	if tr.Adapters, err = dispatcher.Trace(ctx, js, cfg, ev.AggregateId, ev.Id, ev.Type, ev.Tenant); err != nil {
		return err
	}
	for i, a := range tr.Adapters {
		for _, l := range tr.DeadLetters {
			// The ordering state counts an event given up on as done, as
			// one delivered: its letter (until replayed) says which.
			if l.Stage == dlq.StageDeliver && l.Name == a.Adapter && (a.Status == "unknown" || a.Status == "delivered") {
				tr.Adapters[i].Status = "dead_lettered"
			}
		}
	}
	if lead, err := leadState(ctx, js, ev.AggregateId); err == nil {
		tr.Lead = lead
	}
	return nil
}

// letterOf reports whether l is a letter of event id: a normalizer's
// carries the RAW headers, a dispatcher's the EVENTS headers.
func letterOf(l *dlq.Letter, id string) bool {
	if l.Header.Get(envelope.HdrEventID) == id {
		return true
	}
	v, _ := envelope.HeaderValue(l.Header, envelope.HdrCEID)
	return v == id
}

func rawInfo(ctx context.Context, js jetstream.JetStream, seq uint64) *traceRaw {
	st, err := js.Stream(ctx, streams.RAW)
	if err != nil {
		return nil
	}
	m, err := st.GetMsg(ctx, seq)
	if err != nil {
		return &traceRaw{Sequence: seq}
	}
	r := &traceRaw{Sequence: seq, Subject: m.Subject, ReceivedAt: m.Time}
	if raw, err := envelope.FromMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}); err == nil {
		r.Provider, r.Kind, r.KeyID = raw.Provider, raw.Kind, raw.KeyID
	}
	return r
}

// serveTrace answers GET /trace/{id} with the trace of one webhook as JSON:
// 404 when nothing is known of it.
func serveTrace(w http.ResponseWriter, r *http.Request, js jetstream.JetStream, cfg *config.Config) {
	w.Header().Set("Content-Type", "application/json")
	if cfg == nil {
		http.Error(w, `{"error":"no config"}`, http.StatusNotFound)
		return
	}
	tr, err := traceWebhook(r.Context(), js, cfg, r.PathValue("id"))
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	if !tr.Found {
		w.WriteHeader(http.StatusNotFound)
	}
	_ = json.NewEncoder(w).Encode(tr)
}

func printTrace(w io.Writer, tr *webhookTrace) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	fmt.Fprintf(tw, "event\t%s\n", tr.EventID)
	if tr.Source != "" {
		fmt.Fprintf(tw, "source\t%s (provider event id %s)\n", tr.Source, orDash(tr.ProviderEventID))
	}
	if r := tr.Received; r != nil {
		fmt.Fprintf(tw, "received\t%s  RAW #%d  %s %s  key %s\n", r.ReceivedAt.UTC().Format(time.RFC3339), r.Sequence, r.Provider, r.Kind, orDash(r.KeyID))
	}
	if e := tr.Normalized; e != nil {
		fmt.Fprintf(tw, "normalized\tEVENTS #%d  %s  aggregate %s\n", e.Sequence, e.Type, e.Aggregate)
	}
	for _, l := range tr.DeadLetters {
		fmt.Fprintf(tw, "dead-lettered\t%s %s: %s (DLQ #%d, %d attempts) %s\n", l.Stage, l.Name, l.Reason, l.Seq, l.Attempts, l.Error)
	}
	for _, a := range tr.Adapters {
		line := a.Status
		switch a.Status {
		case "parked":
			line += " behind " + strings.Join(a.Missing, ", ") + " since " + a.Since.UTC().Format(time.RFC3339)
		case "retrying", "dead_letter_pending":
			line += fmt.Sprintf(", %d attempts, next %s", a.Attempts, a.Next.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(tw, "adapter %s\t%s\n", a.Adapter, line)
		for _, l := range a.Log {
			fmt.Fprintf(tw, "\t  %s\n", l)
		}
	}
	if tr.Lead != nil {
		status, _ := json.Marshal(tr.Lead.Status)
		fmt.Fprintf(tw, "lead\t%s\n", status)
	}
	if !tr.Found {
		fmt.Fprintf(tw, "\tnot found: neither normalized nor dead-lettered (yet)\n")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
