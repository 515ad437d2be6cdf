package benchkit

import (
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// TestReadCPUFrom reads a /proc of testdata: the machine's first line has
// user 100, nice 5, system 50, idle 1000, iowait 20, irq 0, softirq 10,
// steal 15 ticks (guest and guest_nice, already in user and nice, follow),
// and process 42, whose command name holds spaces and parentheses, utime
// 30 and stime 12; at 100 ticks a second.
func TestReadCPUFrom(t *testing.T) {
	fs, err := procfs.NewFS("testdata/proc")
	if err != nil {
		t.Fatal(err)
	}
	c := readCPU(fs, 42)
	if !c.OK() {
		t.Fatal("snapshot not read")
	}
	if math.Abs(c.busy-1.8) > 1e-9 || math.Abs(c.self-0.42) > 1e-9 {
		t.Errorf("busy %gs, self %gs; want 1.8s and 0.42s", c.busy, c.self)
	}
	if readCPU(fs, 43).OK() {
		t.Error("a snapshot of a process that is not there")
	}
	if none, err := procfs.NewFS(t.TempDir()); err == nil && readCPU(none, 42).OK() {
		t.Error("a snapshot without a stat file")
	}
}

func TestUntil(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := CPU{at: t0, busy: 10, self: 4, ok: true}
	later := func(d time.Duration, busy, self float64) CPU {
		return CPU{at: t0.Add(d), busy: busy, self: self, ok: true}
	}
	tests := []struct {
		name  string
		a, b  CPU
		want  Use
		known bool
	}{
		{"self and others", at, later(2*time.Second, 13, 5), Use{0.5, 1}, true},
		{"nothing else ran", at, later(2*time.Second, 11, 5), Use{0.5, 0}, true},
		// busy and self are read at different instants: self can get ahead.
		{"others never negative", at, later(2*time.Second, 10.5, 5), Use{0.5, 0}, true},
		{"first not read", CPU{}, later(2*time.Second, 13, 5), Use{-1, -1}, false},
		{"second not read", at, CPU{}, Use{-1, -1}, false},
		{"no time between", at, at, Use{-1, -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.a.Until(tt.b)
			if got != tt.want || got.Known() != tt.known {
				t.Errorf("Until = %+v (known %v), want %+v", got, got.Known(), tt.want)
			}
		})
	}
}

func TestUseString(t *testing.T) {
	tests := []struct {
		u    Use
		want string
	}{
		{Use{-1, -1}, ""},
		{Use{1.5, 0.1}, "this process used 1.50 CPUs during the window, other processes 0.10"},
		{Use{1.5, 0.3}, "this process used 1.50 CPUs during the window, other processes 0.30 - " + NoiseWarning},
	}
	for _, tt := range tests {
		if got := tt.u.String(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.u, got, tt.want)
		}
	}
}

// TestReadCPU: on Linux a snapshot reads, and after this process has spent
// CPU time, Until says so and gives no negative figure.
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
		if b = ReadCPU(); b.self > a.self {
			break
		}
	}
	u := a.Until(b)
	if u.Self <= 0 || u.Others < 0 {
		t.Fatalf("Until = %+v after spinning (%d); want self above 0, others not negative", u, x)
	}
}
