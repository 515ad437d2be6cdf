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
	"github.com/leadstream/leadstream/services/dispatcher"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// causalSender sends, per tick, one group of two signed webhooks of one new
// aggregate, the dependent first: a Marktplaats chat message before its
// lead, an Offerte Adviseur lead.sold before its lead.created, a
// transaction's change PENDING -> COMPLETED before CREATED -> PENDING. It
// records what was acknowledged, with its group and its place in the
// causal order. A refused request is sent again, as a provider would.
type causalSender struct {
	mu       sync.Mutex
	acked    map[string]groupRole // event id -> group and role
	groups   int
	refused  atomic.Int64 // 503s and transport errors: not acknowledged, the provider retries
	stop     chan struct{}
	finished chan struct{}
}

// groupRole places an acknowledged event: group g, and whether it is the
// prerequisite (sent second, delivered first) or the dependent.
type groupRole struct {
	group  int
	prereq bool
}

// causalGroup is group i's two webhooks, dependent first: sample name,
// provider, body.
func causalGroup(t *testing.T, i int) [2]struct {
	sample, provider string
	body             []byte
} {
	samples := map[string]map[string]any{}
	for _, smp := range simulate.Samples() {
		var m map[string]any
		if json.Unmarshal(smp.Body, &m) == nil {
			samples[smp.Name] = m
		}
	}
	clone := func(name string) map[string]any {
		b, _ := json.Marshal(samples[name])
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("sample %s: %v", name, err)
		}
		return m
	}
	body := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	type hook = struct {
		sample, provider string
		body             []byte
	}
	switch i % 3 {
	case 0:
		chat, lead := clone("marktplaats-lms/chat"), clone("marktplaats-lms/lead")
		conv := fmt.Sprintf("conv-%d", i)
		chat["messageId"], chat["conversationId"] = fmt.Sprintf("msg-%d", i), conv
		lead["leadId"], lead["conversationId"] = fmt.Sprintf("lead-%d", i), conv
		return [2]hook{{"marktplaats-lms/chat", "marktplaats-lms", body(chat)}, {"marktplaats-lms/lead", "marktplaats-lms", body(lead)}}
	case 1:
		sold, created := clone("offerte-adviseur/lead-sold"), clone("offerte-adviseur/lead-created")
		n := 100000 + i
		sold["id"] = fmt.Sprintf("sold-%d", i)
		sold["payload"].(map[string]any)["id"] = n
		created["id"] = fmt.Sprintf("created-%d", i)
		created["payload"].(map[string]any)["lead_id"] = n
		return [2]hook{{"offerte-adviseur/lead-sold", "offerte-adviseur", body(sold)}, {"offerte-adviseur/lead-created", "offerte-adviseur", body(created)}}
	default:
		tx := func(id, old, new string) []byte {
			m := clone("marktplaats-api/transaction-status-changed")
			n := 500000 + i
			m["id"] = id
			d := m["eventData"].(map[string]any)
			d["transactionId"], d["oldStatus"], d["newStatus"] = n, old, new
			m["_embedded"].(map[string]any)["mp:advertisement-transaction"].(map[string]any)["transactionId"] = n
			return body(m)
		}
		return [2]hook{
			{"marktplaats-api/transaction-status-changed", "marktplaats-api", tx(fmt.Sprintf("tx-completed-%d", i), "PENDING", "COMPLETED")},
			{"marktplaats-api/transaction-status-changed", "marktplaats-api", tx(fmt.Sprintf("tx-pending-%d", i), "CREATED", "PENDING")},
		}
	}
}

func startCausalSender(t *testing.T, signer *simulate.Signer, edges []string, every time.Duration) *causalSender {
	s := &causalSender{acked: map[string]groupRole{}, stop: make(chan struct{}), finished: make(chan struct{})}
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(i, j int, sample, provider string, body []byte) (string, bool) {
		src, _ := signer.SourceFor(provider)
		req, err := signer.Request(context.Background(), edges[(i+j)%len(edges)], src, sample, body)
		if err != nil {
			t.Error(err)
			return "", false
		}
		resp, err := client.Do(req)
		if err != nil {
			return "", false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var a struct{ ID string }
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &a) != nil {
			return "", false
		}
		return a.ID, true
	}
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
			group := causalGroup(t, i)
			wg.Go(func() {
				for j, h := range group {
					// Refused (a 503 while RAW elects a leader): retried, as
					// a provider does, so that no group loses its second half.
					id, ok := send(i, j, h.sample, h.provider, h.body)
					for try := 0; !ok && try < 50; try++ {
						s.refused.Add(1)
						time.Sleep(100 * time.Millisecond)
						id, ok = send(i, j+try+1, h.sample, h.provider, h.body)
					}
					if !ok {
						continue
					}
					s.mu.Lock()
					s.acked[id] = groupRole{group: i, prereq: j == 1}
					s.mu.Unlock()
				}
				s.mu.Lock()
				s.groups++
				s.mu.Unlock()
			})
		}
	}()
	return s
}

func (s *causalSender) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// waitMore waits until n more webhooks than now were acknowledged.
func (s *causalSender) waitMore(t *testing.T, n int, within time.Duration) {
	t.Helper()
	want := s.count() + n
	natstest.CheckFor(t, within, 50*time.Millisecond, func() error {
		if got := s.count(); got < want {
			return fmt.Errorf("%d acknowledged, want %d", got, want)
		}
		return nil
	})
}

// TestCluster runs the pipeline as separate processes of the real binary
// on a 3-node JetStream cluster with replicas 3: two edges, two
// normalizers of every kind and three dispatchers of one adapter, under a
// steady stream of signed webhooks with causal structure (each group a new
// aggregate, its dependent sent first). In turn it scales the dispatchers
// 3 -> 2 (SIGTERM) -> 3, SIGKILLs one dispatcher, stops the RAW stream's
// leader node and brings it back, and SIGKILLs one normalizer. Every
// webhook that got a 2xx reaches the LMS; each event is in EVENTS once; no
// webhook-id arrives twice before the dispatcher's SIGKILL, and those that
// arrive twice after it were in flight on the killed dispatcher (its
// partitions, first accepted before the kill); no aggregate's dependent
// overtakes its prerequisite. Requests during the leader election may be
// refused (503: the provider retries); none that got a 2xx is missing.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary on a 3-node cluster")
	}
	start := time.Now()
	phase := func(what string) {
		t.Logf("%6.1fs  %s  (%s)", time.Since(start).Seconds(), what, time.Now().Format(time.StampMilli))
	}
	bin := buildBinary(t)
	cl := natstest.RunCluster(t, 3)
	phase("3-node JetStream cluster up")
	lms := newRecordingLMS(t)
	vec := testvectors.Load(t)
	dir := t.TempDir()
	const partitions = 12
	config := func(name, listen string) string {
		path := filepath.Join(dir, name+".yaml")
		text := fmt.Sprintf("listen: %q\nnats: {url: %q, replicas: 3}\nnormalizer: {ack_wait: 3s, handler_timeout: 2s}\ndispatcher: {max_park: 60s, ack_wait: 3s, partitions: %d}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\n",
			listen, cl.URLs(), partitions, lms.srv.URL, lmsSecret) + strings.Replace(vec.ConfigYAML(), "level: error", "level: info", 1)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	cfg := config("services", natstest.FreeAddr(t))
	provisionWith(t, bin, cfg)
	phase("provisioned")
	var edges []string
	for i := range 2 {
		addr := natstest.FreeAddr(t)
		cfg := config(fmt.Sprintf("edge%d", i), addr)
		startChild(t, bin, cfg+".log", "edge", "--config", cfg).waitReady(t, "http://"+addr+"/readyz")
		edges = append(edges, "http://"+addr)
	}
	var normalizers []*child
	for i := range 2 {
		admin := natstest.FreeAddr(t)
		c := startChild(t, bin, filepath.Join(dir, fmt.Sprintf("normalizer%d.log", i)), "normalizer", "--config", cfg, "--admin-listen", admin)
		c.waitReady(t, "http://"+admin+"/readyz")
		normalizers = append(normalizers, c)
	}
	nc, js, err := natsconn.Connect(cl.URLs(), natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var dispatchers []*child
	startDispatcher := func() {
		admin := natstest.FreeAddr(t)
		c := startChild(t, bin, filepath.Join(dir, fmt.Sprintf("dispatcher%d.log", len(dispatchers))), "dispatcher", "--config", cfg, "--admin-listen", admin)
		c.waitReady(t, "http://"+admin+"/readyz")
		dispatchers = append(dispatchers, c)
	}
	// members waits until the group has want members sharing every
	// partition, and returns who delivers which.
	members := func(want int) map[string][]int {
		t.Helper()
		var got map[string][]int
		natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() (err error) {
			got, err = dispatcher.Members(context.Background(), js, "crm")
			if err != nil {
				return err
			}
			n := 0
			for _, ps := range got {
				n += len(ps)
			}
			if len(got) != want || n != partitions {
				return fmt.Errorf("group members %v", got)
			}
			return nil
		})
		return got
	}
	noneTwice := func(when string) {
		t.Helper()
		lms.mu.Lock()
		defer lms.mu.Unlock()
		for id, n := range lms.seen {
			if n > 1 {
				t.Errorf("webhook-id %s delivered %d times %s", id, n, when)
			}
		}
	}
	for range 3 {
		startDispatcher()
	}
	phase(fmt.Sprintf("2 edges, 2 normalizers of every kind, 3 dispatchers running: %v", members(3)))

	signer, err := simulate.NewSigner(testConfig(t, cfg))
	if err != nil {
		t.Fatal(err)
	}
	s := startCausalSender(t, signer, edges, 20*time.Millisecond) // 100 requests a second
	s.waitMore(t, 200, 60*time.Second)
	phase(fmt.Sprintf("steady: %d acknowledged, %d at the LMS", s.count(), len(lms.ids())))

	_ = dispatchers[2].cmd.Process.Signal(syscall.SIGTERM)
	if err := <-dispatchers[2].done; err != nil {
		t.Errorf("dispatcher 2 after SIGTERM: %v", err)
	}
	phase(fmt.Sprintf("3 -> 2: dispatcher 2 stopped (SIGTERM): %v", members(2)))
	s.waitMore(t, 200, 60*time.Second)
	startDispatcher()
	phase(fmt.Sprintf("2 -> 3: dispatcher 3 started: %v", members(3)))
	s.waitMore(t, 200, 60*time.Second)
	noneTwice("before any crash (scaled 3 -> 2 -> 3)")
	phase(fmt.Sprintf("%d acknowledged, %d at the LMS, none twice", s.count(), len(lms.ids())))

	owned := members(3)
	killed := fmt.Sprint(dispatchers[0].cmd.Process.Pid)
	var killedParts []int
	for m, ps := range owned {
		if strings.HasSuffix(m, "-"+killed) {
			killedParts = ps
		}
	}
	if killedParts == nil {
		t.Fatalf("dispatcher 0 (pid %s) is not a member: %v", killed, owned)
	}
	_ = dispatchers[0].cmd.Process.Signal(syscall.SIGKILL)
	<-dispatchers[0].done
	killedAt := time.Now()
	phase(fmt.Sprintf("dispatcher 0 SIGKILLed (partitions %v)", killedParts))
	phase(fmt.Sprintf("its partitions taken over: %v", members(2)))
	s.waitMore(t, 200, 90*time.Second)

	raw, err := js.Stream(context.Background(), streams.RAW)
	if err != nil {
		t.Fatal(err)
	}
	info, err := raw.Info(context.Background())
	if err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("RAW is not replicated on 3 nodes: %+v %v", info, err)
	}
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
	phase(fmt.Sprintf("normalizer 0 SIGKILLed; sending stopped: %d acknowledged in %d groups, %d refused", s.count(), s.groups, s.refused.Load()))

	deadline := time.Now().Add(90 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		got := map[string]bool{}
		for _, id := range lms.ids() {
			got[id] = true
		}
		for id := range s.acked {
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
			t.Errorf("acknowledged %s (group %d) not at the LMS after 90s; in EVENTS %d times", id, s.acked[id].group, ids[id])
		}
		for i := range dispatchers {
			b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("dispatcher%d.log", i)))
			t.Logf("dispatcher %d log (%d bytes): %s", i, len(b), b[max(0, len(b)-3000):])
		}
		t.FailNow()
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("event %s is in EVENTS %d times", id, n)
		}
	}
	lms.mu.Lock()
	defer lms.mu.Unlock()
	// Twice only what the killed dispatcher had in flight: its partitions,
	// accepted once by the time it died.
	dups := 0
	for id, n := range lms.seen {
		if n == 1 {
			continue
		}
		dups++
		p := dispatcher.PartitionOf(lms.subject[id], partitions)
		// (Its request may reach the LMS's handler a moment after it died.)
		if !slices.Contains(killedParts, p) || !lms.at[id][0].Before(killedAt.Add(time.Second)) {
			t.Errorf("webhook-id %s (partition %d, at %v, kill at %s) delivered %d times, not in flight on the killed dispatcher",
				id, p, lms.at[id], killedAt.Format(time.StampMilli), n)
		}
	}
	// Per aggregate, the prerequisite first, unless the dependent waited
	// max_park for it and went out marked as an orphan (counted): on these
	// two shared cores one normalizer kind (lead: two providers) can lag
	// another (chat) by tens of seconds, hence max_park 60s here.
	pos := map[string]int{}
	for i, id := range lms.order {
		pos[id] = i
	}
	byGroup := map[int][2]string{}
	for id, r := range s.acked {
		g := byGroup[r.group]
		if r.prereq {
			g[1] = id
		} else {
			g[0] = id
		}
		byGroup[r.group] = g
	}
	checked, orphans := 0, 0
	for g, pair := range byGroup {
		if pair[0] == "" || pair[1] == "" {
			continue
		}
		checked++
		if lms.subject[pair[0]] != lms.subject[pair[1]] {
			t.Errorf("group %d: two aggregates %q %q", g, lms.subject[pair[0]], lms.subject[pair[1]])
		}
		if lms.orphan[pair[0]] {
			if orphans++; orphans <= 3 {
				t.Logf("group %d (%s): its dependent went as an orphan at %s, the prerequisite at %s",
					g, lms.subject[pair[0]], lms.at[pair[0]][0].Format(time.StampMilli), lms.at[pair[1]][0].Format(time.StampMilli))
			}
			continue
		}
		if pos[pair[0]] < pos[pair[1]] {
			t.Errorf("group %d (%s): the dependent overtook its prerequisite", g, lms.subject[pair[0]])
		}
	}
	// Only the killed dispatcher was ever taken for dead.
	for i := range dispatchers {
		b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("dispatcher%d.log", i)))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "removed members no client serves") && !strings.Contains(line, "-"+killed) {
				t.Errorf("dispatcher %d removed a live member: %s", i, line)
			}
		}
	}
	phase(fmt.Sprintf("all %d acknowledged events at the LMS; EVENTS %d distinct; causal order held in %d aggregates (%d dependents went as orphans after max_park); %d webhook-ids delivered twice, all in flight on the SIGKILLed dispatcher",
		len(s.acked), len(ids), checked, orphans, dups))
}
