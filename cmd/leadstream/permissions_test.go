package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/cmd/leadstream/pipeline"
	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/testvectors"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/edge/simulate"
	"github.com/leadstream/leadstream/services/normalizer"
)

// secureConf is the shipped NATS config with a user per service.
const secureConf = "../../deploy/nats/secure.conf"

// natsUsers are secure.conf's users, each with the environment variable
// its password comes from.
var natsUsers = map[string]string{
	"edge":       "LEADSTREAM_NATS_EDGE_PASSWORD",
	"normalizer": "LEADSTREAM_NATS_NORMALIZER_PASSWORD",
	"dispatcher": "LEADSTREAM_NATS_DISPATCHER_PASSWORD",
	"ops":        "LEADSTREAM_NATS_OPS_PASSWORD",
	"provision":  "LEADSTREAM_NATS_PROVISION_PASSWORD",
	"downstream": "LEADSTREAM_NATS_DOWNSTREAM_PASSWORD",
}

// downstreamInbox is the inbox prefix secure.conf gives the downstream user.
const downstreamInbox = "_INBOX_downstream"

// serverLog keeps what the NATS server warns about: among it every
// permission violation, with the account/user and the subject.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) add(format string, v []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *serverLog) Noticef(string, ...any)         {}
func (l *serverLog) Debugf(string, ...any)          {}
func (l *serverLog) Tracef(string, ...any)          {}
func (l *serverLog) Warnf(format string, v ...any)  { l.add(format, v) }
func (l *serverLog) Errorf(format string, v ...any) { l.add(format, v) }
func (l *serverLog) Fatalf(format string, v ...any) { l.add(format, v) }

// violations returns the publish and subscription violations logged so far.
func (l *serverLog) violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, "Publish Violation") || strings.Contains(line, "Subscription Violation") {
			out = append(out, line)
		}
	}
	return out
}

// violated reports whether the server refused user on subject.
func (l *serverLog) violated(user, subject string) bool {
	return slices.ContainsFunc(l.violations(), func(line string) bool {
		return strings.Contains(line, "user:"+user+`"`) && strings.Contains(line, strconv.Quote(subject))
	})
}

// startSecureServer sets a fresh password for every user of secure.conf
// (ops gets its password as a bcrypt hash, the others in clear), loads the
// file with nats-server's own loader and starts it on a random local port,
// without monitoring, with its store in a temporary directory. It returns
// the server, its log and each user's password.
func startSecureServer(t *testing.T) (*server.Server, *serverLog, map[string]string) {
	t.Helper()
	passwords := map[string]string{}
	for user, env := range natsUsers {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		pw := "p" + hex.EncodeToString(b) // never all digits: the config parser would read a number
		passwords[user] = pw
		if user == "ops" {
			hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv(env, string(hash))
		} else {
			t.Setenv(env, pw)
		}
	}
	opts, err := server.ProcessConfigFile(secureConf)
	if err != nil {
		t.Fatalf("%s: %v", secureConf, err)
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Fatalf("%s: jetstream=%v sync always=%v, want both", secureConf, opts.JetStream, opts.SyncAlways)
	}
	var users []string
	for _, u := range opts.Users {
		users = append(users, u.Username)
		p := u.Permissions
		if p == nil || p.Publish == nil || len(p.Publish.Allow) == 0 || p.Subscribe == nil || len(p.Subscribe.Allow) == 0 {
			t.Errorf("%s: user %s is not confined to publish and subscribe allow lists", secureConf, u.Username)
		}
	}
	slices.Sort(users)
	if want := []string{"dispatcher", "downstream", "edge", "normalizer", "ops", "provision"}; !slices.Equal(users, want) {
		t.Fatalf("%s: users %v, want %v", secureConf, users, want)
	}
	if opts.NoAuthUser != "" {
		t.Fatalf("%s: no_auth_user %q lets clients in without a password", secureConf, opts.NoAuthUser)
	}
	opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", secureConf, err)
	}
	slog := &serverLog{}
	s.SetLoggerV2(slog, false, false, false)
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server with secure.conf not ready after 30s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s, slog, passwords
}

// userURL is s's client URL with user and password, the nats.url form of
// a service logging in as user.
func userURL(s *server.Server, user, password string) string {
	u, _ := url.Parse(s.ClientURL())
	u.User = url.UserPassword(user, password)
	return u.String()
}

// gateLMS is the LMS: it checks every Standard Webhooks signature and
// accepts every event, but refuses enquiries (400, so the dispatcher
// dead-letters them) while refuse is set.
type gateLMS struct {
	srv    *httptest.Server
	refuse atomic.Bool
	mu     sync.Mutex
	got    map[string]int // accepted events by CloudEvents type
}

func newGateLMS(t *testing.T) *gateLMS {
	wh, err := standardwebhooks.NewWebhook(lmsSecret)
	if err != nil {
		t.Fatal(err)
	}
	l := &gateLMS{got: map[string]int{}}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("LMS: signature does not verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ce struct{ Type string }
		_ = json.Unmarshal(body, &ce)
		if ce.Type == "enquiry.created" && l.refuse.Load() {
			http.Error(w, "no enquiries today", http.StatusBadRequest)
			return
		}
		l.mu.Lock()
		l.got[ce.Type]++
		l.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *gateLMS) accepted(typ string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if typ != "" {
		return l.got[typ]
	}
	n := 0
	for _, c := range l.got {
		n += c
	}
	return n
}

// probe is a client of one user that records what the server refused it.
type probe struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []error
}

func newProbe(t *testing.T, s *server.Server, user, password string, opts ...nats.Option) *probe {
	t.Helper()
	p := &probe{}
	opts = append(opts, nats.Name("probe-"+user), nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			p.mu.Lock()
			p.errs = append(p.errs, err)
			p.mu.Unlock()
		}))
	nc, err := nats.Connect(userURL(s, user, password), opts...)
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	p.nc = nc
	p.js, _ = jetstream.New(nc)
	return p
}

// refused reports whether the server told p a publish or subscription on
// subject is not permitted.
func (p *probe) refused(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.ContainsFunc(p.errs, func(err error) bool {
		return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), strconv.Quote(subject))
	})
}

// bufferLog is a zap logger of warnings and errors into a buffer that the
// test prints when it fails.
func bufferLog(t *testing.T) *zap.Logger {
	var mu sync.Mutex
	var b strings.Builder
	w := zapcore.AddSync(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return b.Write(p)
	}))
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("service log:\n%s", b.String())
		}
	})
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), w, zap.WarnLevel))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestNATSPermissions runs leadstream against deploy/nats/secure.conf,
// loaded by nats-server's own loader: each service in process on its own
// connection as its own user, the operator commands as ops, a downstream
// team as downstream. The signed samples go through to the LMS and the
// ordered stream and the operator commands work, with no permission
// violation at all: the permissions are sufficient. Then each user tries
// what it must not do (the edge publishing an event, downstream publishing
// one or deleting EVENTS, reading RAW, taking the dispatcher's consumer,
// snooping on other users' replies ...): the server refuses every one,
// names the user in its log, and nothing changed.
func TestNATSPermissions(t *testing.T) {
	s, slog, pw := startSecureServer(t)
	urls := map[string]string{}
	for user := range natsUsers {
		urls[user] = userURL(s, user, pw[user])
	}

	// Nobody gets in without a user, or with another user's password.
	if nc, err := nats.Connect(s.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("a client without user and password was let in")
	}
	if nc, err := nats.Connect(userURL(s, "edge", pw["downstream"])); err == nil {
		nc.Close()
		t.Fatal("the edge user was let in with the downstream user's password")
	}

	lms := newGateLMS(t)
	lms.refuse.Store(true)
	cfg, opsConfig := secureConfigs(t, urls, lms)
	edgeURL, norm := startServices(t, cfg, urls)
	signer, err := simulate.NewSigner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range simulate.Run(context.Background(), &http.Client{Timeout: 10 * time.Second}, edgeURL, signer) {
		if r.Err != nil || r.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %v %s", r.Sample, r.Status, r.Err, r.Body)
		}
	}

	ops := newProbe(t, s, "ops", pw["ops"])
	samples := len(simulate.Samples())
	ordered := streams.OrderedStream("downstream")
	// Every sample is in RAW; all but the doc example (dead-lettered) are
	// events, in the ordered stream and at the LMS but for the refused
	// enquiries (dead-lettered), the lone transaction change after max_park.
	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		got := fmt.Sprintf("RAW %d, EVENTS %d, %s %d, DLQ %d, LMS %d", streamMsgs(ops.js, streams.RAW), streamMsgs(ops.js, streams.EVENTS),
			ordered, streamMsgs(ops.js, ordered), streamMsgs(ops.js, streams.DLQ), lms.accepted(""))
		if want := fmt.Sprintf("RAW %d, EVENTS %d, %s %d, DLQ %d, LMS %d", samples, samples-1, ordered, samples-1, 3, samples-3); got != want {
			return fmt.Errorf("%s, want %s", got, want)
		}
		return nil
	})
	lookIntoEvents(t, norm, ops)
	runOpsCommands(t, ops, opsConfig, lms)
	if n := streamMsgs(ops.js, streams.EVENTS); n != uint64(samples-1) {
		t.Errorf("EVENTS holds %d after replay, want still %d", n, samples-1)
	}
	down := newProbe(t, s, "downstream", pw["downstream"], nats.CustomInboxPrefix(downstreamInbox))
	readAsDownstream(t, down)

	// Everything so far was permitted: not one violation.
	if v := slog.violations(); len(v) > 0 {
		t.Fatalf("permission violations while the pipeline, the operator commands and a downstream reader ran:\n%s", strings.Join(v, "\n"))
	}

	ctx := context.Background()
	probes := map[string]*probe{
		"edge":       newProbe(t, s, "edge", pw["edge"]),
		"normalizer": newProbe(t, s, "normalizer", pw["normalizer"]),
		"dispatcher": newProbe(t, s, "dispatcher", pw["dispatcher"]),
		"downstream": down,
	}
	before, err := probes["dispatcher"].js.Consumer(ctx, streams.EVENTS, "projection-leads")
	if err != nil {
		t.Fatal(err)
	}
	publish := func(subject string) func(context.Context, *probe) error {
		return func(ctx context.Context, p *probe) error {
			_, err := p.js.Publish(ctx, subject, []byte("forged"))
			return err
		}
	}
	subscribe := func(subject string) func(context.Context, *probe) error {
		return func(ctx context.Context, p *probe) error {
			sub, err := p.nc.SubscribeSync(subject)
			if err != nil {
				return err
			}
			_, err = sub.NextMsgWithContext(ctx)
			return err
		}
	}
	denied := []struct {
		user, what, subject string
		do                  func(context.Context, *probe) error
	}{
		{"edge", "publish an event", "events.lead.created.x", publish("events.lead.created.x")},
		{"edge", "read EVENTS", "$JS.API.STREAM.INFO.EVENTS", func(ctx context.Context, p *probe) error {
			_, err := p.js.Stream(ctx, streams.EVENTS)
			return err
		}},
		{"normalizer", "forge a RAW request", "raw.mp-api.bid.mp-api", publish("raw.mp-api.bid.mp-api")},
		{"edge", "create a stream", "$JS.API.STREAM.CREATE.SNOOP", func(ctx context.Context, p *probe) error {
			_, err := p.js.CreateStream(ctx, jetstream.StreamConfig{Name: "SNOOP", Subjects: []string{"raw.>"}})
			return err
		}},
		{"dispatcher", "change EVENTS", "$JS.API.STREAM.UPDATE.EVENTS", func(ctx context.Context, p *probe) error {
			_, err := p.js.UpdateStream(ctx, jetstream.StreamConfig{Name: streams.EVENTS, Subjects: []string{"events.>"}, MaxAge: time.Hour})
			return err
		}},
		{"dispatcher", "read RAW", "$JS.API.DIRECT.GET.RAW", func(ctx context.Context, p *probe) error {
			st, err := p.js.Stream(ctx, streams.RAW) // allowed: it ensures RAW
			if err != nil {
				return err
			}
			_, err = st.GetMsg(ctx, 1)
			return err
		}},
		{"downstream", "publish an event", "events.lead.created.t1", publish("events.lead.created.t1")},
		{"downstream", "publish to events.>", "events.x", func(ctx context.Context, p *probe) error {
			if err := p.nc.Publish("events.x", []byte("forged")); err != nil {
				return err
			}
			<-ctx.Done() // core NATS: no answer, only the server's refusal
			return ctx.Err()
		}},
		{"downstream", "delete EVENTS", "$JS.API.STREAM.DELETE.EVENTS", func(ctx context.Context, p *probe) error {
			return p.js.DeleteStream(ctx, streams.EVENTS)
		}},
		{"downstream", "delete its own consumer", "$JS.API.CONSUMER.DELETE.EVENTS.analytics", func(ctx context.Context, p *probe) error {
			return p.js.DeleteConsumer(ctx, streams.EVENTS, "analytics")
		}},
		{"downstream", "reconfigure the dispatcher's consumer", "$JS.API.CONSUMER.CREATE.EVENTS.projection-leads.events.none.>", func(ctx context.Context, p *probe) error {
			_, err := p.js.CreateOrUpdateConsumer(ctx, streams.EVENTS, jetstream.ConsumerConfig{Durable: "projection-leads", FilterSubject: "events.none.>"})
			return err
		}},
		{"downstream", "pull from the dispatcher's consumer", "$JS.API.CONSUMER.MSG.NEXT.EVENTS.projection-leads", func(ctx context.Context, p *probe) error {
			_, err := p.nc.RequestWithContext(ctx, "$JS.API.CONSUMER.MSG.NEXT.EVENTS.projection-leads", []byte(`{"batch":1,"no_wait":true}`))
			return err
		}},
		{"downstream", "read an adapter's consumer group", "$JS.API.STREAM.INFO.EVENTS-dispatch-crm", func(ctx context.Context, p *probe) error {
			_, err := p.js.Stream(ctx, "EVENTS-dispatch-crm")
			return err
		}},
		{"downstream", "tell a dispatcher partitions were released", "dispatch.handover.crm", func(ctx context.Context, p *probe) error {
			if err := p.nc.Publish("dispatch.handover.crm", []byte(`{}`)); err != nil {
				return err
			}
			<-ctx.Done()
			return ctx.Err()
		}},
		{"downstream", "read RAW", "$JS.API.STREAM.INFO.RAW", func(ctx context.Context, p *probe) error {
			_, err := p.js.Stream(ctx, streams.RAW)
			return err
		}},
		{"downstream", "read the leads bucket", "$JS.API.STREAM.INFO.KV_leads", func(ctx context.Context, p *probe) error {
			_, err := p.js.KeyValue(ctx, "leads")
			return err
		}},
		{"downstream", "subscribe to RAW's subjects", "raw.>", subscribe("raw.>")},
		{"downstream", "read the services' replies", "_INBOX.>", subscribe("_INBOX.>")},
	}
	for _, c := range denied {
		t.Run(c.user+" may not "+c.what, func(t *testing.T) {
			p := probes[c.user]
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- c.do(ctx, p) }()
			natstest.CheckFor(t, 10*time.Second, 10*time.Millisecond, func() error {
				if !slog.violated(c.user, c.subject) {
					return fmt.Errorf("the server logged no violation by %s on %q", c.user, c.subject)
				}
				if !p.refused(c.subject) {
					return fmt.Errorf("%s was not told %q is refused", c.user, c.subject)
				}
				return nil
			})
			cancel() // a refused request gets no reply: stop waiting for one
			if err := <-errc; err == nil {
				t.Errorf("%s could %s", c.user, c.what)
			}
		})
	}

	// Nothing changed: the forged messages are nowhere, EVENTS, downstream's
	// consumer and the dispatcher's are as they were.
	for stream, want := range map[string]uint64{streams.RAW: uint64(samples), streams.EVENTS: uint64(samples - 1)} {
		if got := streamMsgs(ops.js, stream); got != want {
			t.Errorf("%s holds %d after the refused attempts, want %d", stream, got, want)
		}
	}
	if _, err := down.js.Consumer(ctx, streams.EVENTS, "analytics"); err != nil {
		t.Errorf("downstream's consumer after a refused delete: %v", err)
	}
	after, err := probes["dispatcher"].js.Consumer(ctx, streams.EVENTS, "projection-leads")
	if err != nil {
		t.Fatal(err)
	}
	if b, a := before.CachedInfo().Config, after.CachedInfo().Config; b.FilterSubject != a.FilterSubject || !slices.Equal(b.FilterSubjects, a.FilterSubjects) {
		t.Errorf("the dispatcher's consumer filters %q %v, were %q %v", a.FilterSubject, a.FilterSubjects, b.FilterSubject, b.FilterSubjects)
	}
}

// secureConfigs writes the services' config, whose nats.url is the
// dispatcher's (it is also the nats adapter's: the dispatcher's user
// publishes the ordered stream), and the operator commands' config, whose
// nats.url is ops'. Adapters: the webhook adapter crm to lms and the nats
// adapter downstream, as in deploy/local/leadstream.yaml.
func secureConfigs(t *testing.T, urls map[string]string, lms *gateLMS) (*config.Config, string) {
	t.Helper()
	rest := testvectors.Load(t).ConfigYAML() + fmt.Sprintf(`normalizer: {ack_wait: 3s, handler_timeout: 2s}
dispatcher: {max_park: 7s, ack_wait: 3s}
adapters:
  - {name: crm, type: webhook, url: %q, secret: %q}
  - {name: downstream, type: nats}
`, lms.srv.URL, lmsSecret)
	dir := t.TempDir()
	write := func(name, natsURL string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(fmt.Sprintf("nats:\n  url: %q\n", natsURL)+rest), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfg, err := config.Load(write("leadstream.yaml", urls["dispatcher"]))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, write("ops.yaml", urls["ops"])
}

// startServices runs the edge (behind an httptest server, whose URL it
// returns), the normalizer (returned too) and the dispatcher with the leads
// projection, each on connections of its own user, until the test ends,
// and checks they are ready: the edge looks up RAW, the others ask
// JetStream for the account.
func startServices(t *testing.T, cfg *config.Config, urls map[string]string) (string, *normalizer.Service) {
	t.Helper()
	log := bufferLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	connect := func(user string) (*nats.Conn, jetstream.JetStream) {
		t.Helper()
		nc, js, err := natsconn.Connect(urls[user], natsconn.Options{Name: "leadstream-" + user})
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		return nc, js
	}
	// The topology, by the one user that may make it, as `leadstream
	// provision` does.
	_, pjs := connect("provision")
	var made bytes.Buffer
	if err := provision(ctx, pjs, cfg, log.Named("provision"), &made); err != nil {
		t.Fatalf("provision: %v\n%s", err, made.String())
	}
	type conn struct {
		nc *nats.Conn
		js jetstream.JetStream
	}
	conns := map[string]conn{}
	p, err := pipeline.New(ctx, pipeline.Options{Config: cfg, Services: pipeline.Services{Edge: true, Normalizer: true, Dispatcher: true}, Logger: log,
		ConnOf: func(service string) pipeline.Conn {
			nc, js := connect(service)
			conns[service] = conn{nc, js}
			return pipeline.Conn{URL: urls[service], JetStream: js}
		}})
	if err != nil {
		t.Fatal(err)
	}
	edgeSrv := httptest.NewServer(p.Edge)
	t.Cleanup(edgeSrv.Close)
	if code, body := get(t, edgeSrv.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("edge /readyz: %d %s", code, body)
	}
	running.Go(func() {
		if err := p.Run(ctx, nil); err != nil {
			t.Errorf("pipeline: %v", err)
		}
	})
	for _, name := range []string{pipeline.Normalizer, pipeline.Dispatcher} {
		rec := httptest.NewRecorder()
		c := conns[name]
		adminHandler(c.nc, c.js, prometheus.NewRegistry(), nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code != http.StatusOK {
			t.Errorf("%s /readyz: %d %s", name, rec.Code, rec.Body)
		}
	}
	t.Cleanup(func() { cancel(); running.Wait() })
	return edgeSrv.URL, p.Normalizer
}

// lookIntoEvents has the normalizer process an Offerte lead again as a
// redelivery from past EVENTS' duplicate window, with its dedupe key gone
// (ops deletes it): the normalizer looks into EVENTS with an ordered
// consumer, finds the event and publishes nothing.
func lookIntoEvents(t *testing.T, n *normalizer.Service, ops *probe) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := ops.js.OrderedConsumer(ctx, streams.RAW, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"raw.offerte-adviseur.lead.offerte"}})
	if err != nil {
		t.Fatalf("ops: reading RAW: %v", err)
	}
	m, err := fetchOne(rc)
	if err != nil {
		t.Fatalf("ops: reading RAW: %v", err)
	}
	md, err := m.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := envelope.FromMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := ops.js.KeyValue(ctx, streams.DedupeBucket)
	if err != nil {
		t.Fatalf("ops: dedupe bucket: %v", err)
	}
	if err := kv.Delete(ctx, raw.Source+"."+raw.EventID); err != nil {
		t.Fatalf("ops: deleting dedupe key: %v", err)
	}
	ref := &leadstreamv1.RawRef{Stream: streams.RAW, Sequence: md.Sequence.Stream, Subject: m.Subject()}
	if out, err := n.Process(ctx, raw, ref, time.Unix(0, 0), true); err != nil || out != normalizer.Deduplicated {
		t.Errorf("normalizer: a redelivery of an event in EVENTS: outcome %d, %v; want Deduplicated", out, err)
	}
}

// runOpsCommands runs lead show, dlq ls, show, drop (the normalize-stage
// letter), dlq replay (the deliver-stage letters, once the LMS takes
// enquiries) and replay, with opsConfig, and checks what they did.
func runOpsCommands(t *testing.T, ops *probe, opsConfig string, lms *gateLMS) {
	t.Helper()
	ctx := context.Background()
	cmd := func(f func([]string) error, args ...string) {
		t.Helper()
		if err := f(append(args, "--config", opsConfig)); err != nil {
			t.Fatalf("leadstream %s as ops: %v", strings.Join(args, " "), err)
		}
	}
	// The projection merges on its own consumer: wait until it has the lead.
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		_, err := leadState(ctx, ops.js, "12345")
		return err
	})
	cmd(cmdLead, "show", "12345")
	cmd(cmdDLQ, "ls")
	letters, err := dlq.List(ctx, ops.js, dlq.Filter{Stage: dlq.StageNormalize})
	if err != nil || len(letters) != 1 {
		t.Fatalf("normalize-stage dead letters %v, %v: want the doc example", letters, err)
	}
	seq := strconv.FormatUint(letters[0].Seq, 10)
	cmd(cmdDLQ, "show", seq)
	cmd(cmdDLQ, "drop", seq)
	lms.refuse.Store(false)
	cmd(cmdDLQ, "replay", "--all", "--stage", dlq.StageDeliver)
	if got := lms.accepted("enquiry.created"); got != 2 {
		t.Errorf("LMS accepted %d enquiries after dlq replay, want 2", got)
	}
	if n := streamMsgs(ops.js, streams.DLQ); n != 0 {
		t.Errorf("DLQ holds %d after drop and replay, want 0", n)
	}
	cmd(cmdReplay, "--since", "1")
}

// readAsDownstream reads a lead event from EVENTS with a durable consumer
// of its own (and acks it), and the first lead event of the ordered stream.
func readAsDownstream(t *testing.T, down *probe) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := down.js.CreateOrUpdateConsumer(ctx, streams.EVENTS, jetstream.ConsumerConfig{
		Durable: "analytics", FilterSubject: "events.lead.>", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("downstream: consumer on EVENTS: %v", err)
	}
	m, err := fetchOne(cons)
	if err != nil {
		t.Fatalf("downstream: reading EVENTS: %v", err)
	}
	var ev leadstreamv1.Event
	id, _ := envelope.HeaderValue(m.Headers(), envelope.HdrCEID)
	if err := proto.Unmarshal(m.Data(), &ev); err != nil || !strings.HasPrefix(ev.GetType(), "lead.") || ev.GetId() != id {
		t.Errorf("downstream: EVENTS message %s is not a lead event (%v): %v", m.Subject(), err, ev.GetType())
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Errorf("downstream: ack: %v", err)
	}
	// Not an ordered consumer: that deletes the consumer of its previous
	// fetch, which downstream may not.
	ordered := streams.OrderedStream("downstream")
	oc, err := down.js.CreateConsumer(ctx, ordered, jetstream.ConsumerConfig{
		FilterSubject: streams.OrderedPrefix("downstream") + ".lead.>", InactiveThreshold: time.Minute,
	})
	if err != nil {
		t.Fatalf("downstream: consumer on %s: %v", ordered, err)
	}
	m, err = fetchOne(oc)
	if err != nil {
		t.Fatalf("downstream: reading %s: %v", ordered, err)
	}
	if typ, _ := envelope.HeaderValue(m.Headers(), envelope.HdrCEType); typ != "lead.created" {
		t.Errorf("downstream: first lead event of %s is %q, want lead.created (causal order)", ordered, typ)
	}
}

// streamMsgs is how many messages stream holds (0 when it cannot be read).
func streamMsgs(js jetstream.JetStream, stream string) uint64 {
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		return 0
	}
	info, err := st.Info(context.Background())
	if err != nil {
		return 0
	}
	return info.State.Msgs
}

// fetchOne returns the next message of c.
func fetchOne(c jetstream.Consumer) (jetstream.Msg, error) {
	batch, err := c.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		return nil, err
	}
	for m := range batch.Messages() {
		return m, nil
	}
	if err := batch.Error(); err != nil {
		return nil, err
	}
	return nil, errors.New("no message within 10s")
}
