package edge

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

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
