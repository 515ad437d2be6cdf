package benchkit

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var errOdd = errors.New("odd call")

// TestPace: the schedule, not the calls' speed, sets how many calls are
// made and which are measured; every call's result and error come back,
// the window's are sorted into OK and Errors, and its CPU use is taken.
// It asserts no timings.
func TestPace(t *testing.T) {
	const (
		rate   = 200 // a call every 5ms
		warmup = 25 * time.Millisecond
		dur    = 100 * time.Millisecond
	)
	var n atomic.Int64
	p := Pace(context.Background(), rate, 3, warmup, dur, func(context.Context) (int64, error) {
		i := n.Add(1)
		if i%2 == 1 {
			return i, errOdd
		}
		return i, nil
	})
	// Due at 0, 5, ..., 120ms: 25 calls, of which those due from 25ms on,
	// 20, are measured.
	if len(p.Sends) != 25 {
		t.Fatalf("%d calls, want 25", len(p.Sends))
	}
	measured, seen := 0, map[int64]bool{}
	for _, s := range p.Sends {
		if s.Measured {
			measured++
		}
		if seen[s.Result] {
			t.Errorf("result %d twice", s.Result)
		}
		seen[s.Result] = true
		if wantErr := s.Result%2 == 1; (s.Err != nil) != wantErr {
			t.Errorf("call %d: error %v", s.Result, s.Err)
		}
		if s.End.Before(s.Begin) || s.Lag < 0 {
			t.Errorf("call %d: begin %s, end %s, lag %s", s.Result, s.Begin, s.End, s.Lag)
		}
	}
	if measured != 20 || len(p.OK)+p.Errors != measured {
		t.Errorf("%d calls measured, %d OK and %d errors; want 20 in all", measured, len(p.OK), p.Errors)
	}
	for _, s := range p.OK {
		if !s.Measured || s.Err != nil {
			t.Errorf("OK holds call %d: measured %v, error %v", s.Result, s.Measured, s.Err)
		}
	}
	if p.Errors == 0 || p.FirstError != errOdd.Error() {
		t.Errorf("%d errors, first %q", p.Errors, p.FirstError)
	}
	if runtime.GOOS == "linux" && !p.CPU.Known() {
		t.Errorf("CPU use not taken: %+v", p.CPU)
	}
	if p.Accepted != len(p.OK) || p.Rate != rate || p.Workers != 3 || p.Warmup != warmup || p.Duration != dur || p.GOMAXPROCS <= 0 {
		t.Errorf("load %+v", p.Load)
	}
}

func TestLoadReport(t *testing.T) {
	tests := []struct {
		name string
		l    Load
		want []string // lines of PrintNotes, in order
	}{
		{"quiet", Load{CPU: Use{-1, -1}}, nil},
		{"cpu", Load{CPU: Use{1.25, 0.05}}, []string{"  this process used 1.25 CPUs during the window, other processes 0.05"}},
		{"errors and lag", Load{Workers: 8, Errors: 3, FirstError: "edge answered 503", MaxLag: 250 * time.Millisecond, CPU: Use{-1, -1}}, []string{
			"WARNING: 3 sends were not accepted; first error: edge answered 503",
			"note: a send started up to 250ms after it was due: the load fell behind its schedule, its 8 workers",
			"  all waiting for answers",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			tt.l.PrintNotes(&b)
			if got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n"); b.Len() > 0 && !slices.Equal(got, tt.want) || b.Len() == 0 && tt.want != nil {
				t.Errorf("notes:\n%s\nwant:\n%s", b.String(), strings.Join(tt.want, "\n"))
			}
		})
	}
	l := Load{Rate: 500, Workers: 8, Warmup: 2 * time.Second, Duration: 10 * time.Second, GOMAXPROCS: 2, Accepted: 5000}
	if got, want := l.String(), "500/s scheduled for 10s after 2s warmup, 8 workers, GOMAXPROCS 2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if l.Achieved() != 500 {
		t.Errorf("Achieved() = %g, want 500", l.Achieved())
	}
}

// TestPaceStops: an ended context stops the schedule; Pace returns.
func TestPaceStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	p := Pace(ctx, 1000, 2, 0, time.Hour, func(context.Context) (struct{}, error) {
		if n.Add(1) == 10 {
			cancel()
		}
		return struct{}{}, nil
	})
	if len(p.Sends) < 10 || len(p.Sends) >= 3_600_000 {
		t.Fatalf("%d calls after the context ended at the 10th", len(p.Sends))
	}
}

// countingEdge counts its sends and says when it was closed.
type countingEdge struct {
	n      atomic.Int64
	closed bool
}

func (e *countingEdge) Send(context.Context) (int64, error) { return e.n.Add(1), nil }
func (e *countingEdge) Close() error                        { e.closed = true; return nil }

// TestPaceEdge: the edge is started against the URL, loaded on the
// options' schedule, and closed.
func TestPaceEdge(t *testing.T) {
	o := Options{Rate: 100, Concurrency: 2, Warmup: -1, Duration: 100 * time.Millisecond}
	o.SetDefaults()
	e := &countingEdge{}
	var url string
	p, err := PaceEdge[int64](context.Background(), &o, "test", func(_ context.Context, u string) (*countingEdge, error) {
		url = u
		return e, nil
	}, "nats://127.0.0.1:4222")
	if err != nil {
		t.Fatal(err)
	}
	if url != "nats://127.0.0.1:4222" || !e.closed || p.Accepted != 10 || int(e.n.Load()) != len(p.Sends) {
		t.Errorf("url %q, closed %v, %d accepted of %d sends; want 10 and a closed edge", url, e.closed, p.Accepted, e.n.Load())
	}
	errStart := errors.New("no edge")
	if _, err := PaceEdge[int64](context.Background(), &o, "test", func(context.Context, string) (*countingEdge, error) { return nil, errStart }, ""); !errors.Is(err, errStart) {
		t.Errorf("PaceEdge with an edge that does not start = %v", err)
	}
}

// TestDrained: it returns once every id arrived, or when the drain time
// is up with some missing, or when ctx ends.
func TestDrained(t *testing.T) {
	var polls atomic.Int64
	// Nothing arrives before the fourth check: it takes a few polls.
	arrived := func(string) bool { return polls.Add(1) > 3 }
	if err := Drained(context.Background(), []string{"a", "bb", "ccc"}, time.Minute, arrived); err != nil {
		t.Fatalf("Drained = %v", err)
	}
	if polls.Load() < 4 {
		t.Fatalf("Drained returned after %d checks, before anything arrived", polls.Load())
	}
	if err := Drained(context.Background(), []string{"never"}, 30*time.Millisecond, func(string) bool { return false }); err != nil {
		t.Fatalf("Drained with one missing after the drain time = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Drained(ctx, []string{"never"}, time.Minute, func(string) bool { return false }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drained after ctx ended = %v", err)
	}
}
