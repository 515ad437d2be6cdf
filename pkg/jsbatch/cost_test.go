package jsbatch

import (
	"testing"
	"time"
)

// TestCostModelLearns: fed the costs measured on a single server with
// fsync (individual ~0.23 ms a message; atomic ~2.4 ms + 15 µs a message),
// the model commits small groups one by one and large ones atomically;
// fed a replicated stream's (atomic batches no cheaper than individual
// publishes), it stops batching.
func TestCostModelLearns(t *testing.T) {
	now := time.Unix(0, 0)
	m := newCostModel(now)
	for i := range 200 {
		n := 2 + i%100
		m.observe(false, n, time.Duration(n)*230*time.Microsecond, now)
		m.observe(true, n, 2400*time.Microsecond+time.Duration(n)*15*time.Microsecond, now)
	}
	if m.atomic(4, now) || !m.atomic(64, now) {
		t.Errorf("single server: atomic(4)=%v atomic(64)=%v, want false, true", m.atomic(4, now), m.atomic(64, now))
	}
	if th := m.threshold(1000); th < 9 || th > 13 {
		t.Errorf("single server: threshold %d, want about 11 (2.4 ms / (0.23 - 0.015) ms)", th)
	}
	if m.a < 2e-3 || m.a > 2.8e-3 || m.b < 10e-6 || m.b > 20e-6 {
		t.Errorf("fit a=%.2gs b=%.2gs, want about 2.4e-3 and 15e-6", m.a, m.b)
	}

	// The stream moves to a cluster: individual publishes get cheap (the
	// Raft log syncs many at once), atomic batches cost 1 ms + 20 µs.
	for i := range 300 {
		n := 2 + i%100
		m.observe(false, n, time.Duration(n)*15*time.Microsecond, now)
		m.observe(true, n, time.Millisecond+time.Duration(n)*20*time.Microsecond, now)
	}
	if m.atomic(64, now) || m.atomic(500, now) {
		t.Error("replicated: still batching, though individual publishes are cheaper at every size")
	}
	if th := m.threshold(1000); th != 0 {
		t.Errorf("replicated: threshold %d, want 0 (never)", th)
	}
}

// TestCostModelExplores: the mode that lost is tried again after
// exploreEvery, so a change of costs is noticed.
func TestCostModelExplores(t *testing.T) {
	now := time.Unix(0, 0)
	m := newCostModel(now)
	for range 100 {
		m.observe(true, 64, 3*time.Millisecond, now)
		m.observe(false, 8, 8*230*time.Microsecond, now)
	}
	if !m.atomic(64, now) {
		t.Fatal("atomic should win at 64")
	}
	later := now.Add(exploreEvery + time.Second)
	m.observe(true, 32, 3*time.Millisecond, later)
	if m.atomic(32, later) {
		t.Error("individual publishes not tried again after exploreEvery at a size where they cost at most 4x")
	}
	if !m.atomic(900, later) {
		t.Error("explored individual publishes at 900, where they would cost far more")
	}
	// A singleton is never an atomic batch.
	if m.atomic(1, later) {
		t.Error("atomic(1)")
	}
}

// TestMinAtomic: however cheap the model finds atomic batches, Adaptive
// publishes a group smaller than MinAtomic one by one; Atomic does not.
func TestMinAtomic(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		mode     Mode
		min      int
		smallest int // the smallest group committed atomically
	}{{Adaptive, 0, 8}, {Adaptive, 3, 3}, {Atomic, 0, 2}} {
		p := &Publisher{cfg: Config{Mode: tt.mode, MinAtomic: tt.min}, model: newCostModel(now)}
		p.cfg.setDefaults()
		p.model.ind = 1 // a second a message: atomic wins at every size
		for n := 1; n <= 20; n++ {
			if got, want := p.atomic(n), n >= tt.smallest; got != want {
				t.Errorf("%s, MinAtomic %d: atomic(%d) = %v, want %v", tt.mode, tt.min, n, got, want)
			}
		}
	}
}
