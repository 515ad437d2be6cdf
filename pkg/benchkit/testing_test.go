package benchkit

import (
	"errors"
	"io"
	"testing"

	"github.com/leadstream/leadstream/pkg/config"
)

// TestDemoConfig: the config the benches load has a source of every
// provider, or the load would leave providers out.
func TestDemoConfig(t *testing.T) {
	cfg := DemoConfig(t)
	for _, p := range config.Providers {
		found := false
		for _, s := range cfg.Sources {
			found = found || s.Provider == p
		}
		if !found {
			t.Errorf("no source of %s in %s", p, DemoConfigPath(t))
		}
	}
}

type report string

func (r report) Print(w io.Writer) { _, _ = io.WriteString(w, string(r)) }

// TestChecks: the helpers pass what they should; what they fail is seen on
// a recorder.
func TestChecks(t *testing.T) {
	if got := Printed(t, report("figures\n")); got != "figures\n" {
		t.Errorf("Printed = %q", got)
	}
	CheckSchedule(t, Load{Accepted: 50}, 50)
	CheckErr(t, nil, "")
	CheckErr(t, errors.New("bench: Rate -1 is negative"), "Rate -1")
	for _, check := range []func(tb testing.TB){
		func(tb testing.TB) { CheckSchedule(tb, Load{Accepted: 49}, 50) },
		func(tb testing.TB) { CheckSchedule(tb, Load{Accepted: 50, Errors: 1}, 50) },
	} {
		rec := &recorder{TB: t}
		check(rec)
		if !rec.failed {
			t.Error("a check passed what it should fail")
		}
	}
}

// recorder is a testing.TB that records a failure instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
