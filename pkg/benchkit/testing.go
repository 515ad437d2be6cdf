package benchkit

import (
	"bytes"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/leadstream/leadstream/pkg/config"
)

// This file helps the benches' tests: the config they run with, and the
// checks every bench's test makes.

// DemoConfigPath is the config `make bench` uses, whose demo keys let the
// simulator sign for every provider: deploy/local/leadstream.yaml of the
// repository this source file is in.
func DemoConfigPath(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("benchkit: where this source file is is not known")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "local", "leadstream.yaml")
}

// DemoConfig loads the config at DemoConfigPath.
func DemoConfig(tb testing.TB) *config.Config {
	tb.Helper()
	cfg, err := config.Load(DemoConfigPath(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// Printed is rep's report, logged on tb for whoever runs the test with -v.
func Printed(tb testing.TB, rep interface{ Print(io.Writer) }) string {
	tb.Helper()
	var b bytes.Buffer
	rep.Print(&b)
	tb.Log("\n" + b.String())
	return b.String()
}

// CheckSchedule fails tb unless the load's window had want sends, all
// accepted: on a fixed schedule the count is exact on any machine.
func CheckSchedule(tb testing.TB, l Load, want int) {
	tb.Helper()
	if l.Accepted != want || l.Errors != 0 {
		tb.Errorf("accepted %d, errors %d (first %q); want %d accepted", l.Accepted, l.Errors, l.FirstError, want)
	}
}

// CheckErr fails tb unless err says want, or is nil where want is empty.
func CheckErr(tb testing.TB, err error, want string) {
	tb.Helper()
	if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
		tb.Fatalf("error %v, want %q", err, want)
	}
}
