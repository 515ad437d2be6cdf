package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/synadia-io/orbit.go/pcgroups"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// TestPartitionOfMatchesServer: the partition the dispatcher computes for an
// aggregate is the one nats-server's {{partition(n, token)}} put in front of
// its events in the group's stream, for every aggregate tried.
func TestPartitionOfMatchesServer(t *testing.T) {
	f := newFixture(t, adapterYAML("crm", "http://127.0.0.1:1", ""))
	f.cfg.Dispatcher.Partitions = 7
	f.provision()
	if _, err := New(context.Background(), Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop()}); err != nil {
		t.Fatal(err)
	}
	// No member has joined: the group's stream keeps what it sourced.
	aggs := []string{"", "offerte/lead/12345", "mp-leads/conversation/c2b7e4d0", "mp-api/transaction/987654", "x.y*z> é"}
	for i := range 60 {
		aggs = append(aggs, fmt.Sprintf("agg/%d", i))
	}
	for i, agg := range aggs {
		f.publish(event(fmt.Sprintf("ev-%d", i), "lead.created", agg, t0))
	}
	st, err := f.js.Stream(context.Background(), GroupStream("crm"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		info, err := st.Info(context.Background())
		if err == nil && info.State.Msgs != uint64(len(aggs)) {
			err = fmt.Errorf("group stream holds %d of %d", info.State.Msgs, len(aggs))
		}
		return err
	})
	used := map[int]bool{}
	for i, agg := range aggs {
		m, err := st.GetMsg(context.Background(), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		p, rest, _ := strings.Cut(m.Subject, ".")
		if want := strconv.Itoa(partitionOf(agg, 7)); p != want {
			t.Errorf("aggregate %q: server put it in partition %s, partitionOf says %s", agg, p, want)
		}
		if !strings.HasSuffix(rest, "."+streams.AggregateToken(agg)) {
			t.Errorf("aggregate %q: subject %s", agg, m.Subject)
		}
		used[partitionOf(agg, 7)] = true
	}
	if len(used) != 7 {
		t.Errorf("%d aggregates fell into %d of 7 partitions", len(aggs), len(used))
	}
}

// TestOwnership: which partitions a member gains and loses as members come
// and go, and when it may deliver them: at once when they come from a
// member that left, after the grace when from one that is still there.
func TestOwnership(t *testing.T) {
	now := t0
	const grace = 20 * time.Second
	o := newOwnership("b", 4, grace, func() time.Time { return now })
	cfg := func(members ...string) *pcgroups.ElasticConsumerGroupConfig {
		return &pcgroups.ElasticConsumerGroupConfig{MaxMembers: 4, Members: members}
	}
	type step struct {
		members []string
		gained  map[int]time.Time
		lost    []int
	}
	// pcgroups spreads 4 partitions over the sorted members: [a b] a 0 1,
	// b 2 3; [a b c] a 0 3, b 1, c 2; over 5 members only the first 4 count.
	for i, s := range []step{
		{members: []string{"a"}, gained: map[int]time.Time{}},                                        // not a member yet
		{members: []string{"a", "b"}, gained: map[int]time.Time{2: t0.Add(grace), 3: t0.Add(grace)}}, // joined: from a, still there
		{members: []string{"b"}, gained: map[int]time.Time{0: t0, 1: t0, 2: t0, 3: t0}},              // a left: 2 and 3 out of their grace
		{members: []string{"b", "c"}, gained: map[int]time.Time{}, lost: []int{2, 3}},                // c joined
		{members: []string{"a", "b", "c"}, gained: map[int]time.Time{}, lost: []int{0}},              // a joined
		{members: []string{"a", "c"}, gained: map[int]time.Time{}, lost: []int{1}},                   // b removed
		{members: []string{"a", "b", "c", "d", "e"}, gained: map[int]time.Time{1: t0.Add(grace)}},    // back, from a
	} {
		gained, lost := o.apply(cfg(s.members...), uint64(i+1))
		slices.Sort(lost)
		if !maps.Equal(gained, s.gained) || !slices.Equal(lost, s.lost) {
			t.Errorf("step %d (%v): gained %v lost %v, want %v %v", i, s.members, gained, lost, s.gained, s.lost)
		}
		if got, want := slices.Sorted(maps.Keys(o.from)), assignment(cfg(s.members...))["b"]; !slices.Equal(got, want) {
			t.Errorf("step %d: owns %v, pcgroups gives b %v", i, got, want)
		}
	}
	// In the grace period a partition is owned but not delivered, until the
	// member it came from releases it (as of the same revision), or the
	// grace ends.
	two := func(members ...string) *pcgroups.ElasticConsumerGroupConfig {
		return &pcgroups.ElasticConsumerGroupConfig{MaxMembers: 2, Members: members}
	}
	aggIn := func(p int) string {
		for i := 0; ; i++ {
			if agg := fmt.Sprint("agg-", i); partitionOf(agg, 2) == p {
				return agg
			}
		}
	}
	agg := aggIn(assignment(two("a", "b"))["b"][0])
	for _, c := range []struct {
		name    string
		release func(o *ownership) // between taking revision 2 and the check
		early   bool               // a release heard before revision 2 was applied
		want    bool
	}{
		{name: "no release", release: func(*ownership) {}},
		{name: "released", release: func(o *ownership) { o.release(2, "a", []int{1}) }, want: true},
		{name: "released early", early: true, want: true},
		{name: "released by another member", release: func(o *ownership) { o.release(2, "c", []int{1}) }},
		{name: "released as of an older revision", release: func(o *ownership) { o.release(1, "a", []int{1}) }},
	} {
		now = t0
		o := newOwnership("b", 2, grace, func() time.Time { return now })
		o.apply(two("a"), 1)
		if c.early {
			o.release(2, "a", []int{1})
		}
		o.apply(two("a", "b"), 2)
		if c.release != nil {
			c.release(o)
		}
		if ok, from := o.deliverable(agg); ok != c.want || (!ok && !from.Equal(t0.Add(grace))) {
			t.Errorf("%s: deliverable = %v from %v, want %v", c.name, ok, from, c.want)
		}
		now = t0.Add(grace)
		if ok, _ := o.deliverable(agg); !ok {
			t.Errorf("%s: not deliverable after the grace", c.name)
		}
	}
}

// TestReplicasDeliverOnce: three dispatchers of one adapter share its
// partitions; while events arrive steadily, out of causal order, over many
// aggregates, and the LMS takes its time (deliveries are in flight
// whenever partitions move), one replica stops (3 -> 2) and another starts
// (2 -> 3). Every event reaches the LMS exactly once, in causal order per
// aggregate, and every running replica delivered a share.
func TestReplicasDeliverOnce(t *testing.T) {
	lms := newFakeLMS(t)
	lms.setRespond(func(r received) int {
		delay := 5 * time.Millisecond
		if n, _ := strconv.Atoi(r.subject[strings.LastIndex(r.subject, "/")+1:]); n%16 == 0 {
			delay = 300 * time.Millisecond
		}
		time.Sleep(delay)
		return 204
	})
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, "timeout: 1s"))
	f.cfg.Dispatcher.MaxPark = config.Dur(5 * time.Minute) // order, never orphans
	f.cfg.Dispatcher.AckWait = config.Dur(2 * time.Second)
	f.cfg.Dispatcher.Partitions = 12

	type replica struct {
		s    *Service
		stop func()
	}
	var replicas []*replica
	start := func() {
		s, stop := f.start()
		replicas = append(replicas, &replica{s, stop})
	}
	settled := func(want int) {
		t.Helper()
		natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			var total float64
			var each []float64
			for _, r := range replicas {
				if r.s != nil {
					n := testutil.ToFloat64(r.s.m.partitions.WithLabelValues("crm"))
					total += n
					each = append(each, n)
				}
			}
			if total != 12 || len(each) != want || slices.Contains(each, 0) {
				return fmt.Errorf("partitions owned: %v", each)
			}
			return nil
		})
	}
	progress := func(more int) {
		t.Helper()
		want := len(lms.received()) + more
		natstest.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
			if n := len(lms.received()); n < want {
				return fmt.Errorf("LMS has %d events, waiting for %d", n, want)
			}
			return nil
		})
	}
	for range 3 {
		start()
	}
	settled(3)

	// Out of causal order: a chat before its lead, a lead's sale before
	// its creation.
	ctx, stopPublishing := context.WithCancel(context.Background())
	var (
		wg   sync.WaitGroup
		sent int
	)
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			conv, lead := fmt.Sprintf("conv/%d", i), fmt.Sprintf("lead/%d", i)
			f.publish(event(fmt.Sprintf("chat-%d", i), "chat.message", conv, t0))
			f.publish(event(fmt.Sprintf("conv-%d", i), "lead.created", conv, t0))
			f.publish(event(fmt.Sprintf("sold-%d", i), "lead.sold", lead, t0))
			f.publish(event(fmt.Sprintf("created-%d", i), "lead.created", lead, t0))
			sent = (i + 1) * 4
			time.Sleep(12 * time.Millisecond)
		}
	})
	progress(300)
	t.Logf("3 -> 2: stopping a replica with %d events at the LMS", len(lms.received()))
	replicas[2].stop()
	replicas[2].s = nil
	settled(2)
	progress(300)
	t.Logf("2 -> 3: starting a replica with %d events at the LMS", len(lms.received()))
	start()
	settled(3)
	progress(300)
	stopPublishing()
	wg.Wait()

	natstest.CheckFor(t, 90*time.Second, 100*time.Millisecond, func() error {
		if n := len(lms.received()); n < sent {
			return fmt.Errorf("LMS has %d of %d events", n, sent)
		}
		return nil
	})
	got := lms.received()
	pos := map[string]int{}
	for i, r := range got {
		if _, twice := pos[r.id]; twice {
			t.Errorf("event %s delivered twice", r.id)
		}
		pos[r.id] = i
		if r.orphan {
			t.Errorf("event %s went out as an orphan", r.id)
		}
	}
	for i := range sent / 4 {
		if pos[fmt.Sprintf("conv-%d", i)] > pos[fmt.Sprintf("chat-%d", i)] {
			t.Errorf("aggregate conv/%d: chat before its lead", i)
		}
		if pos[fmt.Sprintf("created-%d", i)] > pos[fmt.Sprintf("sold-%d", i)] {
			t.Errorf("aggregate lead/%d: sold before created", i)
		}
	}
	if len(pos) != sent {
		t.Errorf("%d distinct events delivered, %d sent", len(pos), sent)
	}
	var shares []float64
	for _, r := range replicas {
		if r.s != nil {
			shares = append(shares, testutil.ToFloat64(r.s.m.deliveries.WithLabelValues("crm", "delivered")))
		}
	}
	t.Logf("%d events over %d aggregates, each delivered once in causal order; deliveries per running replica %v", sent, sent/2, shares)
	if slices.Contains(shares, 0) {
		t.Errorf("a running replica delivered nothing: %v", shares)
	}
}

// TestDeadMemberIsRemoved: a member that no process serves (it died: here
// one that never ran) holds partitions until the live members notice that
// its consumer is gone and remove it; then its aggregates are delivered,
// and the live member, busy with a slow LMS, holds every partition and
// never lost its consumer.
func TestDeadMemberIsRemoved(t *testing.T) {
	lms := newFakeLMS(t)
	lms.setRespond(func(received) int { time.Sleep(20 * time.Millisecond); return 204 })
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, ""))
	f.cfg.Dispatcher.Partitions = 4
	f.cfg.Dispatcher.MaxAckPending = 2 // it pulls little and waits a lot
	f.cfg.Dispatcher.AckWait = config.Dur(2 * time.Second)
	s, _ := f.start()
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := testutil.ToFloat64(s.m.partitions.WithLabelValues("crm")); n != 4 {
			return fmt.Errorf("owns %v partitions", n)
		}
		return nil
	})
	ctx := context.Background()
	if _, err := pcgroups.AddMembers(ctx, f.js, streams.EVENTS, "dispatch-crm", []string{"ghost"}); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		f.publish(event(fmt.Sprintf("ev-%d", i), "lead.created", fmt.Sprintf("agg/%d", i), t0))
	}
	natstest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		ms, err := Members(ctx, f.js, "crm")
		if err != nil {
			return err
		}
		if _, ok := ms["ghost"]; ok {
			return fmt.Errorf("ghost still a member: %v", ms)
		}
		if n := len(lms.received()); n < 200 {
			return fmt.Errorf("%d of 200 delivered", n)
		}
		return nil
	})
	ms, err := Members(ctx, f.js, "crm")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || len(ms[s.lanes[0].member]) != 4 {
		t.Fatalf("members after the ghost was removed: %v", ms)
	}
	if n := testutil.ToFloat64(s.m.consumerErrors.WithLabelValues("dispatch-crm")); n != 0 {
		t.Fatalf("the live, busy member lost its consumer %v times", n)
	}
}

// TestParkedAndRetryingMoveWithPartition: what a member holds in the
// ordering state, a parked chat message and a delivery being retried, is
// delivered by the member that takes the partitions over after it stops:
// the retry when the LMS takes it again, the chat right after its lead,
// each once.
func TestParkedAndRetryingMoveWithPartition(t *testing.T) {
	lms := newFakeLMS(t)
	var failing sync.Map // aggregate -> refused for now
	failing.Store("conv/r", true)
	lms.setRespond(func(r received) int {
		if _, ok := failing.Load(r.subject); ok {
			return 503
		}
		return 204
	})
	f := newFixture(t, adapterYAML("crm", lms.srv.URL, "max_attempts: 1000, max_age: 1h, backoff_initial: 200ms, backoff_max: 500ms"))
	f.cfg.Dispatcher.MaxPark = config.Dur(5 * time.Minute)
	a, stopA := f.start()
	f.publish(event("chat-p", "chat.message", "conv/p", t0))
	f.publish(event("lead-r", "lead.created", "conv/r", t0))
	kv, err := f.js.KeyValue(context.Background(), streams.DispatchBucket)
	if err != nil {
		t.Fatal(err)
	}
	state := func(agg string) *aggState {
		st, _, err := states{kv: kv}.load(context.Background(), stateKey("crm", agg))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	natstest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		if st := state("conv/p"); len(st.Queue) != 1 {
			return fmt.Errorf("conv/p queue %v", ids(st.Queue))
		}
		if st := state("conv/r"); st.Retry == nil || st.Retry.Attempts < 2 {
			return fmt.Errorf("conv/r not retrying yet: %+v", st.Retry)
		}
		return nil
	})
	b, _ := f.start()
	stopA() // leaves the group: b takes every partition over at once
	if n := testutil.ToFloat64(a.m.deliveries.WithLabelValues("crm", "delivered")); n != 0 {
		t.Fatalf("the first member delivered %v events", n)
	}
	failing.Delete("conv/r")
	f.publish(event("lead-p", "lead.created", "conv/p", t0))
	natstest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if n := len(lms.received()); n < 3 {
			return fmt.Errorf("LMS has %d of 3", n)
		}
		return nil
	})
	var order []string
	for _, r := range lms.received() {
		order = append(order, r.id)
	}
	if !slices.Equal(order, []string{"lead-r", "lead-p", "chat-p"}) && !slices.Equal(order, []string{"lead-p", "chat-p", "lead-r"}) && !slices.Equal(order, []string{"lead-p", "lead-r", "chat-p"}) {
		t.Fatalf("LMS got %v: chat-p must follow lead-p, each once", order)
	}
	// The LMS has a delivery before the member counts it: wait for the count.
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := testutil.ToFloat64(b.m.deliveries.WithLabelValues("crm", "delivered")); n != 3 {
			return fmt.Errorf("the member that took over delivered %v events, want 3", n)
		}
		return nil
	})
}

// TestNewOnlyBinds: on a JetStream nothing was provisioned on, New creates
// nothing and names what it misses; after Provision it binds; with a group
// provisioned for other partitions it says so.
func TestNewOnlyBinds(t *testing.T) {
	f := newFixture(t, adapterYAML("crm", "http://127.0.0.1:1", ""))
	ctx := context.Background()
	_, err := New(ctx, Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop(), Projection: true})
	if !errors.Is(err, streams.ErrNotProvisioned) {
		t.Fatalf("New = %v, want ErrNotProvisioned", err)
	}
	for _, want := range []string{"stream DLQ", "stream EVENTS-dispatch-crm", "bucket dispatch", "bucket leads", "consumer EVENTS > projection-leads"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	if _, err := f.js.KeyValue(ctx, streams.DispatchBucket); err == nil {
		t.Fatal("New created the dispatch bucket")
	}
	f.provision()
	s, err := New(ctx, Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop(), Projection: true})
	if err != nil {
		t.Fatalf("New after Provision: %v", err)
	}
	s.Close()
	f.cfg.Dispatcher.Partitions = 8
	if _, err := New(ctx, Options{Config: f.cfg, JetStream: f.js, Logger: zap.NewNop()}); !errors.Is(err, streams.ErrNotProvisioned) || !strings.Contains(err.Error(), "has 16 partitions") {
		t.Fatalf("New with 8 partitions over a group of 16 = %v", err)
	}
}
