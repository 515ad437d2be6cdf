package bench

import (
	"os"
	"strconv"
	"strings"
)

// noisy is how many CPUs' worth of other processes' work makes a
// measurement suspect, as in the edge's and the normalizer's reports.
const noisy = 0.2

// cpuTimes is a snapshot of CPU time in clock ticks: the whole machine's,
// and this process's. Over a window they tell how much of the cores the
// bench used (well below the cores it has: the fsyncs, not the CPU, were the
// limit) and how much other processes took from it. It is the normalizer
// bench's, copied: the two modules share no bench code, and pkg/ is for
// what the services themselves need.
type cpuTimes struct {
	total, busy, self uint64
	ok                bool
}

// readCPUTimes reads /proc; elsewhere it returns a snapshot that is not ok.
func readCPUTimes() cpuTimes {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuTimes{}
	}
	var t cpuTimes
	for i, s := range f[1:] {
		// guest and guest_nice (9th and 10th) are already in user and nice.
		if i >= 8 {
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return cpuTimes{}
	}
	// The command name may hold spaces; the fields after it do not.
	i := strings.LastIndexByte(string(self), ')')
	if i < 0 {
		return cpuTimes{}
	}
	sf := strings.Fields(string(self)[i+1:])
	if len(sf) < 13 {
		return cpuTimes{}
	}
	utime, err1 := strconv.ParseUint(sf[11], 10, 64)
	stime, err2 := strconv.ParseUint(sf[12], 10, 64)
	if err1 != nil || err2 != nil {
		return cpuTimes{}
	}
	t.self = utime + stime
	t.ok = true
	return t
}

// cpuUse is how many CPUs' worth of time this process and other processes
// used between the snapshots a and b on a machine with cpus CPUs, -1 each
// where unknown.
func cpuUse(a, b cpuTimes, cpus int) (self, others float64) {
	if !a.ok || !b.ok || b.total <= a.total {
		return -1, -1
	}
	window := float64(b.total-a.total) / float64(cpus)
	s := float64(b.self - a.self)
	busy := float64(b.busy - a.busy)
	return s / window, max(0, busy-s) / window
}
