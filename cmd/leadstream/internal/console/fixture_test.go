package console

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/testvectors"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher"
	"github.com/leadstream/leadstream/services/dispatcher/leads"
	"github.com/leadstream/leadstream/services/normalizer"
)

const (
	testToken    = "console-test-token-0123456789"
	testUser     = "ops"
	testPassword = "correct-horse-battery"
)

// testConfig is a config with two sources of two tenants and one adapter,
// plus the console section consoleYAML.
func testConfig(t *testing.T, consoleYAML string) *config.Config {
	t.Helper()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("leadstream-console-test-secret-0"))
	cfg, err := config.Parse([]byte(`
log: {format: json, level: error}
nats: {url: "nats://127.0.0.1:4222"}
sources:
  - {name: mp-api, provider: marktplaats-api, tenant: t1, secrets: [s3cr3t]}
  - {name: offerte, provider: offerte-adviseur, tenant: t2, secrets: [oa-secret]}
adapters:
  - {name: crm, type: webhook, url: "http://user:pw@127.0.0.1:1/events", secret: "`+secret+`"}
`+consoleYAML), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fakeOps stands for the binary's trace and replay: a replay drops the
// letter, as the real one does on success.
type fakeOps struct {
	js      jetstream.JetStream
	mu      sync.Mutex
	replays []uint64
	traces  map[string]*Trace
}

func (o *fakeOps) Trace(_ context.Context, id string) (*Trace, error) {
	if tr, ok := o.traces[id]; ok {
		return tr, nil
	}
	return &Trace{EventID: id}, nil
}

func (o *fakeOps) Replay(ctx context.Context, seq uint64) (string, error) {
	o.mu.Lock()
	o.replays = append(o.replays, seq)
	o.mu.Unlock()
	return "replayed", dlq.Drop(ctx, o.js, seq)
}

func (o *fakeOps) replayed() []uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]uint64(nil), o.replays...)
}

// fixture is a console on a real JetStream with the whole topology, a
// normalizer to put real events into EVENTS, and its log observed.
type fixture struct {
	t    *testing.T
	cfg  *config.Config
	js   jetstream.JetStream
	ops  *fakeOps
	srv  *Server
	http *httptest.Server
	logs *observer.ObservedLogs
	norm *normalizer.Service
	now  time.Time
	// letters counts the letters written, each a message of its own.
	letters uint64
}

func newFixture(t *testing.T, consoleYAML string, metrics prometheus.Gatherer) *fixture {
	t.Helper()
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	cfg := testConfig(t, consoleYAML)
	ctx := context.Background()
	if err := streams.Ensure(ctx, js, streams.RawConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	if err := normalizer.Provision(ctx, js, cfg, nil); err != nil {
		t.Fatal(err)
	}
	if err := dispatcher.Provision(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := normalizer.New(ctx, normalizer.Options{Config: cfg, JetStream: js, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	core, logs := observer.New(zap.DebugLevel)
	f := &fixture{t: t, cfg: cfg, js: js, ops: &fakeOps{js: js, traces: map[string]*Trace{}}, logs: logs, norm: n, now: time.Now()}
	f.srv, err = New(Options{Config: cfg, JetStream: js, Ops: f.ops, Metrics: metrics, Logger: zap.New(core), Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.http = httptest.NewServer(f.srv)
	t.Cleanup(f.http.Close)
	return f
}

// ingest stores the shared sample payload file (under payloads/) as a
// webhook of source in RAW, normalizes it with the real normalizer into
// EVENTS and merges the event into the leads projection; it returns the
// event.
func (f *fixture) ingest(source, provider, kind, file, providerID string) *leadstreamv1.Event {
	f.t.Helper()
	body, err := os.ReadFile(filepath.Join(testvectors.Dir(f.t), "payloads", file))
	if err != nil {
		f.t.Fatal(err)
	}
	src, _ := f.cfg.Source(source)
	raw := &envelope.Raw{Source: source, Provider: provider, Tenant: src.Tenant, Kind: kind, EventID: eventid.New(source, providerID),
		ProviderEventID: providerID, ReceivedAt: time.Now(), Method: http.MethodPost, Path: "/hooks/" + source, ContentType: "application/json", Body: body}
	ctx := context.Background()
	ack, err := f.js.PublishMsg(ctx, raw.Msg())
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.norm.Process(ctx, raw, &leadstreamv1.RawRef{Stream: streams.RAW, Sequence: ack.Sequence, Subject: raw.Subject()}, time.Now(), false); err != nil {
		f.t.Fatalf("normalizing %s: %v", file, err)
	}
	seq, ok, err := normalizer.EventSequence(ctx, f.js, source, raw.EventID)
	if err != nil || !ok || seq == 0 {
		f.t.Fatalf("event of %s not in EVENTS: %d %v %v", file, seq, ok, err)
	}
	st, err := f.js.Stream(ctx, streams.EVENTS)
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, seq)
	if err != nil {
		f.t.Fatal(err)
	}
	var ev leadstreamv1.Event
	if err := proto.Unmarshal(m.Data, &ev); err != nil {
		f.t.Fatal(err)
	}
	kv, err := f.js.KeyValue(ctx, leads.Bucket)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := leads.NewStore(kv).Apply(ctx, &ev); err != nil {
		f.t.Fatal(err)
	}
	return &ev
}

// deadLetter writes a deliver-stage letter of ev for adapter crm, as the
// dispatcher does, and returns its DLQ sequence.
func (f *fixture) deadLetter(ev *leadstreamv1.Event) uint64 {
	f.t.Helper()
	data, err := proto.Marshal(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	msg := envelope.EventMsg("events.x", ev, data)
	f.letters++
	l := &dlq.Letter{Stage: dlq.StageDeliver, Name: "crm", Reason: "terminal", Error: "webhook crm: LMS answered 400", Subject: msg.Subject,
		Sequence: 1000 + f.letters, Attempts: 1, Log: []string{"attempt 1: 400"}, Header: msg.Header, Body: data}
	if err := dlq.Write(context.Background(), f.js, l); err != nil {
		f.t.Fatal(err)
	}
	st, err := f.js.Stream(context.Background(), streams.DLQ)
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return info.State.LastSeq
}

// letterExists reports whether DLQ still holds the letter at seq.
func (f *fixture) letterExists(seq uint64) bool {
	_, err := dlq.Get(context.Background(), f.js, seq)
	return err == nil
}

// request sends method path with form values and headers, never following
// redirects, and returns the status and body.
func (f *fixture) request(method, path string, form url.Values, header ...string) (int, string, http.Header) {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, f.http.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// logText is everything the console logged, messages and fields.
func (f *fixture) logText() string {
	var b strings.Builder
	for _, e := range f.logs.All() {
		b.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			fmt.Fprintf(&b, " %s=%v", k, v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// publishEvent stores ev in EVENTS as the normalizer would.
func (f *fixture) publishEvent(ctx context.Context, ev *leadstreamv1.Event) {
	f.t.Helper()
	data, err := proto.Marshal(ev)
	if err != nil {
		f.t.Fatal(err)
	}
	kind, action, _ := strings.Cut(ev.GetType(), ".")
	if _, err := f.js.PublishMsg(ctx, envelope.EventMsg(streams.EventsSubject(kind, action, ev.GetTenant(), ev.GetAggregateId()), ev, data)); err != nil {
		f.t.Fatal(err)
	}
}
