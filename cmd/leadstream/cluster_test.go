package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/testvectors"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// sender sends unique signed samples, alternating between edges, until
// stopped, and records what was acknowledged.
type sender struct {
	mu       sync.Mutex
	acked    map[string]string // event id -> sample
	refused  atomic.Int64      // 503s and transport errors: not acknowledged, the provider retries
	stop     chan struct{}
	finished chan struct{}
}

func startSender(t *testing.T, signer *simulate.Signer, edges []string, every time.Duration) *sender {
	s := &sender{acked: map[string]string{}, stop: make(chan struct{}), finished: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	samples := simulate.Samples()
	go func() {
		defer close(s.finished)
		var wg sync.WaitGroup
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				wg.Wait()
				return
			case <-tick.C:
			}
			wg.Go(func() {
				smp := samples[i%len(samples)]
				src, _ := signer.SourceFor(smp.Provider)
				body := simulate.Unique(smp.Provider, smp.Body, fmt.Sprintf("c%d", i))
				req, err := signer.Request(context.Background(), edges[i%len(edges)], src, smp.Name, body)
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					s.refused.Add(1)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var a struct{ ID string }
				if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &a) != nil {
					s.refused.Add(1)
					return
				}
				s.mu.Lock()
				s.acked[a.ID] = smp.Name
				s.mu.Unlock()
			})
		}
	}()
	return s
}

func (s *sender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// waitMore waits until n more webhooks than now were acknowledged.
func (s *sender) waitMore(t *testing.T, n int, within time.Duration) {
	t.Helper()
	want := s.count() + n
	natstest.CheckFor(t, within, 50*time.Millisecond, func() error {
		if got := s.count(); got < want {
			return fmt.Errorf("%d acknowledged, want %d", got, want)
		}
		return nil
	})
}

// TestCluster runs the pipeline as separate processes on a 3-node
// JetStream cluster with replicas 3: two edges, two normalizers of every
// kind and a dispatcher, under a steady stream of signed webhooks with
// causal structure, while the RAW stream's leader node is stopped and
// brought back and one normalizer is SIGKILLed. Every webhook that got a
// 2xx reaches the LMS, each event is in EVENTS once, and no lead's chat or
// status overtakes it. Requests during the leader election may be refused
// (503: the provider retries); none that got a 2xx is missing.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary on a 3-node cluster")
	}
	start := time.Now()
	phase := func(what string) { t.Logf("%6.1fs  %s", time.Since(start).Seconds(), what) }
	bin := buildBinary(t)
	cl := natstest.RunCluster(t, 3)
	phase("3-node JetStream cluster up")
	lms := newRecordingLMS(t)
	vec := testvectors.Load(t)
	dir := t.TempDir()
	config := func(name, listen string) string {
		path := filepath.Join(dir, name+".yaml")
		text := fmt.Sprintf("listen: %q\nnats: {url: %q, replicas: 3}\nnormalizer: {ack_wait: 3s, handler_timeout: 2s}\ndispatcher: {max_park: 10s, ack_wait: 3s}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\n",
			listen, cl.URLs(), lms.srv.URL, lmsSecret) + strings.Replace(vec.ConfigYAML(), "level: error", "level: warn", 1)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var edges []string
	for i := range 2 {
		addr := freeAddr(t)
		cfg := config(fmt.Sprintf("edge%d", i), addr)
		startChild(t, bin, cfg+".log", "edge", "--config", cfg).waitReady(t, "http://"+addr+"/readyz")
		edges = append(edges, "http://"+addr)
	}
	cfg := config("services", freeAddr(t))
	var normalizers []*child
	for i := range 2 {
		admin := freeAddr(t)
		c := startChild(t, bin, filepath.Join(dir, fmt.Sprintf("normalizer%d.log", i)), "normalizer", "--config", cfg, "--admin-listen", admin)
		c.waitReady(t, "http://"+admin+"/readyz")
		normalizers = append(normalizers, c)
	}
	admin := freeAddr(t)
	startChild(t, bin, filepath.Join(dir, "dispatcher.log"), "dispatcher", "--config", cfg, "--admin-listen", admin).waitReady(t, "http://"+admin+"/readyz")
	phase("2 edges, 2 normalizers of every kind, 1 dispatcher running")

	signer, err := simulate.NewSigner(testConfig(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	s := startSender(t, signer, edges, 10*time.Millisecond)
	s.waitMore(t, 200, 60*time.Second)
	phase(fmt.Sprintf("steady: %d acknowledged", s.count()))

	nc, js, err := natsconn.Connect(cl.URLs(), natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	raw, err := js.Stream(context.Background(), streams.RAW)
	if err != nil {
		t.Fatal(err)
	}
	info, err := raw.Info(context.Background())
	if err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("RAW is not replicated on 3 nodes: %+v %v", info, err)
	}
	// Before the first crash nothing may have been delivered twice: one
	// dispatcher reads its ordering state from the stream leader, never
	// from a follower that lags behind its own last write.
	lms.mu.Lock()
	for id, n := range lms.seen {
		if n > 1 {
			t.Errorf("webhook-id %s delivered %d times before any crash", id, n)
		}
	}
	lms.mu.Unlock()
	leader := cl.Index(info.Cluster.Leader)
	cl.Stop(leader)
	phase(fmt.Sprintf("stopped RAW's leader %s", info.Cluster.Leader))
	s.waitMore(t, 200, 90*time.Second)
	info, err = raw.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	phase(fmt.Sprintf("RAW led by %s: %d acknowledged, %d refused so far", info.Cluster.Leader, s.count(), s.refused.Load()))
	cl.Start(leader)
	s.waitMore(t, 200, 90*time.Second)
	phase(fmt.Sprintf("node %d back: %d acknowledged", leader+1, s.count()))

	_ = normalizers[0].cmd.Process.Signal(syscall.SIGKILL)
	<-normalizers[0].done
	s.waitMore(t, 200, 90*time.Second)
	close(s.stop)
	<-s.finished
	phase(fmt.Sprintf("normalizer 0 SIGKILLed; sending stopped: %d acknowledged, %d refused", s.count(), s.refused.Load()))

	want := map[string]bool{}
	for id, smp := range s.acked {
		if smp != "marktplaats-api/doc-example" { // dead-lettered by the normalizer
			want[id] = true
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		got := map[string]bool{}
		for _, id := range lms.ids() {
			got[id] = true
		}
		for id := range want {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling, bounded by deadline
	}
	ids := eventIDs(t, js)
	if len(missing) > 0 {
		for _, id := range missing {
			t.Errorf("acknowledged %s (%s) not at the LMS after 90s; in EVENTS %d times", id, s.acked[id], ids[id])
		}
		b, _ := os.ReadFile(filepath.Join(dir, "dispatcher.log"))
		t.Fatalf("dispatcher log (%d bytes): %s", len(b), b[max(0, len(b)-4000):])
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("event %s is in EVENTS %d times", id, n)
		}
	}
	lms.mu.Lock()
	defer lms.mu.Unlock()
	dups := 0
	for _, n := range lms.seen {
		if n > 1 {
			dups++
		}
	}
	// Every conversation and lead in the samples is one aggregate: its
	// first dependents come after its first lead.created.
	first := func(typ string) int { return slices.Index(lms.types, typ) }
	for _, dep := range []string{"chat.message", "lead.sold", "lead.invoiced", "lead.paid"} {
		if first(dep) < first("lead.created") {
			t.Errorf("%s delivered before any lead.created", dep)
		}
	}
	if first("lead.paid") < first("lead.invoiced") || first("lead.invoiced") < first("lead.sold") || first("invoice.paid") < first("invoice.created") {
		t.Errorf("a status overtook its predecessor: %v", lms.types[:min(40, len(lms.types))])
	}
	phase(fmt.Sprintf("all %d acknowledged events at the LMS; EVENTS %d distinct; %d webhook-ids delivered twice (after the crashes)", len(want), len(ids), dups))
}
