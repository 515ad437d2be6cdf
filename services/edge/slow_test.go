package edge

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natstest"
)

// slowRequest is the head of a POST whose body never comes: it announces
// length bytes and sends none of them.
func slowRequest(path string, length int, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, length)
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("\r\n")
	return b.String()
}

// slowClient is one connection that sent a request head and then waits for
// whatever the edge answers, until the edge closes the connection.
type slowClient struct {
	conn   net.Conn
	status int   // the answer's status; 0 while none came
	err    error // why no complete answer came
}

// openSlow opens one connection per head, from several goroutines, and
// reads each answer in the background; done counts the connections the edge
// has answered and closed (or that failed).
func openSlow(t *testing.T, addr string, heads []string) ([]*slowClient, *atomic.Int64) {
	t.Helper()
	clients := make([]*slowClient, len(heads))
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(heads))
	const dialers = 32
	for d := range dialers {
		wg.Go(func() {
			for i := d; i < len(heads); i += dialers {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				t.Cleanup(func() { c.Close() })
				sc := &slowClient{conn: c}
				clients[i] = sc
				if _, err := io.WriteString(c, heads[i]); err != nil {
					errs <- err
					return
				}
				go func() {
					defer done.Add(1)
					// A bound only for a broken edge: the answer comes after
					// body_read_timeout.
					_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
					br := bufio.NewReader(c)
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						sc.err = err
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					sc.status = resp.StatusCode
					// The edge must close the connection: what would follow
					// on it is the body it gave up on.
					if _, err := br.ReadByte(); err != io.EOF {
						sc.err = fmt.Errorf("connection left open after %d (%v)", resp.StatusCode, err)
					}
				}()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("opening slow connections: %v", err)
	}
	return clients, &done
}

// TestSlowClientsDoNotStarve: thousands of connections that send headers with
// a bogus signature and a Content-Length but never the body hold no in-flight
// slot: with max_in_flight 32, correctly signed requests of every provider
// still get 202 while they wait. Those whose headers alone prove nothing
// (a wrong Lokalebasen token) are refused at once, without the body; the
// others are answered 408 once body_read_timeout has passed, and closed.
func TestSlowClientsDoNotStarve(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), func(c *config.Config) { c.MaxInFlight = 32 })
	addr := strings.TrimPrefix(h.url, "http://")
	lead := vectorNamed(t, h.vec, "lms-lead-ok")
	otherDigest := sha256.Sum256([]byte("a body that never comes"))
	heads := map[string]string{
		// A cavage signature that parses, names a known key and is in time,
		// over a digest of some other body: only the body can refute it.
		"mp-leads": slowRequest("/hooks/mp-leads", 400, "Signature", lead.Headers["signature"],
			"Digest", "SHA-256="+hex.EncodeToString(otherDigest[:])),
		"mp-api":  slowRequest("/hooks/mp-api", 400, "X-Ecg-Signature", strings.Repeat("ab", 32)),
		"offerte": slowRequest("/hooks/offerte", 400, "X-Offerte-Adviseur-Signature", strings.Repeat("cd", 32)),
		// Refused from its path alone.
		"lokalebasen": slowRequest("/hooks/lokalebasen/not-the-token-at-all", 400),
	}
	const perSource = 500
	var all []string
	var sourceOf []string
	for _, src := range []string{"mp-leads", "mp-api", "offerte", "lokalebasen"} {
		for range perSource {
			all = append(all, heads[src])
			sourceOf = append(sourceOf, src)
		}
	}
	const readersWant = 3 * perSource
	clients, done := openSlow(t, addr, all)

	natstest.CheckFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if n := h.edge.readers.Load(); n != readersWant {
			return fmt.Errorf("%d requests reading their body, want %d", n, readersWant)
		}
		if n := done.Load(); n != perSource {
			return fmt.Errorf("%d connections answered, want the %d with a wrong token", n, perSource)
		}
		return nil
	})
	if n := len(h.edge.slots); n != 0 {
		t.Fatalf("%d in-flight slots held by requests still reading", n)
	}

	for _, name := range []string{"lms-lead-ok", "lms-chat-ok", "mpapi-bid-placed-ok", "offerte-lead-created-ok", "lokalebasen-enquiry-created-ok"} {
		if a := h.send(vectorNamed(t, h.vec, name)); a.status != http.StatusAccepted {
			t.Errorf("%s while %d slow clients wait: %d %s, want 202", name, readersWant, a.status, a.rawPayload)
		}
	}
	tok := h.vec.Secrets.LokalebasenToken
	if a := h.post("/hooks/lokalebasen", []byte(`{"type":"enquiry_created","id":"bearer-while-slow"}`), "Authorization", "Bearer "+tok); a.status != http.StatusAccepted {
		t.Errorf("lokalebasen by bearer while slow clients wait: %d %s, want 202", a.status, a.rawPayload)
	}
	// Otherwise the 202s above prove nothing about coexisting with them.
	if n := h.edge.readers.Load(); n != readersWant {
		t.Fatalf("only %d of %d slow requests still waiting when the signed ones were answered", n, readersWant)
	}

	natstest.CheckFor(t, 90*time.Second, 50*time.Millisecond, func() error {
		if n := done.Load(); n != int64(len(clients)) {
			return fmt.Errorf("%d of %d slow connections answered and closed", n, len(clients))
		}
		return nil
	})
	statuses := map[string]map[int]int{}
	for i, c := range clients {
		if c.err != nil {
			t.Fatalf("slow client %d (%s): %v", i, sourceOf[i], c.err)
		}
		if statuses[sourceOf[i]] == nil {
			statuses[sourceOf[i]] = map[int]int{}
		}
		statuses[sourceOf[i]][c.status]++
	}
	for src, want := range map[string]int{"mp-leads": 408, "mp-api": 408, "offerte": 408, "lokalebasen": 401} {
		if statuses[src][want] != perSource {
			t.Errorf("%s: answers %v, want %d x %d", src, statuses[src], perSource, want)
		}
	}
	m := h.metrics()
	for _, want := range []string{
		`leadstream_edge_requests_total{outcome="read_timeout",source="mp-leads"} 500`,
		`leadstream_edge_requests_total{outcome="read_timeout",source="mp-api"} 500`,
		`leadstream_edge_requests_total{outcome="read_timeout",source="offerte"} 500`,
		`leadstream_edge_verify_failures_total{reason="bad_token",source="lokalebasen"} 500`,
		`leadstream_edge_in_flight 0`,
		`leadstream_edge_reading 0`,
		`leadstream_edge_reading_bytes 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestReadingBudget: bodies being read may reserve at most max_reading_bytes;
// a request that does not fit is answered 429 with Retry-After, under its own
// outcome, and once the readers are gone the budget is whole again.
func TestReadingBudget(t *testing.T) {
	h := newHarness(t, natstest.RunServer(t), func(c *config.Config) {
		c.MaxBodyBytes = 4096
		c.MaxReadingBytes = 8192
	})
	addr := strings.TrimPrefix(h.url, "http://")
	head := slowRequest("/hooks/mp-api", 4096, "X-Ecg-Signature", strings.Repeat("ab", 32))
	clients, done := openSlow(t, addr, []string{head, head})
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := h.edge.readers.Load(); n != 2 {
			return fmt.Errorf("%d reading", n)
		}
		return nil
	})
	v := vectorNamed(t, h.vec, "mpapi-bid-placed-ok")
	a := h.send(v)
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Fatalf("with the reading budget taken: %d Retry-After %q, want 429 with Retry-After", a.status, a.header.Get("Retry-After"))
	}
	if m := h.metrics(); !strings.Contains(m, `leadstream_edge_requests_total{outcome="reading_overloaded",source="mp-api"} 1`) ||
		!strings.Contains(m, "leadstream_edge_reading_bytes 8192") {
		t.Errorf("metrics do not show the full budget and the refusal:\n%s", grepLines(m, "leadstream_edge_"))
	}
	for _, c := range clients {
		c.conn.(*net.TCPConn).CloseWrite() // the client gives up: the body ends short
	}
	natstest.CheckFor(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := done.Load(); n != 2 {
			return fmt.Errorf("%d answered", n)
		}
		return nil
	})
	for _, c := range clients {
		if c.err != nil || c.status != http.StatusBadRequest {
			t.Errorf("body cut short: %d %v, want 400", c.status, c.err)
		}
	}
	if a := h.send(v); a.status != http.StatusAccepted {
		t.Fatalf("after the readers left: %d, want 202", a.status)
	}
	if m := h.metrics(); !strings.Contains(m, "leadstream_edge_reading_bytes 0") {
		t.Errorf("reading budget not released")
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
