package bench

import (
	"os"
	"strconv"
	"strings"
)

// cpuTimes is a snapshot of CPU time in clock ticks: the whole machine's,
// and this process's. Their difference over a window is what other
// processes took from the cores the measurement shares, which the load
// average cannot tell apart from the bench's own work.
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
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}
		}
		// guest and guest_nice (9th and 10th) are already in user and nice.
		if i >= 8 {
			break
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

// otherCPUs is how many CPUs' worth of time other processes used between
// the snapshots a and b of a machine with cpus CPUs, or -1 when unknown.
func otherCPUs(a, b cpuTimes, cpus int) float64 {
	if !a.ok || !b.ok || b.total <= a.total {
		return -1
	}
	busy := float64(b.busy - a.busy)
	self := float64(b.self - a.self)
	return max(0, busy-self) / float64(b.total-a.total) * float64(cpus)
}
