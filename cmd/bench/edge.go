package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/leadstream/leadstream/cmd/leadstream/pipeline"
	"github.com/leadstream/leadstream/pkg/benchkit"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natsconn"
	dbench "github.com/leadstream/leadstream/services/dispatcher/bench"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// sender sends unique signed samples round robin to an edge over HTTP, as
// the providers send them.
type sender struct {
	tr      *http.Transport
	client  *http.Client
	base    string
	signer  *simulate.Signer
	samples []sample
	next    atomic.Uint64
	// spread gives each round over the samples aggregates of its own.
	spread bool
}

// newSender sends to the edge at base with up to workers requests in
// flight, each kept waiting at most timeout.
func newSender(base string, signer *simulate.Signer, samples []sample, workers int, timeout time.Duration, spread bool) *sender {
	// Every worker keeps its connection: a handshake per request would add
	// the kernel's work to the pipeline's.
	tr := &http.Transport{MaxIdleConns: 2 * workers, MaxIdleConnsPerHost: 2 * workers, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &sender{tr: tr, client: &http.Client{Transport: tr, Timeout: timeout}, base: base, signer: signer, samples: samples, spread: spread}
}

// send posts the next sample with a provider event id of its own and
// returns the event id of the edge's 202, when the signed request went
// out, and the sample's name.
func (e *sender) send(ctx context.Context) (dbench.Receipt, error) {
	n := e.next.Add(1) - 1
	round := n / uint64(len(e.samples))
	s := &e.samples[n%uint64(len(e.samples))]
	body := simulate.Unique(s.Provider, s.Body, fmt.Sprintf("e2e-%d", n))
	if e.spread {
		body = spreadAggregates(s.Provider, body, fmt.Sprintf("r%d", round))
	}
	r := dbench.Receipt{Label: s.Name}
	req, err := e.signer.Request(ctx, e.base, s.src, s.Name, body)
	if err != nil {
		return r, fmt.Errorf("signing %s: %w", s.Name, err)
	}
	// After signing: an RSA signature is the provider's work, not the
	// pipeline's.
	r.Sent = time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		return r, err
	}
	ans, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		return r, fmt.Errorf("reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return r, fmt.Errorf("%s: edge answered %d %s", s.Name, resp.StatusCode, bytes.TrimSpace(ans))
	}
	var a struct {
		ID        string `json:"id"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := json.Unmarshal(ans, &a); err != nil || a.ID == "" {
		return r, fmt.Errorf("%s: edge answer without an id: %s", s.Name, bytes.TrimSpace(ans))
	}
	if a.Duplicate {
		return r, fmt.Errorf("%s: edge answered duplicate for %s: the load is not unique", s.Name, a.ID)
	}
	r.EventID = a.ID
	return r, nil
}

// servedEdge is the real edge served on loopback in this process, against
// a bench's JetStream, and a sender loading it.
type servedEdge struct {
	*sender
	nc     *nats.Conn
	stop   context.CancelFunc
	served chan error
}

// serveEdge serves the real edge on loopback against the JetStream at url,
// for a load of kit.Concurrency requests in flight at most, spread or not
// (see sender.spread).
func serveEdge(kit benchkit.Options, signer *simulate.Signer, samples []sample, url string, spread bool) (*servedEdge, error) {
	nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "leadstream-bench-e2e-edge", Logger: kit.Logger})
	if err != nil {
		return nil, err
	}
	p, err := pipeline.New(context.Background(), pipeline.Options{Config: kit.Config, Services: pipeline.Services{Edge: true},
		Conn: pipeline.Conn{URL: url, JetStream: js}, Logger: kit.Logger})
	if err != nil {
		nc.Close()
		return nil, err
	}
	srv := p.Edge
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		nc.Close()
		return nil, fmt.Errorf("edge listener: %w", err)
	}
	// Not ctx: on interrupt the requests in flight still get answers.
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	timeout := 2*kit.Config.PublishTimeout.Duration + 10*time.Second
	s := newSender("http://"+ln.Addr().String(), signer, samples, kit.Concurrency, timeout, spread)
	return &servedEdge{sender: s, nc: nc, stop: stop, served: served}, nil
}

// edgeFor is a bench's StartEdge: it serves the edge (serveEdge) and hands
// it to the bench as as makes it.
func edgeFor[E any](kit benchkit.Options, signer *simulate.Signer, samples []sample, spread bool, as func(*servedEdge) E) func(context.Context, string) (E, error) {
	return func(_ context.Context, url string) (E, error) {
		e, err := serveEdge(kit, signer, samples, url, spread)
		if err != nil {
			var none E
			return none, err
		}
		return as(e), nil
	}
}

// Close stops serving, after the requests in flight are answered.
func (e *servedEdge) Close() error {
	e.stop()
	err := <-e.served
	e.tr.CloseIdleConnections()
	e.nc.Close()
	return err
}

// normalizerEdge is a servedEdge as the normalizer bench's Edge.
type normalizerEdge struct{ *servedEdge }

// Send posts the next sample and returns the event id of the edge's 202.
func (e normalizerEdge) Send(ctx context.Context) (string, error) {
	r, err := e.send(ctx)
	return r.EventID, err
}

// dispatcherEdge is a servedEdge as the dispatcher bench's Edge, which also
// wants to know when each request went out and what it was.
type dispatcherEdge struct{ *servedEdge }

// Send posts the next sample; see sender.send.
func (e dispatcherEdge) Send(ctx context.Context) (dbench.Receipt, error) { return e.send(ctx) }

// spreadAggregates returns body with the ids the normalizer builds causal
// aggregates from made unique by suffix: the Marktplaats LMS conversation,
// and the Offerte Adviseur lead and invoice (in every field that names
// them, so that a lead's status changes and an invoice's payment still
// find their lead and invoice). With the same suffix for a whole round over
// the samples, each round is a conversation, a lead and an invoice of its
// own, as real traffic spreads over many; with the samples' fixed ids,
// every event of the load would queue behind the one before it in a single
// aggregate, and every dependent after the first would find its
// prerequisite long delivered. Other providers' aggregates have no causal
// rules and are left alone.
func spreadAggregates(provider string, body []byte, suffix string) []byte {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	// Numbers as written: 12345 must stay "12345", not 12345.0.
	dec.UseNumber()
	if dec.Decode(&m) != nil {
		return body
	}
	tag := func(v any) string { return fmt.Sprint(v, "-", suffix) }
	switch provider {
	case config.ProviderMarktplaatsLMS:
		if v, ok := m["conversationId"]; ok {
			m["conversationId"] = tag(v)
		}
	case config.ProviderMarktplaatsAPI:
		// Bids and questions are about an advertisement: one per round, as
		// many buyers bid on many ads (one ad taking a third of all traffic
		// is a hot aggregate: see README, Performance).
		if d, ok := m["eventData"].(map[string]any); ok {
			if v, ok := d["advertisementItemId"]; ok {
				d["advertisementItemId"] = tag(v)
			}
		}
	case config.ProviderOfferteAdviseur:
		p, ok := m["payload"].(map[string]any)
		if !ok {
			return body
		}
		// payload.id is the lead's id in lead events and the invoice's in
		// invoice events: tagging both the same way keeps either right.
		for _, k := range []string{"id", "lead_id", "invoice_id"} {
			if v, ok := p[k]; ok {
				p[k] = tag(v)
			}
		}
		if ids, ok := p["lead_ids"].([]any); ok {
			for i, v := range ids {
				ids[i] = tag(v)
			}
		}
	default:
		return body
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}
