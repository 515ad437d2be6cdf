package measure

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

var errOdd = errors.New("odd call")

// TestPace: the schedule, not the calls' speed, sets how many calls are
// made and which are measured; every call's result and error come back,
// and the window's CPU snapshots are taken. It asserts no timings.
func TestPace(t *testing.T) {
	const (
		rate   = 200 // a call every 5ms
		warmup = 25 * time.Millisecond
		dur    = 100 * time.Millisecond
	)
	var n atomic.Int64
	sends, cpu := Pace(context.Background(), rate, 3, warmup, dur, func(context.Context) (int64, error) {
		i := n.Add(1)
		if i%2 == 1 {
			return i, errOdd
		}
		return i, nil
	})
	// Due at 0, 5, ..., 120ms: 25 calls, of which those due from 25ms on,
	// 20, are measured.
	if len(sends) != 25 {
		t.Fatalf("%d calls, want 25", len(sends))
	}
	measured, seen := 0, map[int64]bool{}
	for _, s := range sends {
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
	if measured != 20 {
		t.Errorf("%d calls measured, want 20", measured)
	}
	if runtime.GOOS == "linux" && (!cpu[0].OK() || !cpu[1].OK()) {
		t.Errorf("CPU snapshots not taken: %+v", cpu)
	}
}

// TestPaceStops: an ended context stops the schedule; Pace returns.
func TestPaceStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int64
	sends, _ := Pace(ctx, 1000, 2, 0, time.Hour, func(context.Context) (struct{}, error) {
		if n.Add(1) == 10 {
			cancel()
		}
		return struct{}{}, nil
	})
	if len(sends) < 10 || len(sends) >= 3_600_000 {
		t.Fatalf("%d calls after the context ended at the 10th", len(sends))
	}
}
