package jsbatch

import "time"

// costModel predicts what committing n messages costs in each mode, from
// the commits it has seen, so that the publisher picks the cheaper one.
//
// Measured on a single server with fsync before every ack (`make bench`,
// README Performance): an individual publish costs one fsync of the stream
// (~0.23 ms on that disk), and the stream syncs its publishes one after the
// other; an atomic batch costs a fixed ~2.4 ms (nats-server stages an R1
// file stream's batch in a file store of its own: directories, metadata
// written with O_SYNC, two directory fsyncs, removed after the commit) plus
// ~15 µs a message, and one fsync for the whole batch. Below about ten
// messages individual publishes win; above, atomic batches do, by far. On
// a replicated stream the batch is staged in memory and both costs differ:
// hence a model that learns rather than a constant.
//
// Individual publishes cost ind per message (an EWMA). Atomic batches cost
// a + b·n, fitted by exponentially weighted least squares over (n, seconds).
type costModel struct {
	ind float64
	// Weighted sums of 1, n, n², d and n·d over atomic commits.
	s1, sn, snn, sd, snd float64
	// a and b are the last fit.
	a, b float64
	// Commits since each mode was last measured, to try the other mode
	// now and then: what was slower may have become faster (a leader moved,
	// a disk got busy).
	lastInd, lastAtomic time.Time
}

const (
	// forget is the weight the past keeps at each new observation.
	forget = 0.95
	// exploreEvery is how often the mode not chosen is tried anyway.
	exploreEvery = 5 * time.Second
)

func newCostModel(now time.Time) *costModel {
	m := &costModel{ind: 250e-6, a: 2.5e-3, b: 15e-6, lastInd: now, lastAtomic: now}
	// Two pseudo-observations, so that the fit is defined from the start.
	for _, n := range []float64{2, 64} {
		m.s1++
		m.sn += n
		m.snn += n * n
		d := m.a + m.b*n
		m.sd += d
		m.snd += n * d
	}
	return m
}

// observe records a commit of n messages that took d.
func (m *costModel) observe(atomic bool, n int, d time.Duration, now time.Time) {
	if n <= 0 {
		return
	}
	sec, fn := d.Seconds(), float64(n)
	if !atomic {
		m.ind = forget*m.ind + (1-forget)*sec/fn
		m.lastInd = now
		return
	}
	m.lastAtomic = now
	m.s1 = forget*m.s1 + 1
	m.sn = forget*m.sn + fn
	m.snn = forget*m.snn + fn*fn
	m.sd = forget*m.sd + sec
	m.snd = forget*m.snd + fn*sec
	// A fit needs batches of different sizes; with sizes all alike the
	// slope stays what it was and only the intercept follows.
	if det := m.s1*m.snn - m.sn*m.sn; det > 1e-9*m.s1*m.snn {
		if b := (m.s1*m.snd - m.sn*m.sd) / det; b >= 0 {
			m.b = b
		}
	}
	m.a = max((m.sd-m.b*m.sn)/m.s1, 0)
}

// atomic reports whether n messages are cheaper committed as one atomic
// batch than published one by one, trying the mode that lost every
// exploreEvery so its estimate stays current.
func (m *costModel) atomic(n int, now time.Time) bool {
	if n < 2 {
		return false
	}
	fn := float64(n)
	atomic := m.a+m.b*fn < m.ind*fn
	switch {
	case atomic && now.Sub(m.lastInd) > exploreEvery && m.ind*fn < 4*(m.a+m.b*fn):
		// Individual publishes are tried on a batch they would not make
		// much slower, so a wrong guess costs little.
		return false
	case !atomic && now.Sub(m.lastAtomic) > exploreEvery:
		return true
	}
	return atomic
}

// threshold is the smallest batch the model commits atomically (0 when
// none up to max), for the bench and metrics.
func (m *costModel) threshold(max int) int {
	for n := 2; n <= max; n++ {
		if m.a+m.b*float64(n) < m.ind*float64(n) {
			return n
		}
	}
	return 0
}
