package edge

import (
	"net/http"
	"testing"

	"github.com/leadstream/leadstream/pkg/natstest"
)

func (h *harness) status(path string) int {
	h.t.Helper()
	resp, err := h.client.Get(h.url + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReadyWhenJetStreamAnswers: with the connection up but JetStream not
// answering (frozen), the edge is alive but not ready; when it answers
// again, ready again.
func TestReadyWhenJetStreamAnswers(t *testing.T) {
	ns := natstest.RunServer(t)
	px := natstest.NewProxy(t, ns.Addr().String())
	h := newHarnessVia(t, px.URL(), nil)
	if r, l := h.status("/readyz"), h.status("/healthz"); r != 200 || l != 200 {
		t.Fatalf("readyz %d healthz %d, want 200 200", r, l)
	}
	px.Freeze()
	if got := h.status("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("readyz with JetStream not answering: %d, want 503", got)
	}
	if got := h.status("/healthz"); got != http.StatusOK {
		t.Errorf("healthz with JetStream not answering: %d, want 200 (a restart would not help)", got)
	}
	px.Thaw()
	if got := h.status("/readyz"); got != http.StatusOK {
		t.Errorf("readyz after JetStream answers again: %d, want 200", got)
	}
}

// TestNotAliveWhenConnectionClosed: nats.go never reconnects a CLOSED
// connection, so the edge reports itself dead (healthz 503) to be restarted.
func TestNotAliveWhenConnectionClosed(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), nil)
	if got := h.status("/healthz"); got != http.StatusOK {
		t.Fatalf("healthz: %d, want 200", got)
	}
	h.js.Conn().Close()
	if l, r := h.status("/healthz"), h.status("/readyz"); l != http.StatusServiceUnavailable || r != http.StatusServiceUnavailable {
		t.Fatalf("after the connection closed: healthz %d readyz %d, want 503 503", l, r)
	}
}
