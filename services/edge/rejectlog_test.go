package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natstest"
)

// TestRejectionLogIsSampled: 10,000 refused requests (bad MACs, wrong
// tokens, over-long targets) leave a bounded number of log lines, while the
// counters count every one of them, and every line left out is counted too.
func TestRejectionLogIsSampled(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ns := natstest.RunServer(t)
	h := newHarnessLogging(t, ns.ClientURL(), nil, zap.New(core))
	const perKind = 10000 / 4
	badMAC := strings.Repeat("ab", 32)
	kinds := []func() answer{
		func() answer { return h.post("/hooks/mp-api", []byte(`{"id":"x"}`), "X-Ecg-Signature", badMAC) },
		func() answer { return h.post("/hooks/offerte", []byte(`{"id":"x"}`)) },
		func() answer { return h.post("/hooks/lokalebasen/lb_not_the_token_0000", []byte(`{}`)) },
		func() answer { return h.post("/hooks/mp-api?"+strings.Repeat("q", 2000), nil) },
	}
	wantStatus := []int{401, 401, 401, 414}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < 4*perKind; i += 16 {
				if a := kinds[i%4](); a.status != wantStatus[i%4] {
					errs <- fmt.Errorf("request kind %d: %d", i%4, a.status)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	m := h.metrics()
	for _, want := range []string{
		fmt.Sprintf(`leadstream_edge_requests_total{outcome="unauthorized",source="mp-api"} %d`, perKind),
		fmt.Sprintf(`leadstream_edge_verify_failures_total{reason="bad_signature",source="mp-api"} %d`, perKind),
		fmt.Sprintf(`leadstream_edge_verify_failures_total{reason="missing_signature",source="offerte"} %d`, perKind),
		fmt.Sprintf(`leadstream_edge_verify_failures_total{reason="bad_token",source="lokalebasen"} %d`, perKind),
		fmt.Sprintf(`leadstream_edge_requests_total{outcome="uri_too_long",source="mp-api"} %d`, perKind),
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	notAuthentic := logs.FilterMessage("webhook not authentic").Len()
	rejected := logs.FilterMessage("webhook rejected").Len()
	lines := notAuthentic + rejected
	var droppedF float64
	const counter = "\nleadstream_edge_rejection_log_lines_dropped_total "
	i := strings.Index(m, counter)
	if i < 0 {
		t.Fatal("no dropped-lines counter")
	}
	if _, err := fmt.Sscan(m[i+len(counter):], &droppedF); err != nil {
		t.Fatalf("dropped-lines counter: %v", err)
	}
	dropped := int(droppedF)
	if lines+dropped != 4*perKind {
		t.Errorf("%d lines logged + %d dropped, want %d: a refusal is neither logged nor counted as left out", lines, dropped, 4*perKind)
	}
	// Per message and second the first few, then one in a thousand (zap's
	// sampler may let a few more through at a tick's edge: hence the 2x).
	ticks := int(math.Ceil(elapsed.Seconds())) + 1
	bound := 2 * (2*rejectLogFirst*ticks + 4*perKind/rejectLogThereafter + 2)
	if lines > bound || notAuthentic == 0 || rejected == 0 {
		t.Errorf("%d \"not authentic\" and %d \"rejected\" lines for %d refusals in %s, want some of each and at most %d",
			notAuthentic, rejected, 4*perKind, elapsed.Round(time.Millisecond), bound)
	}
	t.Logf("%d refusals in %s: %d log lines, %d left out", 4*perKind, elapsed.Round(time.Millisecond), lines, dropped)
}

// TestCancelledRequestLogsNoError: a provider that hangs up while its webhook
// waits for the PubAck is no failure of the edge's: no error line, one debug
// line, and it counts as unavailable (it has no outcome of its own).
func TestCancelledRequestLogsNoError(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ns := natstest.RunServer(t)
	px := natstest.NewProxy(t, ns.Addr().String())
	h := newHarnessLogging(t, px.URL(), func(c *config.Config) { c.PublishTimeout = config.Dur(30 * time.Second) }, zap.New(core))
	v := vectorNamed(t, h.vec, "mpapi-bid-placed-ok")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, v.Method, h.url+v.Target(), bytes.NewReader(v.Body()))
	if err != nil {
		t.Fatal(err)
	}
	for k, val := range v.Headers {
		req.Header.Set(k, val)
	}

	px.Freeze() // no PubAck comes
	defer px.Thaw()
	done := make(chan error, 1)
	go func() {
		resp, err := h.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := h.edge.inFlight.Load(); n != 1 || px.Held() == 0 {
			return fmt.Errorf("%d in flight, %d bytes held: not yet waiting for the PubAck", n, px.Held())
		}
		return nil
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want it cancelled", err)
	}
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := h.edge.inFlight.Load(); n != 0 {
			return fmt.Errorf("%d requests still in flight", n)
		}
		return nil
	})

	for _, e := range logs.FilterLevelExact(zapcore.ErrorLevel).All() {
		t.Errorf("error line for a request the client cancelled: %s %v", e.Message, e.ContextMap())
	}
	if n := logs.FilterMessage("webhook cancelled by the client").FilterLevelExact(zapcore.DebugLevel).Len(); n != 1 {
		t.Errorf("%d debug lines saying the client cancelled, want 1", n)
	}
	if m := h.metrics(); !strings.Contains(m, `leadstream_edge_requests_total{outcome="unavailable",source="mp-api"} 1`) {
		t.Errorf("the cancelled request is not counted as unavailable:\n%s", grepLines(m, "leadstream_edge_requests_total"))
	}
}
