package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/testvectors"
	"github.com/leadstream/leadstream/services/edge/simulate"
	"github.com/leadstream/leadstream/services/edge/verify"
)

// refusingLMS accepts every event but enquiries, which it refuses for good
// (400), so that the dispatcher dead-letters them.
type refusingLMS struct {
	srv   *httptest.Server
	mu    sync.Mutex
	types map[string]int
}

func newRefusingLMS(t *testing.T) *refusingLMS {
	l := &refusingLMS{types: map[string]int{}}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ce struct{ Type string }
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &ce)
		l.mu.Lock()
		l.types[ce.Type]++
		l.mu.Unlock()
		if ce.Type == "enquiry.created" {
			http.Error(w, "enquiries are not ours", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func (l *refusingLMS) got(typ string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.types[typ]
}

// needles are the forms in which a credential could be found: as it is, in
// hex, and in base64 (standard and URL alphabet) at each of the three
// alignments it can have inside a longer encoded text.
func needles(cred []byte) [][]byte {
	out := [][]byte{cred, []byte(hex.EncodeToString(cred))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		for pad := range 3 {
			s := enc.EncodeToString(append(make([]byte, pad), cred...))
			// Drop the characters that depend on the bytes around it.
			lead := (pad*8 + 5) / 6
			s = strings.TrimRight(s, "=")
			if len(s)-lead-2 >= 6 {
				out = append(out, []byte(s[lead:len(s)-2]))
			}
		}
	}
	return out
}

// credentials are every secret the config holds, by a name that says where
// it is configured (never the secret itself).
func credentials(cfg *config.Config) map[string][]byte {
	out := map[string][]byte{}
	for _, s := range cfg.Sources {
		for i, sec := range s.Secrets {
			out[fmt.Sprintf("sources.%s.secrets[%d]", s.Name, i)] = []byte(sec)
		}
		for i, tok := range s.AllTokens() {
			out[fmt.Sprintf("sources.%s.token#%d", s.Name, i)] = []byte(tok)
		}
	}
	whsec := func(name, sec string) {
		out[name] = []byte(sec)
		b64 := strings.TrimPrefix(sec, "whsec_")
		out[name+" (base64)"] = []byte(b64)
		if key, err := base64.StdEncoding.DecodeString(b64); err == nil {
			out[name+" (key)"] = key
		}
	}
	for _, a := range cfg.Adapters {
		for i, sec := range a.AllSecrets() {
			whsec(fmt.Sprintf("adapters.%s.secrets[%d]", a.Name, i), sec)
		}
	}
	if cfg.DemoLMS.Secret != "" {
		whsec("demo_lms.secret", cfg.DemoLMS.Secret)
	}
	return out
}

// leaks names the credentials found in b.
func leaks(creds map[string][]byte, b []byte) []string {
	var found []string
	for name, cred := range creds {
		for _, n := range needles(cred) {
			if bytes.Contains(b, n) {
				found = append(found, name)
				break
			}
		}
	}
	return found
}

// streamMessages returns every message of every stream, as text that holds
// its subject, headers and body, by "<stream>#<seq>".
func streamMessages(t *testing.T, js jetstream.JetStream) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue // deleted or expired
			}
			if err != nil {
				t.Fatalf("%s #%d: %v", name, seq, err)
			}
			var b bytes.Buffer
			b.WriteString(m.Subject + "\n")
			for k, vs := range m.Header {
				for _, v := range vs {
					b.WriteString(k + ": " + v + "\n")
				}
			}
			b.Write(m.Data)
			out[fmt.Sprintf("%s#%d", name, seq)] = b.Bytes()
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestNoCredentialIsStored runs the whole pipeline (`leadstream run`, logging
// at debug level), sends signed webhooks of every provider - Lokalebasen by
// path token, with the token in the query too, and by bearer - and rejected
// ones, lets them reach the LMS or a dead letter of either stage, and then
// looks for every configured credential, as it is or encoded, in every
// message of every stream (RAW, EVENTS, DLQ, timers, the dedupe, dispatch and
// leads buckets), in the metrics, in every log line, and in the store's files.
func TestNoCredentialIsStored(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	lms := newRefusingLMS(t)
	demoSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("leadstream-credentials-demo-lms-key"))
	vec := testvectors.Load(t)
	dir := t.TempDir()
	httpAddr, natsAddr, demoAddr := natstest.FreeAddr(t), natstest.FreeAddr(t), natstest.FreeAddr(t)
	storeDir := filepath.Join(dir, "nats")
	cfgText := fmt.Sprintf("listen: %q\nnats:\n  store_dir: %q\n  listen: %q\n", httpAddr, storeDir, natsAddr) +
		strings.Replace(vec.ConfigYAML(), "log: {format: console, level: error}", "log: {format: json, level: debug}", 1) +
		fmt.Sprintf(`body_read_timeout: 2s
max_body_bytes: 65536
normalizer: {ack_wait: 3s, handler_timeout: 2s}
dispatcher: {max_park: 7s, ack_wait: 3s}
adapters:
  - {name: crm, type: webhook, url: %q, secret: %q, max_attempts: 1, max_age: 1s}
  - {name: demo, type: webhook, url: "http://%s/events", secret: %q}
demo_lms: {listen: %q, secret: %q}
`, lms.srv.URL, lmsSecret, demoAddr, demoSecret, demoAddr, demoSecret)
	if !strings.Contains(cfgText, "level: debug") {
		t.Fatal("the shared vectors' config no longer sets log level error: update this test")
	}
	cfgPath := filepath.Join(dir, "leadstream.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials(cfg)
	if len(creds) < 8 {
		t.Fatalf("only %d credentials configured: %v", len(creds), creds)
	}
	url := "http://" + httpAddr
	p := startDev(t, bin, cfgPath, url)

	// Every sample of every provider, correctly signed (Lokalebasen by path).
	signer, err := simulate.NewSigner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, r := range simulate.Run(context.Background(), client, url, signer) {
		if r.Err != nil || r.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %v %s", r.Sample, r.Status, r.Err, r.Body)
		}
	}
	tok := vec.Secrets.LokalebasenToken
	var enquirySample []byte
	for _, smp := range simulate.Samples() {
		if smp.Provider == config.ProviderLokalebasen {
			enquirySample = smp.Body
		}
	}
	enquiry := func(id string) []byte { return simulate.Unique(config.ProviderLokalebasen, enquirySample, id) }
	mpBody := []byte(`{"id":"cred-bid","eventType":"BidPlacedEvent","created":"2026-11-26T10:00:00Z","eventData":{"advertisementItemId":"m1"}}`)
	send := []struct {
		name, method, path string
		body               []byte
		headers            []string
		want               int
	}{
		{"bearer", "POST", "/hooks/lokalebasen", enquiry("by-bearer"), []string{"Authorization", "Bearer " + tok}, 202},
		{"path and query", "POST", "/hooks/lokalebasen/" + tok + "?token=" + tok, enquiry("by-path-and-query"), nil, 202},
		// Authentic but not an enquiry: a normalize-stage dead letter of a
		// Lokalebasen request, which copies its RAW envelope.
		{"unmappable by token", "POST", "/hooks/lokalebasen/" + tok, []byte(`not json, but sent with the token`), nil, 202},
		{"unmappable by bearer", "POST", "/hooks/lokalebasen", []byte(`not json either`), []string{"Authorization", "Bearer " + tok}, 202},
		{"wrong token", "POST", "/hooks/lokalebasen/lb_not_the_token_0000", enquiry("wrong"), nil, 401},
		{"wrong bearer", "POST", "/hooks/lokalebasen", enquiry("wrong"), []string{"Authorization", "Bearer lb_not_the_token_0000"}, 401},
		{"token on a signed source", "POST", "/hooks/mp-api/" + tok, mpBody, nil, 404},
		{"token, not POST", "GET", "/hooks/lokalebasen/" + tok, nil, nil, 405},
		{"token, body too large", "POST", "/hooks/lokalebasen/" + tok, make([]byte, cfg.MaxBodyBytes+1), nil, 413},
		{"mp-api signed with the offerte secret", "POST", "/hooks/mp-api", mpBody,
			[]string{config.HeaderEcgSignature, verify.HMACHex([]byte(vec.Secrets.Offerte), mpBody), "Authorization", "Bearer " + tok}, 401},
		{"offerte without signature", "POST", "/hooks/offerte", mpBody, nil, 401},
	}
	for _, s := range send {
		req, err := http.NewRequest(s.method, url+s.path, bytes.NewReader(s.body))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(s.headers); i += 2 {
			req.Header.Set(s.headers[i], s.headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != s.want {
			t.Fatalf("%s: %d, want %d", s.name, resp.StatusCode, s.want)
		}
	}
	// The right token in the path, and a body that never comes: 408.
	conn, err := net.Dial("tcp", httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /hooks/lokalebasen/%s HTTP/1.1\r\nHost: edge\r\nContent-Length: 100\r\n\r\n", tok)
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("token in the path, no body: %v %v, want 408", resp, err)
	}

	nc, js, err := natsconn.Connect("nats://"+natsAddr, natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	// Done when every consumer has handled everything, the parked orphan
	// went out, and both stages have dead letters.
	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		for _, stream := range []string{streams.RAW, streams.EVENTS} {
			st, err := js.Stream(ctx, stream)
			if err != nil {
				return err
			}
			for c := range st.ListConsumers(ctx).Info() {
				if c.NumPending > 0 || c.NumAckPending > 0 {
					return fmt.Errorf("consumer %s of %s: %d pending, %d unacknowledged", c.Name, stream, c.NumPending, c.NumAckPending)
				}
			}
		}
		if lms.got("transaction.status_changed") == 0 {
			return errors.New("the orphan transaction change has not reached the LMS yet")
		}
		letters, err := dlq.List(ctx, js, dlq.Filter{})
		if err != nil {
			return err
		}
		stages := map[string]int{}
		lokalebasen := 0
		for _, l := range letters {
			stages[l.Stage]++
			if l.Header.Get(envelope.HdrSource) == "lokalebasen" {
				lokalebasen++
			}
		}
		if stages[dlq.StageNormalize] < 3 || stages[dlq.StageDeliver] < 4 || lokalebasen < 2 {
			return fmt.Errorf("dead letters by stage %v, %d of Lokalebasen requests", stages, lokalebasen)
		}
		return nil
	})

	msgs := streamMessages(t, js)
	seen := map[string]int{}
	for id, b := range msgs {
		seen[strings.SplitN(id, "#", 2)[0]]++
		if found := leaks(creds, b); len(found) > 0 {
			t.Errorf("%s holds %v", id, found)
		}
	}
	for _, want := range []string{streams.RAW, streams.EVENTS, streams.DLQ, "KV_" + streams.DedupeBucket, "KV_" + streams.DispatchBucket, "KV_leads"} {
		if seen[want] == 0 {
			t.Errorf("stream %s is empty or missing: nothing was searched there (streams: %v)", want, seen)
		}
	}
	resp, err = http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if found := leaks(creds, metrics); len(found) > 0 {
		t.Errorf("/metrics holds %v", found)
	}

	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM")
	}

	log, err := os.ReadFile(cfgPath + ".log")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(log), "\n")
	for i, line := range lines {
		if found := leaks(creds, []byte(line)); len(found) > 0 {
			t.Errorf("log line %d holds %v", i+1, found)
		}
	}
	for _, want := range []string{`"webhook not authentic"`, `"webhook rejected"`, `"webhook stored"`, "enquiry.created"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the log has no %s line: the test did not see what it means to search", want)
		}
	}
	t.Logf("searched %d stream messages and %d log lines for %d credentials", len(msgs), len(lines), len(creds))

	err = filepath.WalkDir(storeDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if found := leaks(creds, b); len(found) > 0 {
			t.Errorf("store file %s holds %v", path, found)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
