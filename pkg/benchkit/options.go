package benchkit

import (
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
)

// Options are the settings every bench takes. The benches embed them in
// their own options, next to what only they measure.
type Options struct {
	// Config supplies the sources, the services' settings and the streams'
	// limits. Its listen address and NATS settings are not used: a bench
	// runs its own JetStream and services. Required.
	Config *config.Config
	// Duration is how long each measurement lasts. Default 10s.
	Duration time.Duration
	// Warmup is load before each measurement, not counted, so that
	// connections, buffers, consumers and the store are warm. Default 2s;
	// negative for none.
	Warmup time.Duration
	// Concurrency is how many requests a bench keeps in flight: a closed
	// loop's workers, each sending again as soon as its answer came, or
	// the most a steady load (Pace) has in flight at once. Default 8.
	Concurrency int
	// Rate is how many sends a second a steady load makes, on a fixed
	// schedule (Pace). Default: each bench's own.
	Rate float64
	// Drain is how long a bench waits, after a steady load, for the last
	// accepted sends to come out at the far end. Default 30s.
	Drain time.Duration
	// Stall ends a measurement that runs until work is done, as
	// incomplete (ErrStalled), when nothing moved for this long. Default
	// 30s.
	Stall time.Duration
	// StoreDir is where the JetStream stores are made, each in a fresh
	// directory removed afterwards (StartJetStream). Default: the system's
	// temporary directory.
	StoreDir string
	// CPUProfile, when set, receives a CPU profile (pprof) of a bench's
	// first measurement window: which window, each bench says.
	CPUProfile io.Writer
	// Progress, when set, gets a line as each step starts: a bench takes
	// minutes and should not look hung. Default: none.
	Progress io.Writer
	// Logger receives the services' and nats-server's log lines. Default:
	// none.
	Logger *zap.Logger
}

// SetDefaults fills in the defaults of the fields left zero.
func (o *Options) SetDefaults() {
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup == 0 {
		o.Warmup = 2 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.Drain == 0 {
		o.Drain = 30 * time.Second
	}
	if o.Stall == 0 {
		o.Stall = 30 * time.Second
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Validate reports the first option a bench cannot work with.
func (o *Options) Validate() error {
	switch {
	case o.Config == nil:
		return errors.New("bench: Config is required")
	case o.Duration < 0:
		return fmt.Errorf("bench: Duration %s is negative", o.Duration)
	case o.Concurrency < 0:
		return fmt.Errorf("bench: Concurrency %d is negative", o.Concurrency)
	case o.Rate < 0:
		return fmt.Errorf("bench: Rate %g is negative", o.Rate)
	}
	return nil
}

// LocalConfig is a copy of Config for a bench's own embedded JetStream:
// one server holds one replica, whatever production uses.
func (o *Options) LocalConfig() config.Config {
	cfg := *o.Config
	cfg.NATS.Replicas = 1
	return cfg
}

// ErrStalled ends a measurement that stopped moving: see Stall.
var ErrStalled = errors.New("no progress")

// Completed sorts the error a measurement that runs until its work is done
// ended with: nil, complete; ErrStalled, incomplete, with figures all the
// same; any other, fatal.
func Completed(err error) (complete bool, fatal error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrStalled):
		return false, nil
	default:
		return false, err
	}
}

// Step writes a progress line: "bench: " and format.
func (o *Options) Step(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench: "+format+"\n", a...)
	}
}
