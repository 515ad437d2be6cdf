package benchkit

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Fsyncs is what the disk under a directory takes: appends of a small
// record each followed by an fsync, one file written serially (what one
// JetStream stream does with fsync before every ack) and files written in
// parallel (what several streams do).
type Fsyncs struct {
	// Serial is fsyncs a second into one file.
	Serial float64
	// Parallel is fsyncs a second into Files files together.
	Parallel float64
	Files    int
}

// MeasureFsyncs appends 600-byte records with an fsync after each into
// files in a temporary directory under dir, for about d in all, and
// removes them.
func MeasureFsyncs(dir string, d time.Duration, files int) (Fsyncs, error) {
	tmp, err := os.MkdirTemp(dir, "fsync-probe-")
	if err != nil {
		return Fsyncs{}, err
	}
	defer os.RemoveAll(tmp)
	serial, err := fsyncLoop(filepath.Join(tmp, "serial"), d/2)
	if err != nil {
		return Fsyncs{}, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total float64
		first error
	)
	for i := range files {
		wg.Go(func() {
			r, err := fsyncLoop(filepath.Join(tmp, fmt.Sprint("p", i)), d/2)
			mu.Lock()
			defer mu.Unlock()
			total += r
			if first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	return Fsyncs{Serial: serial, Parallel: total, Files: files}, first
}

func fsyncLoop(path string, d time.Duration) (float64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rec := make([]byte, 600)
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		if _, err := f.Write(rec); err != nil {
			return 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
