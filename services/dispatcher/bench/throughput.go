package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/streams"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// pollEvery is how often the LMS's count is read. The figures do not depend
// on it (the end is when the LMS accepted the last event); it only has to
// cost the cores little.
const pollEvery = 10 * time.Millisecond

// benchTenant and benchSource are the tenant and source of the throughput
// events; the bench adapter filters on neither.
const (
	benchTenant = "bench"
	benchSource = "bench"
)

// errRunEnded reports a dispatcher that stopped before its work was done.
var errRunEnded = errors.New("bench: dispatcher stopped")

// planned is one event of the throughput load.
type planned struct {
	id string
	// agg is the conversation's index; lead says it is its lead.created.
	agg  int
	lead bool
	// k is the event's place among its conversation's, in stream order.
	k int
}

// plan lays out events over aggs conversations round robin, in the order
// they are stored: each conversation's lead.created first, then its chat
// messages. With early, a conversation's first chat message and its lead
// swap places, so the chat arrives first and parks.
func plan(events, aggs int, early bool) []planned {
	out := make([]planned, events)
	for i := range out {
		a, k := i%aggs, i/aggs
		leadAt := 0
		if early && events > aggs+a { // the conversation has a second event
			leadAt = 1
		}
		p := planned{agg: a, k: k, lead: k == leadAt}
		if p.lead {
			p.id = fmt.Sprintf("dbench-%d-lead", a)
		} else {
			p.id = fmt.Sprintf("dbench-%d-chat-%d", a, k)
		}
		out[i] = p
	}
	return out
}

// runThroughput fills EVENTS with o.Events events, then runs a dispatcher
// with the bench adapter until the fake LMS has accepted every one, timed
// from the dispatcher's start to the LMS accepting the last new one.
func runThroughput(ctx context.Context, o *Options, cfg *config.Config, secret string) (*Throughput, error) {
	res := &Throughput{Events: o.Events, Aggregates: o.Aggregates, EarlyChats: o.EarlyChats}
	pt, err := startPart(ctx, o, cfg, secret, "throughput", false)
	if err != nil {
		return nil, err
	}
	defer pt.close()
	j, l := pt.j, pt.lms

	events := plan(o.Events, o.Aggregates, o.EarlyChats)
	o.Step("dispatcher: throughput: storing %d events over %d conversations in EVENTS before the clock starts", len(events), o.Aggregates)
	if err := fill(ctx, j.JS, events); err != nil {
		return nil, err
	}
	svc, reg, err := pt.newDispatcher(ctx, o)
	if err != nil {
		return nil, err
	}

	o.Step("dispatcher: throughput: dispatching them to the fake LMS")
	// The fill's garbage is collected now rather than on the clock.
	runtime.GC()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	if o.CPUProfile != nil {
		if err := pprof.StartCPUProfile(o.CPUProfile); err != nil {
			return nil, fmt.Errorf("bench: CPU profile: %w", err)
		}
	}
	cpu0 := benchkit.ReadCPU()
	start := time.Now()
	go func() { ran <- svc.Run(runCtx) }()
	last, err := awaitLMS(ctx, l, len(events), o.Stall, ran)
	res.CPU = cpu0.Until(benchkit.ReadCPU())
	if o.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err == nil && !o.NoProjection {
		var caughtUp time.Time
		if caughtUp, err = awaitConsumer(ctx, j.JS, projectionDurable, o.Stall); err == nil {
			res.Projection = caughtUp.Sub(start)
		}
	}
	stop()
	if !errors.Is(err, errRunEnded) {
		if runErr := <-ran; runErr != nil && err == nil {
			err = runErr
		}
	}
	if res.Complete, err = benchkit.Completed(err); err != nil {
		return nil, err
	}

	res.Delivered, _ = l.count()
	res.Duplicates = l.duplicates()
	res.BadSignatures = int(l.bad.Load())
	if res.Delivered > 0 {
		res.Elapsed = last.Sub(start)
	}
	res.OutOfOrder = outOfOrder(events, l.positions())
	out, err := readOutcomes(reg)
	if err != nil {
		return nil, err
	}
	res.Orphans, res.Retries, res.DeadLettered = out.orphans, out.retries, out.deadLettered
	return res, nil
}

// verifySecret is the secret the fake LMS verifies with: none unless asked.
func verifySecret(o *Options, secret string) string {
	if o.Verify {
		return secret
	}
	return ""
}

// withLMS is cfg with its one adapter pointing at l.
func withLMS(cfg *config.Config, l *lms) *config.Config {
	c := *cfg
	c.Adapters = []config.Adapter{cfg.Adapters[0]}
	c.Adapters[0].URL = l.url()
	return &c
}

// awaitLMS polls until l has accepted want distinct events and returns when
// it accepted the last. It gives up with benchkit.ErrStalled when nothing new came
// for stall, and with errRunEnded when the dispatcher stopped.
func awaitLMS(ctx context.Context, l *lms, want int, stall time.Duration, ran <-chan error) (time.Time, error) {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	seen, moved := 0, time.Now()
	for {
		n, last := l.count()
		if n >= want {
			return last, nil
		}
		if n != seen {
			seen, moved = n, time.Now()
		}
		if time.Since(moved) > stall {
			return last, fmt.Errorf("%w for %s: the LMS has %d of %d events", benchkit.ErrStalled, stall, n, want)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case err := <-ran:
			return last, fmt.Errorf("%w: %v", errRunEnded, err)
		case <-t.C:
		}
	}
}

// outOfOrder counts the conversations of which the LMS accepted a chat
// message before the lead.created, or without it.
func outOfOrder(events []planned, pos map[string]int) int {
	lead := map[int]int{}
	for _, e := range events {
		if e.lead {
			if p, ok := pos[e.id]; ok {
				lead[e.agg] = p
			}
		}
	}
	bad := map[int]bool{}
	for _, e := range events {
		if e.lead {
			continue
		}
		p, ok := pos[e.id]
		if !ok {
			continue
		}
		if lp, ok := lead[e.agg]; !ok || p < lp {
			bad[e.agg] = true
		}
	}
	return len(bad)
}

// fill stores the planned events in EVENTS as the normalizer does.
func fill(ctx context.Context, js jetstream.JetStream, events []planned) error {
	received := time.Now().UTC()
	return benchkit.Fill(ctx, js, len(events), func(i int) (*nats.Msg, error) { return eventMsg(events[i], received) })
}

// t0 is the provider time of every conversation's lead; its chat messages
// follow a minute apart.
var t0 = time.Date(2026, 11, 20, 10, 15, 0, 0, time.UTC)

// eventMsg is the EVENTS message the normalizer would publish for p: the
// Marktplaats LMS lead and chat samples, with ids of their own, so that
// bodies, EVENTS messages and webhooks have their real sizes.
func eventMsg(p planned, received time.Time) (*nats.Msg, error) {
	conv := fmt.Sprintf("dbench-conversation-%d", p.agg)
	at := t0.Add(time.Duration(p.k) * time.Minute)
	ev := &leadstreamv1.Event{
		Id: p.id, Tenant: benchTenant, Source: benchSource, Provider: config.ProviderMarktplaatsLMS,
		ProviderEventId: p.id, OccurredAt: timestamppb.New(at), ReceivedAt: timestamppb.New(received),
		AggregateId: benchSource + "/conversation/" + conv, PayloadContentType: "application/json",
	}
	var payload any
	if p.lead {
		ev.Type = "lead.created"
		ev.Data = &leadstreamv1.Event_Lead{Lead: &leadstreamv1.Lead{
			LeadId: p.id, ConversationId: conv, Platform: "marktplaats",
			Advertisement: &leadstreamv1.Advertisement{Id: "m2034567890", Title: "Volkswagen Golf 1.5 TSI Highline",
				Url: "https://www.marktplaats.nl/v/auto-s/volkswagen/m2034567890", Price: &leadstreamv1.Money{AmountCents: 1895000, Currency: "EUR"}},
			Buyer:    &leadstreamv1.Person{Name: "Jan de Vries", Email: "jan.devries@example.nl", Phone: "+31612345678"},
			Seller:   &leadstreamv1.Seller{Id: "1234567", ExternalReference: "vestiging-utrecht", SalesAgent: "agent-7"},
			Message:  "Is deze auto nog beschikbaar? Ik wil graag een proefrit maken.",
			TradeIn:  &leadstreamv1.TradeIn{LicensePlate: "12-ABC-3", Make: "Opel", Model: "Astra", Year: 2015, MileageKm: 128000},
			Requests: []string{"testDrive", "financing"}, CreatedAt: timestamppb.New(at),
		}}
		payload = map[string]any{
			"leadId": p.id, "conversationId": conv, "createdAt": at, "platform": "marktplaats",
			"advertisement": map[string]any{"id": "m2034567890", "title": "Volkswagen Golf 1.5 TSI Highline",
				"url": "https://www.marktplaats.nl/v/auto-s/volkswagen/m2034567890", "priceCents": 1895000},
			"buyer":    map[string]any{"name": "Jan de Vries", "email": "jan.devries@example.nl", "phone": "+31612345678"},
			"seller":   map[string]any{"id": "1234567", "externalReference": "vestiging-utrecht", "salesAgent": "agent-7"},
			"message":  "Is deze auto nog beschikbaar? Ik wil graag een proefrit maken.",
			"tradeIn":  map[string]any{"licensePlate": "12-ABC-3", "make": "Opel", "model": "Astra", "year": 2015, "mileageKm": 128000},
			"requests": []string{"testDrive", "financing"},
		}
	} else {
		ev.Type = "chat.message"
		ev.Data = &leadstreamv1.Event_ChatMessage{ChatMessage: &leadstreamv1.ChatMessage{
			MessageId: p.id, ConversationId: conv, AdvertisementId: "m2034567890",
			Sender: leadstreamv1.SenderRole_SENDER_ROLE_BUYER, Text: "Kan ik zaterdag om 10 uur langskomen?", SentAt: timestamppb.New(at),
		}}
		payload = map[string]any{
			"messageId": p.id, "conversationId": conv, "advertisementId": "m2034567890", "sentAt": at,
			"sender": "BUYER", "text": "Kan ik zaterdag om 10 uur langskomen?",
		}
	}
	var err error
	if ev.Payload, err = json.Marshal(payload); err != nil {
		return nil, fmt.Errorf("bench: payload of %s: %w", p.id, err)
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("bench: encoding %s: %w", p.id, err)
	}
	kind, action, _ := strings.Cut(ev.Type, ".")
	return envelope.EventMsg(streams.EventsSubject(kind, action, ev.Tenant, ev.AggregateId), ev, data), nil
}
