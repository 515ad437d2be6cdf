package benchkit

import (
	"testing"
	"time"
)

func TestMeasureFsyncs(t *testing.T) {
	f, err := MeasureFsyncs(t.TempDir(), 200*time.Millisecond, 2)
	if err != nil {
		t.Fatal(err)
	}
	if f.Serial <= 0 || f.Parallel <= 0 || f.Files != 2 {
		t.Fatalf("%+v: want positive rates over 2 files", f)
	}
}
