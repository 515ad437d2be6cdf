package measure

import (
	"runtime"
	"testing"
	"time"
)

const (
	// procStat is /proc/stat's first lines: 1200 ticks in all, of which
	// idle 1000 and iowait 20; guest and guest_nice are in user and nice.
	procStat = "cpu  100 5 50 1000 20 0 10 15 7 3\ncpu0 50 2 25 500 10 0 5 7 3 1\n"
	// procSelf is /proc/self/stat of a process whose command name holds
	// spaces and parentheses, with utime 30 and stime 12.
	procSelf = "42 (my (odd) prog) S 1 42 42 0 -1 4194304 100 0 0 0 30 12 0 0 20 0 1 0 336892 3133440 380\n"
)

func TestParseCPU(t *testing.T) {
	tests := []struct {
		name       string
		stat, self string
		want       CPU
	}{
		{"both read", procStat, procSelf, CPU{total: 1200, busy: 180, self: 42, ok: true}},
		{"guest fields are not read", "cpu  100 5 50 1000 20 0 10 15 x y\n", procSelf, CPU{total: 1200, busy: 180, self: 42, ok: true}},
		{"no guest fields", "cpu  100 5 50 1000 20 0 10 15\n", procSelf, CPU{total: 1200, busy: 180, self: 42, ok: true}},
		{"too few machine fields", "cpu  100 5 50 1000 20 0\n", procSelf, CPU{}},
		{"not the cpu line", "cpu0 100 5 50 1000 20 0 10 15 7 3\n", procSelf, CPU{}},
		{"machine field not a number", "cpu  100 5 x 1000 20 0 10 15 7 3\n", procSelf, CPU{}},
		{"empty stat", "", procSelf, CPU{}},
		{"no command name", procStat, "42 S 1 42", CPU{}},
		{"too few process fields", procStat, "42 (prog) S 1 42 42 0 -1 4194304 100 0 0 0 30\n", CPU{}},
		{"process field not a number", procStat, "42 (prog) S 1 42 42 0 -1 4194304 100 0 0 0 30 x 0\n", CPU{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseCPU(tt.stat, tt.self); got != tt.want {
				t.Errorf("parseCPU = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUse(t *testing.T) {
	at := CPU{total: 1000, busy: 100, self: 40, ok: true}
	tests := []struct {
		name         string
		a, b         CPU
		cpus         int
		self, others float64
	}{
		// 400 ticks over 4 CPUs: a window of 100 ticks each.
		{"self and others", at, CPU{total: 1400, busy: 250, self: 90, ok: true}, 4, 0.5, 1},
		{"nothing else ran", at, CPU{total: 1400, busy: 150, self: 90, ok: true}, 4, 0.5, 0},
		// busy and self are read at different instants: self can get ahead.
		{"others never negative", at, CPU{total: 1400, busy: 120, self: 90, ok: true}, 4, 0.5, 0},
		{"first not read", CPU{}, CPU{total: 1400, busy: 250, self: 90, ok: true}, 4, -1, -1},
		{"second not read", at, CPU{}, 4, -1, -1},
		{"no time between", at, at, 4, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			self, others := tt.a.Use(tt.b, tt.cpus)
			if self != tt.self || others != tt.others {
				t.Errorf("Use = %g, %g; want %g, %g", self, others, tt.self, tt.others)
			}
		})
	}
}

// TestReadCPU: on Linux a snapshot reads, and after this process has spent
// CPU time, Use says so and gives no negative figure.
func TestReadCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		if ReadCPU().OK() {
			t.Fatal("a snapshot read without /proc")
		}
		t.Skip("no /proc")
	}
	a := ReadCPU()
	if !a.OK() {
		t.Fatal("snapshot not read on Linux")
	}
	// Spin until the process's own clock ticks over, bounded: a tick is
	// 10ms of CPU at the usual 100 Hz.
	var b CPU
	x := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		for i := range 1_000_000 {
			x ^= i
		}
		if b = ReadCPU(); b.self > a.self && b.total > a.total {
			break
		}
	}
	self, others := a.Use(b, runtime.NumCPU())
	if self <= 0 || others < 0 {
		t.Fatalf("Use = %g, %g after spinning (%d); want self above 0, others not negative", self, others, x)
	}
}
