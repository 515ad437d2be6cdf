package measure

import (
	"os"
	"strconv"
	"strings"
)

// Noisy is how many CPUs' worth of other processes' work during a window
// makes its figures suspect: the benches run on the cores they measure, so
// other work shows in their timings.
const Noisy = 0.2

// CPU is a snapshot of CPU time in clock ticks: the whole machine's, and
// this process's. Over a window two of them tell how much of the cores the
// bench used (well below the cores it has: something other than the CPU,
// such as fsyncs, was the limit) and how much other processes took from
// them, which the load average cannot tell apart from the bench's own work.
type CPU struct {
	total, busy, self uint64
	ok                bool
}

// ReadCPU takes a snapshot from /proc; elsewhere, or when /proc does not
// read as expected, it returns one that is not OK.
func ReadCPU() CPU {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPU{}
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return CPU{}
	}
	return parseCPU(string(stat), string(self))
}

// parseCPU reads the machine's times from the first line of /proc/stat and
// this process's from /proc/self/stat.
func parseCPU(stat, self string) CPU {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return CPU{}
	}
	var c CPU
	for i, s := range f[1:] {
		// guest and guest_nice (9th and 10th) are already in user and nice.
		if i >= 8 {
			break
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return CPU{}
		}
		c.total += v
		if i != 3 && i != 4 { // idle, iowait
			c.busy += v
		}
	}
	// The command name may hold spaces; the fields after it do not.
	i := strings.LastIndexByte(self, ')')
	if i < 0 {
		return CPU{}
	}
	sf := strings.Fields(self[i+1:])
	if len(sf) < 13 {
		return CPU{}
	}
	utime, err1 := strconv.ParseUint(sf[11], 10, 64)
	stime, err2 := strconv.ParseUint(sf[12], 10, 64)
	if err1 != nil || err2 != nil {
		return CPU{}
	}
	c.self = utime + stime
	c.ok = true
	return c
}

// OK says the snapshot was read: false where there is no /proc (not Linux).
func (c CPU) OK() bool { return c.ok }

// Use is how many CPUs' worth of time this process (self) and other
// processes (others) used between the snapshots c and later on a machine
// with cpus CPUs, -1 each where unknown: either snapshot not OK, or no time
// between them. The reports print -1 as unknown rather than as a figure.
func (c CPU) Use(later CPU, cpus int) (self, others float64) {
	if !c.ok || !later.ok || later.total <= c.total {
		return -1, -1
	}
	window := float64(later.total-c.total) / float64(cpus)
	s := float64(later.self - c.self)
	busy := float64(later.busy - c.busy)
	return s / window, max(0, busy-s) / window
}
