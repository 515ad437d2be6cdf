package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/testvectors"
	"github.com/leadstream/leadstream/services/edge/verify"
)

// harness is an edge serving on 127.0.0.1 against a real JetStream.
type harness struct {
	t      *testing.T
	vec    *testvectors.File
	cfg    *config.Config
	js     jetstream.JetStream
	edge   *Server
	url    string
	client *http.Client
	cancel context.CancelFunc
	served chan error
}

func newHarness(t *testing.T, ns *server.Server, mod func(*config.Config)) *harness {
	t.Helper()
	return newHarnessVia(t, ns.ClientURL(), mod)
}

// newHarnessVia connects the edge to NATS at url, which may be a proxy in
// front of the server.
func newHarnessVia(t *testing.T, url string, mod func(*config.Config)) *harness {
	t.Helper()
	return newHarnessLogging(t, url, mod, zap.NewNop())
}

// newHarnessLogging is newHarnessVia with the edge logging to log.
func newHarnessLogging(t *testing.T, url string, mod func(*config.Config), log *zap.Logger) *harness {
	t.Helper()
	vec := testvectors.Load(t)
	cfg, err := config.Parse([]byte(vec.ConfigYAML()), vec.Dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PublishTimeout = config.Dur(time.Second)
	if mod != nil {
		mod(cfg)
	}
	nc, js, err := natsconn.Connect(url, natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := streams.Ensure(context.Background(), js, streams.RawConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(vec.Vectors[0].Now, 0)
	e, err := New(Options{Config: cfg, JetStream: js, Logger: log, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, vec: vec, cfg: cfg, js: js, edge: e, url: "http://" + ln.Addr().String(),
		client: &http.Client{Timeout: 10 * time.Second}, cancel: cancel, served: make(chan error, 1)}
	go func() { h.served <- e.Serve(ctx, ln) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	if err := <-h.served; err != nil {
		h.t.Errorf("Serve: %v", err)
	}
	h.served <- nil // a second stop finds it stopped
}

type answer struct {
	status     int
	header     http.Header
	ID         string `json:"id"`
	Duplicate  bool   `json:"duplicate"`
	Error      string `json:"error"`
	Reason     string `json:"reason"`
	rawPayload string
}

func (h *harness) do(req *http.Request) answer {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, rawPayload: string(b)}
	_ = json.Unmarshal(b, &a)
	return a
}

func (h *harness) send(v testvectors.Vector) answer {
	h.t.Helper()
	req, err := http.NewRequest(v.Method, h.url+v.Target(), bytes.NewReader(v.Body()))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, val := range v.Headers {
		req.Header.Set(k, val)
	}
	return h.do(req)
}

func (h *harness) post(path string, body []byte, headers ...string) answer {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return h.do(req)
}

// rawMsgs returns every message in RAW.
func rawMsgs(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, streams.RAW)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("RAW seq %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// wantMsgID is the Nats-Msg-Id a vector must be stored under, read from its
// body independently of the edge: source + the provider's event id, or the
// body's SHA-256 where the provider sends none.
func wantMsgID(t *testing.T, v testvectors.Vector) string {
	body := v.Body()
	if v.Provider == config.ProviderLokalebasen {
		sum := sha256.Sum256(body)
		return v.Source + ":sha256:" + hex.EncodeToString(sum[:])
	}
	var p struct{ ID, LeadID, MessageID string }
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%s: %v", v.Name, err)
	}
	for _, id := range []string{p.LeadID, p.MessageID, p.ID} {
		if id != "" {
			return v.Source + ":" + id
		}
	}
	t.Fatalf("%s: no id in body", v.Name)
	return ""
}

func TestVectors(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), nil)
	want := map[string]testvectors.Vector{} // Nats-Msg-Id -> first vector accepted with it
	ids := map[string]string{}              // Nats-Msg-Id -> event id answered
	for _, v := range h.vec.Vectors {
		a := h.send(v)
		if a.status != v.WantStatus {
			t.Errorf("%s: status %d, want %d (%s)", v.Name, a.status, v.WantStatus, a.rawPayload)
			continue
		}
		if v.WantStatus != http.StatusAccepted {
			if a.Reason == "" || strings.Contains(a.rawPayload, "{") && strings.Contains(a.rawPayload, `"leadId"`) {
				t.Errorf("%s: 401 must give a short reason and never echo the body: %s", v.Name, a.rawPayload)
			}
			continue
		}
		id := wantMsgID(t, v)
		_, seen := want[id]
		if a.Duplicate != seen {
			t.Errorf("%s: duplicate=%v, want %v", v.Name, a.Duplicate, seen)
		}
		if prev, ok := ids[id]; ok && prev != a.ID {
			t.Errorf("%s: answered id %s, the same event earlier got %s", v.Name, a.ID, prev)
		}
		if !seen {
			want[id], ids[id] = v, a.ID
		}
	}

	msgs := rawMsgs(t, h.js)
	if len(msgs) != len(want) {
		t.Fatalf("RAW holds %d messages, want %d (each accepted event once)", len(msgs), len(want))
	}
	for _, m := range msgs {
		id := m.Header.Get(nats.MsgIdHdr)
		v, ok := want[id]
		if !ok {
			t.Errorf("RAW holds unexpected Nats-Msg-Id %q", id)
			continue
		}
		delete(want, id)
		if !bytes.Equal(m.Data, v.Body()) {
			t.Errorf("%s: RAW body differs from the request body", v.Name)
		}
		if got := m.Header.Get(envelope.HdrEventID); got != ids[id] {
			t.Errorf("%s: RAW event id %s, answered %s", v.Name, got, ids[id])
		}
		raw, err := envelope.FromMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if m.Subject != raw.Subject() || raw.Source != v.Source || raw.Provider != v.Provider || raw.Tenant != "t1" {
			t.Errorf("%s: envelope %s %+v", v.Name, m.Subject, raw)
		}
		// The signature headers travel with the body, so a replay can re-verify.
		for k := range v.Headers {
			if k == "content-type" {
				continue
			}
			if raw.Signature.Get(k) != v.Headers[k] {
				t.Errorf("%s: RAW lacks signature header %s", v.Name, k)
			}
		}
	}
	for id := range want {
		t.Errorf("RAW lacks Nats-Msg-Id %s", id)
	}
	kinds := map[string]string{}
	for _, m := range msgs {
		kinds[m.Header.Get(envelope.HdrProviderEventID)] = m.Header.Get(envelope.HdrKind)
	}
	for id, kind := range map[string]string{"id": "unknown", "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f": "call", "9a3c1e77-52b4-4d0e-b1f8-3c2d6e8f0a45": "chat"} {
		if kinds[id] != kind {
			t.Errorf("event %s: kind %q, want %q", id, kinds[id], kind)
		}
	}

	// A provider's redelivery of everything: 202 duplicate, RAW does not grow.
	for _, v := range h.vec.Vectors {
		if v.WantStatus != http.StatusAccepted {
			continue
		}
		if a := h.send(v); a.status != http.StatusAccepted || !a.Duplicate {
			t.Errorf("%s again: status %d duplicate %v, want 202 true", v.Name, a.status, a.Duplicate)
		}
	}
	if n := len(rawMsgs(t, h.js)); n != len(msgs) {
		t.Fatalf("after redelivery RAW holds %d, want %d", n, len(msgs))
	}
}

func vectorNamed(t *testing.T, f *testvectors.File, name string) testvectors.Vector {
	for _, v := range f.Vectors {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no vector %s", name)
	return testvectors.Vector{}
}

func TestStatuses(t *testing.T) {
	ns := natstest.RunServer(t)
	h := newHarness(t, ns, func(c *config.Config) {
		c.MaxBodyBytes = 4096
		c.Sources = append(c.Sources, config.Source{Name: "lb-office", Provider: config.ProviderLokalebasen, Tenant: "t2",
			Token: "office-token-123", Allow: mustPrefixes(t, "10.0.0.0/8")})
	})
	token := h.vec.Secrets.LokalebasenToken
	enquiry := vectorNamed(t, h.vec, "lokalebasen-enquiry-created-ok").Body()
	bidSig := vectorNamed(t, h.vec, "mpapi-bid-placed-ok").Headers["X-Ecg-Signature"]
	bid := vectorNamed(t, h.vec, "mpapi-bid-placed-ok").Body()

	cases := []struct {
		name   string
		do     func() answer
		status int
		reason string
	}{
		{"unknown source", func() answer { return h.post("/hooks/nope", enquiry) }, 404, ""},
		{"token on a signed source", func() answer { return h.post("/hooks/mp-api/x", bid, "X-Ecg-Signature", bidSig) }, 404, ""},
		{"not POST", func() answer {
			req, _ := http.NewRequest(http.MethodGet, h.url+"/hooks/mp-api", nil)
			return h.do(req)
		}, 405, ""},
		{"PUT", func() answer {
			req, _ := http.NewRequest(http.MethodPut, h.url+"/hooks/mp-api", bytes.NewReader(bid))
			return h.do(req)
		}, 405, ""},
		{"too large by length", func() answer { return h.post("/hooks/mp-api", make([]byte, 5000), "X-Ecg-Signature", bidSig) }, 413, ""},
		{"too large chunked", func() answer {
			req, _ := http.NewRequest(http.MethodPost, h.url+"/hooks/mp-api", io.MultiReader(bytes.NewReader(make([]byte, 5000))))
			req.ContentLength = -1
			req.Header.Set("X-Ecg-Signature", bidSig) // else refused before the body
			return h.do(req)
		}, 413, ""},
		{"request target too long", func() answer {
			return h.post("/hooks/mp-api?"+strings.Repeat("q", 1100), bid, "X-Ecg-Signature", bidSig)
		}, 414, ""},
		{"bearer token", func() answer { return h.post("/hooks/lokalebasen", enquiry, "Authorization", "Bearer "+token) }, 202, ""},
		{"wrong bearer token", func() answer {
			return h.post("/hooks/lokalebasen", enquiry, "Authorization", "Bearer lb_not_the_token")
		}, 401, "bad_token"},
		{"ip not allowed", func() answer { return h.post("/hooks/lb-office/office-token-123", enquiry) }, 403, "forbidden_ip"},
		{"missing signature", func() answer { return h.post("/hooks/mp-api", bid) }, 401, "missing_signature"},
		{"authentic but unparseable", func() answer {
			body := []byte("this is not json")
			return h.post("/hooks/mp-api", body, "X-Ecg-Signature", verify.HMACHex([]byte(h.vec.Secrets.MPAPI), body))
		}, 202, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := c.do()
			if a.status != c.status {
				t.Fatalf("status %d, want %d: %s", a.status, c.status, a.rawPayload)
			}
			if a.Reason != c.reason {
				t.Fatalf("reason %q, want %q", a.Reason, c.reason)
			}
			if c.status == 405 && (a.header.Get("Allow") != "POST" || a.header.Get("Content-Type") != "application/json" || a.Error == "") {
				t.Fatalf("405 with Allow %q, Content-Type %q, error %q; want POST, a JSON body with an error", a.header.Get("Allow"), a.header.Get("Content-Type"), a.Error)
			}
		})
	}
	// The unparseable body is stored, as kind unknown, for the normalizer to dead-letter.
	var unknown int
	for _, m := range rawMsgs(t, h.js) {
		if m.Subject == "raw.marktplaats-api.unknown.mp-api" && string(m.Data) == "this is not json" {
			unknown++
		}
	}
	if unknown != 1 {
		t.Fatalf("RAW holds %d unparseable bodies, want 1", unknown)
	}
}

func mustPrefixes(t *testing.T, cidrs ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestOverloaded: with JetStream frozen, a request committing holds the only
// in-flight slot; the next authentic request gets 429 with Retry-After, the
// gauge counts only the request that holds a slot, and once JetStream answers
// again the first request is acknowledged.
func TestOverloaded(t *testing.T) {
	ns := natstest.RunServer(t)
	px := natstest.NewProxy(t, ns.Addr().String())
	h := newHarnessVia(t, px.URL(), func(c *config.Config) {
		c.MaxInFlight = 1
		c.PublishTimeout = config.Dur(30 * time.Second)
	})
	first := make(chan answer, 1)
	px.Freeze()
	go func() { first <- h.send(vectorNamed(t, h.vec, "mpapi-bid-placed-ok")) }()
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := len(h.edge.slots); n != 1 {
			return fmt.Errorf("in flight %d", n)
		}
		return nil
	})
	a := h.send(vectorNamed(t, h.vec, "offerte-lead-sold-ok"))
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("second request: %d Retry-After %q, want 429 with Retry-After", a.status, a.header.Get("Retry-After"))
	}
	m := h.metrics()
	for _, want := range []string{
		`leadstream_edge_in_flight 1`,
		`leadstream_edge_requests_total{outcome="overloaded",source="offerte"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	px.Thaw()
	if a := <-first; a.status != http.StatusAccepted {
		t.Fatalf("first request: %d %s, want 202", a.status, a.rawPayload)
	}
	if m := h.metrics(); !strings.Contains(m, "leadstream_edge_in_flight 0") {
		t.Errorf("in-flight gauge not back to 0")
	}
}

func (h *harness) metrics() string {
	h.t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestGracefulShutdown: a request in flight when shutdown starts is still
// answered after its PubAck, and its body is in RAW.
func TestGracefulShutdown(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), nil)
	v := vectorNamed(t, h.vec, "offerte-lead-sold-ok")
	pr, pw := io.Pipe()
	first := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/hooks/offerte", pr)
		req.ContentLength = int64(len(v.Body()))
		req.Header.Set("X-Offerte-Adviseur-Signature", v.Headers["x-offerte-adviseur-signature"])
		first <- h.do(req)
	}()
	_, _ = pw.Write(v.Body()[:5])
	natstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if h.edge.readers.Load() != 1 {
			return fmt.Errorf("request not reading its body yet")
		}
		return nil
	})
	h.cancel()
	// New connections are refused once shutdown has begun.
	natstest.CheckFor(t, 5*time.Second, 5*time.Millisecond, func() error {
		if _, err := http.Get(h.url + "/healthz"); err == nil {
			return fmt.Errorf("still accepting")
		}
		return nil
	})
	_, _ = pw.Write(v.Body()[5:])
	pw.Close()
	if a := <-first; a.status != http.StatusAccepted {
		t.Fatalf("in-flight request: %d, want 202", a.status)
	}
	if err := <-h.served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	h.served <- nil
	if n := len(rawMsgs(t, h.js)); n != 1 {
		t.Fatalf("RAW holds %d, want 1", n)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), nil)
	h.send(vectorNamed(t, h.vec, "mpapi-bid-placed-ok"))
	h.send(vectorNamed(t, h.vec, "mpapi-bid-placed-wrong-secret"))
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		resp, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`leadstream_edge_requests_total{outcome="accepted",source="mp-api"} 1`,
		`leadstream_edge_requests_total{outcome="unauthorized",source="mp-api"} 1`,
		`leadstream_edge_verify_failures_total{reason="bad_signature",source="mp-api"} 1`,
		`leadstream_edge_publish_seconds_count 1`,
		`leadstream_edge_in_flight 0`,
		// Known label values exist at 0 before their first increment.
		`leadstream_edge_verify_failures_total{reason="clock_skew",source="mp-leads"} 0`,
		`leadstream_edge_verify_failures_total{reason="bad_token",source="lokalebasen"} 0`,
		`leadstream_edge_requests_total{outcome="unavailable",source="offerte"} 0`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// RAW deleted: not ready, since nothing could be acknowledged.
	if err := h.js.DeleteStream(context.Background(), streams.RAW); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(h.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz without RAW: %d, want 503", resp.StatusCode)
	}
}

// TestJetStreamDown: with JetStream stopped the edge answers 503 with
// Retry-After and acknowledges nothing; restarted on the same store, RAW
// still holds everything acknowledged before, and intake resumes.
func TestJetStreamDown(t *testing.T) {
	dir := t.TempDir()
	ns := natstest.RunServerOnDir(t, dir, "127.0.0.1:0")
	addr := ns.Addr().String()
	h := newHarness(t, ns, nil)
	acked := map[string]bool{}
	for _, v := range h.vec.Vectors {
		if v.WantStatus == http.StatusAccepted {
			if a := h.send(v); a.status == http.StatusAccepted {
				acked[a.ID] = true
			}
		}
	}
	ns.Shutdown()
	ns.WaitForShutdown()

	fresh := vectorNamed(t, h.vec, "mpapi-bid-closed-ok")
	body := []byte(`{"id":"during-outage","eventType":"BidPlacedEvent","eventData":{}}`)
	a := h.post("/hooks/mp-api", body, "X-Ecg-Signature", verify.HMACHex([]byte(h.vec.Secrets.MPAPI), body))
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Fatalf("JetStream down: %d Retry-After %q, want 503 with Retry-After", a.status, a.header.Get("Retry-After"))
	}
	resp, err := http.Get(h.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while JetStream is down: %d, want 503", resp.StatusCode)
	}

	natstest.RunServerOnDir(t, dir, addr)
	natstest.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get(h.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz %d", resp.StatusCode)
		}
		return nil
	})
	msgs := rawMsgs(t, h.js)
	for _, m := range msgs {
		delete(acked, m.Header.Get(envelope.HdrEventID))
		if m.Header.Get(nats.MsgIdHdr) == "mp-api:during-outage" {
			t.Errorf("the request answered 503 was stored")
		}
	}
	if len(acked) > 0 {
		t.Fatalf("%d acknowledged events missing from RAW after restart", len(acked))
	}
	if a := h.send(fresh); a.status != http.StatusAccepted || !a.Duplicate {
		t.Fatalf("after restart: %d duplicate=%v, want 202 duplicate (stored before the outage)", a.status, a.Duplicate)
	}
	if a := h.post("/hooks/mp-api", body, "X-Ecg-Signature", verify.HMACHex([]byte(h.vec.Secrets.MPAPI), body)); a.status != http.StatusAccepted || a.Duplicate {
		t.Fatalf("retry after restart: %d duplicate=%v, want 202 new", a.status, a.Duplicate)
	}
}

// TestPublicPath: behind a proxy that rewrites paths, a source's
// public_path is the request target the provider signed.
func TestPublicPath(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), func(c *config.Config) { c.Sources[0].PublicPath = "/hooks/elsewhere" })
	other := vectorNamed(t, h.vec, "lms-lead-other-path") // signed for /hooks/elsewhere
	if a := h.send(other); a.status != http.StatusAccepted {
		t.Fatalf("signed for the public path: %d %s, want 202", a.status, a.rawPayload)
	}
	if a := h.send(vectorNamed(t, h.vec, "lms-chat-ok")); a.status != http.StatusUnauthorized {
		t.Fatalf("signed for the internal path: %d, want 401", a.status)
	}
}

// TestRawHoldsNoToken: a Lokalebasen token, in the path, a query or a bearer
// header, is kept nowhere in RAW: the envelope's path is the source's route,
// and only the headers the source's verifier checks are copied.
func TestRawHoldsNoToken(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), nil)
	tok := h.vec.Secrets.LokalebasenToken
	enquiry := func(id string) []byte { return []byte(`{"type":"enquiry_created","id":"` + id + `"}`) }
	for i, c := range []struct {
		path    string
		headers []string
	}{
		{"/hooks/lokalebasen/" + tok, nil},
		{"/hooks/lokalebasen/" + tok + "?token=" + tok + "&x=1", nil},
		{"/hooks/lokalebasen", []string{"Authorization", "Bearer " + tok}},
		{"/hooks/lokalebasen?access_token=" + tok, []string{"Authorization", "Bearer " + tok}},
	} {
		if a := h.post(c.path, enquiry(fmt.Sprint("enquiry-", i)), c.headers...); a.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", c.path, a.status, a.rawPayload)
		}
	}
	// A signed source sent headers another provider signs with, and a bearer.
	bid := vectorNamed(t, h.vec, "mpapi-bid-placed-ok")
	if a := h.post("/hooks/mp-api", bid.Body(), "X-Ecg-Signature", bid.Headers["X-Ecg-Signature"],
		"Signature", "keyId=\"x\",signature=\"00\"", "Digest", "SHA-256=00", "Authorization", "Bearer "+tok); a.status != http.StatusAccepted {
		t.Fatalf("mp-api: %d %s", a.status, a.rawPayload)
	}

	msgs := rawMsgs(t, h.js)
	if len(msgs) != 5 {
		t.Fatalf("RAW holds %d, want 5", len(msgs))
	}
	for _, m := range msgs {
		src := m.Header.Get(envelope.HdrSource)
		for k, vs := range m.Header {
			for _, v := range vs {
				if strings.Contains(v, tok) || strings.Contains(k, tok) {
					t.Errorf("%s: RAW header %s carries the token", src, k)
				}
			}
		}
		if strings.Contains(m.Subject, tok) || bytes.Contains(m.Data, []byte(tok)) {
			t.Errorf("%s: RAW subject or body carries the token", src)
		}
		switch src {
		case "lokalebasen":
			if p := m.Header.Get(envelope.HdrPath); p != "/hooks/lokalebasen" {
				t.Errorf("lokalebasen: path %q, want /hooks/lokalebasen", p)
			}
		case "mp-api":
			var copied []string
			for k := range m.Header {
				if strings.HasPrefix(k, envelope.HdrSigPrefix) {
					copied = append(copied, k)
				}
			}
			if len(copied) != 1 || copied[0] != envelope.HdrSigPrefix+"X-Ecg-Signature" {
				t.Errorf("mp-api: copied signature headers %v, want only its own", copied)
			}
		}
	}
}
