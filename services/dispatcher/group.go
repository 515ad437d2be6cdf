package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/pcgroups"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/streams"
)

// Each adapter's EVENTS consumption is an elastic partitioned consumer
// group of orbit.go's pcgroups, named dispatch-<adapter>. The group's
// work-queue stream (EVENTS-dispatch-<adapter>) sources the adapter's
// EVENTS subjects and puts in front of each the partition of its aggregate
// token, {{partition(n, <token>)}}; the members, one per dispatcher
// process, share the partitions, and JetStream delivers each partition to
// one member only. Membership is kept by the members themselves: a process
// adds itself when it starts and removes itself when it stops, after its
// deliveries in flight have been recorded; a member that no client serves
// any more (the process died) is removed by the others (reap).

// groupName is an adapter's consumer group.
func groupName(adapter string) string { return "dispatch-" + adapter }

// GroupStream is the work-queue stream of an adapter's consumer group.
func GroupStream(adapter string) string { return streams.EVENTS + "-" + groupName(adapter) }

// groupBucket is where pcgroups keeps the elastic groups' configurations.
const groupBucket = "elastic-consumer-groups"

// groupKey is an adapter's group configuration's key in groupBucket.
func groupKey(adapter string) string { return streams.EVENTS + "." + groupName(adapter) }

// partitioningFilters are the adapter's EVENTS filter subjects with the
// aggregate token as the last wildcard, the one partitioned on.
func partitioningFilters(a *config.Adapter) []pcgroups.PartitioningFilter {
	var out []pcgroups.PartitioningFilter
	for _, f := range filterSubjects(a) {
		out = append(out, pcgroups.PartitioningFilter{Filter: f, PartitioningWildcards: []int{strings.Count(f, "*")}})
	}
	return out
}

// ensureGroup creates an adapter's consumer group, or finds it as it is.
// A group with other partitions or filters is refused: pcgroups cannot
// change one in place.
func ensureGroup(ctx context.Context, js jetstream.JetStream, a *config.Adapter, partitions int) error {
	if _, err := pcgroups.CreateElastic(ctx, js, streams.EVENTS, groupName(a.Name), uint(partitions), partitioningFilters(a), -1, -1); err != nil {
		return fmt.Errorf("consumer group %s on EVENTS (partitions %d, subjects %v): %w; if dispatcher.partitions or the adapter's types or tenants changed, drain the adapter and delete the group first (README, Scaling)",
			groupName(a.Name), partitions, filterSubjects(a), err)
	}
	return nil
}

// checkGroup finds an adapter's consumer group as Provision made it for
// partitions: a group of another size or other subjects needs provisioning
// again (after it is deleted, see ensureGroup).
func checkGroup(ctx context.Context, js jetstream.JetStream, a *config.Adapter, partitions int) error {
	c, err := pcgroups.GetElasticConsumerGroupConfig(ctx, js, streams.EVENTS, groupName(a.Name))
	if err != nil {
		return fmt.Errorf("consumer group %s: %w: %w", groupName(a.Name), err, streams.ErrNotProvisioned)
	}
	if int(c.MaxMembers) != partitions || !slices.EqualFunc(c.PartitioningFilters, partitioningFilters(a), func(x, y pcgroups.PartitioningFilter) bool {
		return x.Filter == y.Filter && slices.Equal(x.PartitioningWildcards, y.PartitioningWildcards)
	}) {
		return fmt.Errorf("consumer group %s has %d partitions over %v, the config wants %d over %v: %w",
			groupName(a.Name), c.MaxMembers, c.PartitioningFilters, partitions, filterSubjects(a), streams.ErrNotProvisioned)
	}
	return nil
}

// partitionOf is the partition of agg in a group of n partitions: what the
// group stream's {{partition(n, token)}} computes, nats-server's FNV-1a of
// the token modulo n.
func partitionOf(agg string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(streams.AggregateToken(agg)))
	return int(h.Sum32() % uint32(n))
}

// assignment is the partitions each member of a group configuration
// delivers, as pcgroups assigns them.
func assignment(c *pcgroups.ElasticConsumerGroupConfig) map[string][]int {
	out := map[string][]int{}
	names := slices.Clone(c.Members)
	for _, m := range c.MemberMappings {
		names = append(names, m.Member)
	}
	for _, m := range names {
		for _, f := range pcgroups.GeneratePartitionFilters(c.Members, c.MaxMembers, c.MemberMappings, m, "x") {
			p, _, _ := strings.Cut(f, ".")
			if n, err := strconv.Atoi(p); err == nil {
				out[m] = append(out[m], n)
			}
		}
	}
	return out
}

// ownership is what a process knows of its own partitions of one adapter's
// group: which it delivers, and from when. A partition it takes over from a
// member that is still running (one joined, and the partitions were spread
// again) is delivered once that member says it has released it (it
// finished and recorded the deliveries of the partition it had in flight),
// or after a grace period, the longest such a delivery can take. One taken
// over from a member that left (stopped after recording its deliveries, or
// died) is delivered at once.
type ownership struct {
	member     string
	partitions int
	grace      time.Duration
	now        func() time.Time

	mu      sync.Mutex
	members []string
	rev     uint64            // the group configuration's revision applied last
	from    map[int]time.Time // owned partition -> when its deliveries may start
	prev    map[int]string    // owned partition in its grace -> the member it came from
	// released are releases heard before their revision was applied here.
	released map[release]bool
}

// release is a member's word that it delivers partition p no more, as of
// the group configuration's revision rev.
type release struct {
	rev       uint64
	member    string
	partition int
}

func newOwnership(member string, partitions int, grace time.Duration, now func() time.Time) *ownership {
	return &ownership{member: member, partitions: partitions, grace: grace, now: now,
		from: map[int]time.Time{}, prev: map[int]string{}, released: map[release]bool{}}
}

// apply takes the group configuration of revision rev, and returns the
// partitions this member gained (with when each may be delivered; also
// those whose grace ended) and lost.
func (o *ownership) apply(c *pcgroups.ElasticConsumerGroupConfig, rev uint64) (gained map[int]time.Time, lost []int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	prev := map[int]string{}
	if o.rev > 0 {
		old := &pcgroups.ElasticConsumerGroupConfig{MaxMembers: c.MaxMembers, Members: o.members}
		for m, ps := range assignment(old) {
			for _, p := range ps {
				prev[p] = m
			}
		}
	}
	mine := assignment(c)[o.member]
	now := o.now()
	gained = map[int]time.Time{}
	for _, p := range mine {
		if _, ok := o.from[p]; ok {
			continue
		}
		at := now
		if m, ok := prev[p]; ok && m != o.member && slices.Contains(c.Members, m) && !o.released[release{rev, m, p}] {
			at = now.Add(o.grace)
			o.prev[p] = m
		}
		o.from[p] = at
		gained[p] = at
	}
	for p := range o.from {
		if !slices.Contains(mine, p) {
			delete(o.from, p)
			delete(o.prev, p)
			lost = append(lost, p)
		}
	}
	// A partition's grace ends when the member it came from has left the
	// group (after recording its deliveries, or removed as dead).
	for p, m := range o.prev {
		if !slices.Contains(c.Members, m) {
			delete(o.prev, p)
			if o.from[p].After(now) {
				o.from[p] = now
				gained[p] = now
			}
		}
	}
	for r := range o.released {
		if r.rev <= rev {
			delete(o.released, r)
		}
	}
	o.members = slices.Clone(c.Members)
	o.rev = rev
	return gained, lost
}

// release takes member's word that it released partitions ps as of
// revision rev, and returns those that may now be delivered at once.
func (o *ownership) release(rev uint64, member string, ps []int) []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case rev > o.rev: // heard before this process applied rev
		for _, p := range ps {
			o.released[release{rev, member, p}] = true
		}
		return nil
	case rev < o.rev:
		return nil // the partitions have moved again since
	}
	var out []int
	now := o.now()
	for _, p := range ps {
		if o.prev[p] == member && o.from[p].After(now) {
			o.from[p] = now
			delete(o.prev, p)
			out = append(out, p)
		}
	}
	return out
}

// deliverable reports whether this process delivers agg's events now, and
// if it owns agg but is still in the grace period, when it will.
func (o *ownership) deliverable(agg string) (ok bool, from time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	at, owned := o.from[partitionOf(agg, o.partitions)]
	if !owned {
		return false, time.Time{}
	}
	return !o.now().Before(at), at
}

// owned is the number of partitions this process owns.
func (o *ownership) owned() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.from)
}

// defaultMember is the member name of a dispatcher without
// dispatcher.member: its host name (a pod's name) and process id, as a
// consumer name, and a count when one process runs several dispatchers
// (two members of one name would both deliver).
func defaultMember() string {
	host, _ := os.Hostname()
	host = strings.Trim(invalidMember.ReplaceAllString(host, "-"), "-")
	if host == "" {
		host = "dispatcher"
	}
	name := fmt.Sprintf("%.40s-%d", host, os.Getpid())
	if n := members.Add(1); n > 1 {
		name += fmt.Sprintf("-%d", n)
	}
	return name
}

// members counts the dispatchers this process made with a default name.
var members atomic.Int64

var invalidMember = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// membership keeps this process in an adapter's group while it runs: it
// joins when there is room (a group has at most as many members as
// partitions), watches the group's configuration to know its partitions,
// and removes members whose consumer is gone (dead processes).
type membership struct {
	js      jetstream.JetStream
	adapter string
	member  string
	own     *ownership
	// every is how often the group's consumers are looked at (reapEvery).
	every time.Duration
	// rejoin is how long after a change of the group a member's consumer
	// may be missing while pcgroups makes it again: its retry interval,
	// the consumers' ack_wait, and a second.
	rejoin time.Duration
	// onChange is told the partitions gained (and when they may be
	// delivered) and lost, after each change of configuration (of
	// revision rev).
	onChange func(rev uint64, gained map[int]time.Time, lost []int)
	// onMissing is called when this member has partitions but no consumer
	// on the group's stream, three looks in a row.
	onMissing func()
	logf      func(msg string, kv ...any)

	mu      sync.Mutex
	leaving bool
}

// run follows the group's configuration until ctx ends.
func (ms *membership) run(ctx context.Context) error {
	kv, err := ms.js.KeyValue(ctx, groupBucket)
	if err != nil {
		return fmt.Errorf("consumer group bucket %s: %w", groupBucket, err)
	}
	w, err := kv.Watch(ctx, groupKey(ms.adapter))
	if err != nil {
		return fmt.Errorf("watching consumer group %s: %w", groupName(ms.adapter), err)
	}
	defer func() { _ = w.Stop() }()
	t := time.NewTicker(ms.every)
	defer t.Stop()
	misses, acked := map[string]int{}, map[string]time.Time{}
	var (
		cur     *pcgroups.ElasticConsumerGroupConfig
		changed time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watching consumer group %s: watcher closed", groupName(ms.adapter))
			}
			if e == nil {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				return fmt.Errorf("consumer group %s was deleted", groupName(ms.adapter))
			}
			c := &pcgroups.ElasticConsumerGroupConfig{}
			if err := json.Unmarshal(e.Value(), c); err != nil {
				return fmt.Errorf("consumer group %s: %w", groupName(ms.adapter), err)
			}
			cur, changed = c, time.Now()
			clear(misses) // the looks start over with the new members' consumers
			gained, lost := ms.own.apply(c, e.Revision())
			if len(gained) > 0 || len(lost) > 0 {
				ms.onChange(e.Revision(), gained, lost)
			}
			ms.join(ctx, c)
		case <-t.C:
			if cur == nil {
				continue
			}
			ms.join(ctx, cur)
			ms.reap(ctx, cur, changed, misses, acked)
		}
	}
}

// join adds this member to the group unless it is in it, leaving, or the
// group is full (then it waits, idle, for a member to go).
func (ms *membership) join(ctx context.Context, c *pcgroups.ElasticConsumerGroupConfig) {
	ms.mu.Lock()
	leaving := ms.leaving
	ms.mu.Unlock()
	if leaving || c.IsInMembership(ms.member) || uint(len(c.Members)) >= c.MaxMembers {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := pcgroups.AddMembers(ctx, ms.js, streams.EVENTS, groupName(ms.adapter), []string{ms.member}); err != nil {
		ms.logf("joining consumer group failed, will retry", "error", err)
	}
}

// reap removes members that no client serves, three looks in a row
// (reapEvery apart, counted afresh after each change of the group): whose
// consumer on the group's stream has neither a pull request waiting nor
// been delivered or acknowledged anything since the look before (the
// server drops the requests of a client that is gone; a live member has one
// outstanding, or, when it holds max_ack_pending messages and pulls no
// more, acknowledges them and is delivered more), or whose consumer is
// missing longer than rejoin after the last change. It deletes their
// consumers too, so that the messages they held go to the members that
// take their partitions over. A member wrongly removed (its connection
// down for those looks) comes back by itself (join). It also tells
// onMissing when this member is the one without a consumer.
func (ms *membership) reap(ctx context.Context, c *pcgroups.ElasticConsumerGroupConfig, changed time.Time, misses map[string]int, acked map[string]time.Time) {
	if !c.IsInMembership(ms.member) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := ms.js.Stream(ctx, GroupStream(ms.adapter))
	if err != nil {
		return
	}
	served := map[string]bool{}
	present := map[string]bool{}
	infos := st.ListConsumers(ctx)
	for ci := range infos.Info() {
		present[ci.Name] = true
		// Its last delivery or ack-floor move: a member that has
		// max_ack_pending messages pulls no more, but acks, and is
		// delivered more as it does.
		var last time.Time
		for _, t := range []*time.Time{ci.Delivered.Last, ci.AckFloor.Last} {
			if t != nil && t.After(last) {
				last = *t
			}
		}
		prev, seen := acked[ci.Name]
		served[ci.Name] = ci.NumWaiting > 0 || (seen && last.After(prev))
		acked[ci.Name] = last
	}
	if infos.Err() != nil {
		return
	}
	has := assignment(c)
	var dead []string
	for _, m := range c.Members {
		ok := served[m]
		if m == ms.member {
			ok = present[m] // its own pulls may be between two requests
		}
		if ok || len(has[m]) == 0 {
			delete(misses, m)
			continue
		}
		if !present[m] && time.Since(changed) < ms.rejoin {
			// pcgroups makes the members' consumers again after a change
			// of the group, and one that overlaps another's old filters
			// waits for the next try, rejoin later.
			continue
		}
		misses[m]++
		if misses[m] < 3 {
			continue
		}
		delete(misses, m)
		if m == ms.member {
			ms.onMissing()
			continue
		}
		dead = append(dead, m)
	}
	if len(dead) == 0 {
		return
	}
	if _, err := pcgroups.DeleteMembers(ctx, ms.js, streams.EVENTS, groupName(ms.adapter), dead); err != nil {
		ms.logf("removing members no client serves failed, will retry", "members", dead, "error", err)
		return
	}
	for _, m := range dead {
		if err := ms.js.DeleteConsumer(ctx, GroupStream(ms.adapter), m); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			ms.logf("deleting a removed member's consumer failed; it lapses after ack_wait", "member", m, "error", err)
		}
	}
	ms.logf("removed members no client serves from the group", "members", dead)
}

// reapEvery is how often a member looks at the group's consumers: a dead
// member is removed after three looks (a member without a consumer after
// three looks past rejoin).
const reapEvery = 2 * time.Second

// leave removes this member from the group and deletes its consumer, so
// that the others take its partitions over at once. Called once this
// process has recorded its deliveries in flight.
func (ms *membership) leave(ctx context.Context) error {
	ms.mu.Lock()
	ms.leaving = true
	ms.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var errs []error
	for range 3 { // the configuration is updated with compare-and-set
		_, err := pcgroups.DeleteMembers(ctx, ms.js, streams.EVENTS, groupName(ms.adapter), []string{ms.member})
		if err == nil {
			errs = nil
			break
		}
		errs = append(errs, err)
	}
	if err := ms.js.DeleteConsumer(ctx, GroupStream(ms.adapter), ms.member); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// PartitionOf is the partition of aggregate agg in an adapter's group of n
// partitions (dispatcher.partitions).
func PartitionOf(agg string, n int) int { return partitionOf(agg, n) }

// Members returns the members of an adapter's consumer group and the
// partitions each delivers.
func Members(ctx context.Context, js jetstream.JetStream, adapter string) (map[string][]int, error) {
	c, err := pcgroups.GetElasticConsumerGroupConfig(ctx, js, streams.EVENTS, groupName(adapter))
	if err != nil {
		return nil, fmt.Errorf("consumer group %s: %w", groupName(adapter), err)
	}
	out := assignment(c)
	for _, m := range c.Members {
		if _, ok := out[m]; !ok {
			out[m] = nil // a member over the number of partitions: idle
		}
	}
	return out, nil
}
