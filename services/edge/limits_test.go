package edge

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/embedded"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/testvectors"
	"github.com/leadstream/leadstream/services/edge/verify"
)

// TestEnvelopeHeaderBound: the largest envelope a request can produce, every
// field at its bound, with the batch headers, stays within
// maxEnvelopeHeaderBytes, which itself stays within the slack RAW's
// max_msg_size leaves above max_body_bytes.
func TestEnvelopeHeaderBound(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	longest := slices.MaxFunc(config.Providers, func(a, b string) int { return len(a) - len(b) })
	kind := slices.MaxFunc(envelope.Kinds, func(a, b string) int { return len(a) - len(b) })
	raw := &envelope.Raw{
		Source: long(64), Provider: longest, Tenant: long(64), Kind: kind,
		EventID: "6f1c2b8e-1d7a-5c3e-9b0f-4a2d8e7c6b51", ProviderEventID: long(128),
		ReceivedAt: time.Unix(0, 1<<62), Method: http.MethodPost, Path: long(maxRequestURI),
		KeyID: long(128), ContentType: clipContentType(long(4096)),
		Signature: http.Header{"Signature": {long(verify.MaxSignatureHeader)}, "Digest": {long(verify.MaxDigestHeader)}},
	}
	m := raw.Msg()
	for k, v := range map[string]string{"Nats-Batch-Id": long(22), "Nats-Batch-Sequence": "1000", "Nats-Batch-Commit": "1"} {
		m.Header.Set(k, v)
	}
	if got := msgSize(m); got > maxEnvelopeHeaderBytes {
		t.Fatalf("largest envelope has %d bytes of headers, bound is %d", got, maxEnvelopeHeaderBytes)
	}
	cfg := &config.Config{MaxBodyBytes: 1 << 20}
	if slack := int64(streams.RawConfig(cfg).MaxMsgSize) - cfg.MaxBodyBytes; slack < maxEnvelopeHeaderBytes {
		t.Fatalf("RAW's max_msg_size leaves %d bytes above max_body_bytes, less than the %d headers may take", slack, maxEnvelopeHeaderBytes)
	}
}

func TestClipContentType(t *testing.T) {
	long := strings.Repeat("p", 300)
	for in, want := range map[string]string{
		"application/json":                                 "application/json",
		"application/json; charset=utf-8; x=" + long:       "application/json",
		"application/" + long:                              "",
		"application/json; charset=utf-8":                  "application/json; charset=utf-8",
		"  text/plain  ; a=" + strings.Repeat("b", 300):    "text/plain",
		strings.Repeat("c", maxContentType):                strings.Repeat("c", maxContentType),
		strings.Repeat("c", maxContentType+1) + "; a=1234": "",
	} {
		if got := clipContentType(in); got != want || len(got) > maxContentType {
			t.Errorf("clip(%.40q...) = %.40q, want %.40q", in, got, want)
		}
	}
}

// startEmbedded starts a JetStream server with the given max_payload on
// listen, its store in dir.
func startEmbedded(t *testing.T, dir, listen string, maxPayload int32) *server.Server {
	t.Helper()
	s, err := embedded.Start(embedded.Options{Listen: listen, StoreDir: dir, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// TestStartRefusesLimitsTheServerCannotHold: against a server whose
// max_payload cannot hold a body of max_body_bytes and its envelope, New
// refuses to start and says which fields and numbers disagree and how to
// fix it; a fitting max_body_bytes starts.
func TestStartRefusesLimitsTheServerCannotHold(t *testing.T) {
	const maxPayload = 64 << 10
	ns := startEmbedded(t, t.TempDir(), "127.0.0.1:0", maxPayload)
	_, js := natstest.Connect(t, ns)
	vec := testvectors.Load(t)
	for _, c := range []struct {
		body int64
		ok   bool
	}{{maxPayload, false}, {maxPayload - maxEnvelopeHeaderBytes + 1, false}, {maxPayload - maxEnvelopeHeaderBytes, true}, {16 << 10, true}} {
		cfg, err := config.Parse([]byte(vec.ConfigYAML()+fmt.Sprintf("max_body_bytes: %d\n", c.body)), vec.Dir)
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(Options{Config: cfg, JetStream: js, Logger: zap.NewNop()})
		if c.ok {
			if err != nil {
				t.Errorf("max_body_bytes %d: %v", c.body, err)
				continue
			}
			e.Close()
			continue
		}
		if err == nil {
			e.Close()
			t.Errorf("max_body_bytes %d against max_payload %d: started", c.body, maxPayload)
			continue
		}
		for _, want := range []string{"max_body_bytes (" + strconv.FormatInt(c.body, 10) + ")", "max_payload (" + strconv.Itoa(maxPayload) + ")",
			"at most " + strconv.Itoa(maxPayload-maxEnvelopeHeaderBytes), "raise max_payload"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
	}
}

// TestTooLargeForTheServer: when the server's max_payload shrinks after the
// edge started (a restart with another config), a body that no longer fits
// is answered 413, not a 503 the provider would retry forever, and is not
// stored; what fits still is.
func TestTooLargeForTheServer(t *testing.T) {
	dir := t.TempDir()
	first := startEmbedded(t, dir, "127.0.0.1:0", 0)
	addr := first.Addr().String()
	h := newHarnessVia(t, first.ClientURL(), func(c *config.Config) { c.MaxBodyBytes = 64 << 10 })
	secret := []byte(h.vec.Secrets.MPAPI)
	bid := func(id string, pad int) []byte {
		return []byte(`{"id":"` + id + `","eventType":"BidPlacedEvent","eventData":{},"pad":"` + strings.Repeat("p", pad) + `"}`)
	}
	big := bid("big", 40<<10)
	if a := h.post("/hooks/mp-api", big, "X-Ecg-Signature", verify.HMACHex(secret, big)); a.status != http.StatusAccepted {
		t.Fatalf("40 KiB with the first server: %d, want 202", a.status)
	}
	first.Shutdown()
	first.WaitForShutdown()
	startEmbedded(t, dir, addr, 32<<10)
	natstest.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		if got := h.js.Conn().MaxPayload(); got != 32<<10 || h.js.Conn().Status() != nats.CONNECTED {
			return fmt.Errorf("%s, max_payload %d", h.js.Conn().Status(), got)
		}
		return nil
	})
	bigger := bid("bigger", 40<<10)
	a := h.post("/hooks/mp-api", bigger, "X-Ecg-Signature", verify.HMACHex(secret, bigger))
	if a.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("40 KiB against a 32 KiB max_payload: %d %s, want 413", a.status, a.rawPayload)
	}
	small := bid("small", 10)
	if a := h.post("/hooks/mp-api", small, "X-Ecg-Signature", verify.HMACHex(secret, small)); a.status != http.StatusAccepted {
		t.Fatalf("a small body after: %d, want 202", a.status)
	}
	var ids []string
	for _, m := range rawMsgs(t, h.js) {
		ids = append(ids, m.Header.Get(nats.MsgIdHdr))
	}
	if !slices.Equal(ids, []string{"mp-api:big", "mp-api:small"}) {
		t.Fatalf("RAW holds %v, want the big one from before and the small one", ids)
	}
	if m := h.metrics(); !strings.Contains(m, `leadstream_edge_requests_total{outcome="too_large",source="mp-api"} 1`) {
		t.Errorf("the 413 is not counted as too_large")
	}
}
