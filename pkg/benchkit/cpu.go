package benchkit

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/procfs"
)

// Noisy is how many CPUs' worth of other processes' work during a window
// makes its figures suspect: the benches run on the cores they measure, so
// other work shows in their timings.
const Noisy = 0.2

// NoiseWarning is what a report says when other processes used more than
// Noisy during a window.
const NoiseWarning = "other work shared the cores: the figures are noisy, run again on a quiet machine"

// CPU is a snapshot of CPU time, in seconds: the whole machine's busy time
// and this process's. Over a window two of them tell how much of the cores
// the bench used (well below the cores it has: something other than the
// CPU, such as fsyncs, was the limit) and how much other processes took
// from them, which the load average cannot tell apart from the bench's own
// work.
type CPU struct {
	at         time.Time
	busy, self float64
	ok         bool
}

// ReadCPU takes a snapshot from /proc; elsewhere, or when /proc does not
// read, it returns one that is not OK.
func ReadCPU() CPU {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return CPU{}
	}
	return readCPU(fs, os.Getpid())
}

// readCPU reads the machine's times from fs's stat and process pid's from
// its stat.
func readCPU(fs procfs.FS, pid int) CPU {
	stat, err := fs.Stat()
	if err != nil {
		return CPU{}
	}
	proc, err := fs.Proc(pid)
	if err != nil {
		return CPU{}
	}
	ps, err := proc.Stat()
	if err != nil {
		return CPU{}
	}
	t := stat.CPUTotal
	// Idle and iowait are not busy; guest and guest_nice are already in
	// user and nice.
	busy := t.User + t.Nice + t.System + t.IRQ + t.SoftIRQ + t.Steal
	return CPU{at: time.Now(), busy: busy, self: ps.CPUTime(), ok: true}
}

// OK says the snapshot was read: false where there is no /proc (not Linux).
func (c CPU) OK() bool { return c.ok }

// Use is how many CPUs' worth of time this process (Self) and other
// processes (Others) used over a window, -1 each where unknown. The
// reports print -1 as unknown rather than as a figure.
type Use struct {
	Self, Others float64
}

// Known says the figures were measured.
func (u Use) Known() bool { return u.Self >= 0 }

// Noisy says other processes used enough to make the window's figures
// suspect.
func (u Use) Noisy() bool { return u.Others > Noisy }

// String is the reports' line about the window's CPU use, with
// NoiseWarning where it applies; empty where unknown.
func (u Use) String() string {
	if !u.Known() {
		return ""
	}
	s := fmt.Sprintf("this process used %.2f CPUs during the window, other processes %.2f", u.Self, u.Others)
	if u.Noisy() {
		s += " - " + NoiseWarning
	}
	return s
}

// Until is the Use between the snapshots c and later: unknown when either
// is not OK or no time passed between them.
func (c CPU) Until(later CPU) Use {
	window := later.at.Sub(c.at).Seconds()
	if !c.ok || !later.ok || window <= 0 {
		return Use{-1, -1}
	}
	self := later.self - c.self
	// The machine's and the process's times are read at different
	// instants: self can get ahead of busy.
	return Use{Self: self / window, Others: max(0, later.busy-c.busy-self) / window}
}
