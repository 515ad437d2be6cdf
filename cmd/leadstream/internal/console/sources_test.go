package console

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// edgeMetrics registers counters and gauges named and labelled as the
// edge's and the dispatcher's.
type edgeMetrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	fails      *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	parked     *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
	retrying   *prometheus.GaugeVec
	breaker    *prometheus.GaugeVec
}

func newEdgeMetrics() *edgeMetrics {
	m := &edgeMetrics{reg: prometheus.NewRegistry(),
		requests:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: mRequests}, []string{"source", "outcome"}),
		fails:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: mVerifyFails}, []string{"source", "reason"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: mDeliveries}, []string{"adapter", "outcome"}),
		parked:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: mParked}, []string{"adapter"}),
		oldest:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: mOldestParked}, []string{"adapter"}),
		retrying:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: mRetrying}, []string{"adapter"}),
		breaker:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: mBreaker}, []string{"adapter"}),
	}
	m.reg.MustRegister(m.requests, m.fails, m.deliveries, m.parked, m.oldest, m.retrying, m.breaker)
	return m
}

// TestRatesLastHour: what a counter counted in the last hour is its value
// now less its value an hour ago, from the per-minute snapshots; before the
// process is an hour old, the counter itself.
func TestRatesLastHour(t *testing.T) {
	m := newEdgeMetrics()
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	r := newRates(m.reg, func() time.Time { return now })
	accepted := m.requests.WithLabelValues("mp-api", "accepted")
	key := series{mRequests, "mp-api", "accepted"}
	for minute := range 90 {
		accepted.Add(2) // 2 a minute
		if err := r.sample(); err != nil {
			t.Fatal(err)
		}
		delta, since, _, err := r.lastHour()
		if err != nil {
			t.Fatal(err)
		}
		want, wantSince := float64(2*(minute+1)), time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
		if minute >= 60 {
			want, wantSince = 120, now.Add(-window)
		}
		if delta[key] != want || !since.Equal(wantSince) {
			t.Fatalf("minute %d: %v since %s, want %v since %s", minute, delta[key], since, want, wantSince)
		}
		now = now.Add(time.Minute)
	}
	if n := len(r.snapshots); n > 62 {
		t.Errorf("%d snapshots kept, want at most an hour's", n)
	}
}

// TestSourcesPage: in the pipeline's process the page shows each source's
// request outcomes and verification failures of the last hour from the
// edge's counters, and from RAW when it last accepted one; a standalone
// console shows RAW's side and says where the rest is.
func TestSourcesPage(t *testing.T) {
	m := newEdgeMetrics()
	m.requests.WithLabelValues("mp-api", "accepted").Add(7)
	m.requests.WithLabelValues("mp-api", "unauthorized").Add(3)
	m.requests.WithLabelValues("", "not_found").Add(4)
	m.fails.WithLabelValues("mp-api", "bad_signature").Add(3)
	f := newFixture(t, "", m.reg)
	f.ingest("mp-api", "marktplaats-api", "bid", "marktplaats-api/bid-placed.json", "8b0f6c1e-4f7a-4b61-9d0a-2f3c1a7e5d11")
	f.now = time.Now()

	status, body, _ := f.request(http.MethodGet, "/sources", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /sources: %d", status)
	}
	row := regexp.MustCompile(`(?s)<strong>mp-api</strong>.*?</tr>`).FindString(body)
	for _, want := range []string{"bad_signature 3", `<td class="num">1</td>`, `<td class="num">7</td>`, `<td class="num bad">3</td>`} {
		if !strings.Contains(row, want) {
			t.Errorf("the mp-api row lacks %s:\n%s", want, row)
		}
	}
	if strings.Contains(row, "never") {
		t.Errorf("mp-api never accepted, though RAW holds its webhook:\n%s", row)
	}
	offerte := regexp.MustCompile(`(?s)<strong>offerte</strong>.*?</tr>`).FindString(body)
	if !strings.Contains(offerte, "never") {
		t.Errorf("offerte, which sent nothing, is not 'never':\n%s", offerte)
	}
	if !strings.Contains(body, "not configured (404): 4") {
		t.Error("the requests for unknown sources are not shown")
	}

	standalone := newFixture(t, "", nil)
	standalone.ingest("mp-api", "marktplaats-api", "bid", "marktplaats-api/bid-placed.json", "8b0f6c1e-4f7a-4b61-9d0a-2f3c1a7e5d11")
	_, body, _ = standalone.request(http.MethodGet, "/sources", nil)
	if !strings.Contains(body, "known only to the edge") || strings.Contains(body, "unauthorized") {
		t.Errorf("the standalone sources page does not say where rejections are counted, or shows counters it has not:\n%s", body)
	}
	if row := regexp.MustCompile(`(?s)<strong>mp-api</strong>.*?</tr>`).FindString(body); !strings.Contains(row, `<td class="num">1</td>`) {
		t.Errorf("standalone: mp-api's stored count is not 1:\n%s", row)
	}
}

// TestAdaptersPage: an adapter's dead letters and lag come from JetStream;
// parked, retrying and the breaker from the dispatcher's gauges in
// process; a standalone console says where those are. The target never
// shows the URL's credentials.
func TestAdaptersPage(t *testing.T) {
	m := newEdgeMetrics()
	m.parked.WithLabelValues("crm").Set(2)
	m.oldest.WithLabelValues("crm").Set(95)
	m.retrying.WithLabelValues("crm").Set(1)
	m.breaker.WithLabelValues("crm").Set(2)
	m.deliveries.WithLabelValues("crm", "delivered").Add(5)
	f := newFixture(t, "", m.reg)
	ev := f.ingest("offerte", "offerte-adviseur", "lead", "offerte-adviseur/lead-created.json", "a056V7R7NmNRjl70")
	f.deadLetter(ev)
	f.deadLetter(ev)
	_, body, _ := f.request(http.MethodGet, "/adapters", nil)
	row := regexp.MustCompile(`(?s)<strong>crm</strong>.*?</tr>`).FindString(body)
	for _, want := range []string{"http://127.0.0.1:1", `name=crm">2</a>`, "1m35s", "open", `<td class="num">5</td>`} {
		if !strings.Contains(row, want) {
			t.Errorf("the crm row lacks %s:\n%s", want, row)
		}
	}
	if strings.Contains(body, "user:pw") {
		t.Error("the adapters page shows the URL's credentials")
	}
	standalone := newFixture(t, "", nil)
	_, body, _ = standalone.request(http.MethodGet, "/adapters", nil)
	if !strings.Contains(body, "known only to the dispatchers") {
		t.Error("the standalone adapters page does not say where parked and retrying are known")
	}
}

// TestAssetsVendored: htmx is the pinned file VERSION names, and no page
// loads anything from elsewhere.
func TestAssetsVendored(t *testing.T) {
	js, err := fs.ReadFile(staticFS, "static/htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	version, err := fs.ReadFile(staticFS, "static/VERSION")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(js)
	if !strings.Contains(string(version), hex.EncodeToString(sum[:])) || !strings.Contains(string(version), "htmx.org 2.0.4") {
		t.Errorf("static/htmx.min.js (sha256 %x) is not the file static/VERSION pins", sum)
	}
	f := newFixture(t, "", nil)
	external := regexp.MustCompile(`(?i)(src|href)="(https?:)?//`)
	for _, path := range []string{"/sources", "/events", "/adapters", "/dlq", "/leads", "/trace"} {
		status, body, h := f.request(http.MethodGet, path, nil)
		if status != http.StatusOK {
			t.Errorf("GET %s: %d", path, status)
		}
		if external.MatchString(body) {
			t.Errorf("GET %s loads from elsewhere: %s", path, external.FindString(body))
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: headers %v", path, h)
		}
	}
	if status, body, _ := f.request(http.MethodGet, "/static/htmx.min.js", nil); status != http.StatusOK || len(body) != len(js) {
		t.Errorf("GET /static/htmx.min.js: %d, %d bytes", status, len(body))
	}
}
