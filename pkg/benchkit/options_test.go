package benchkit

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
)

func TestOptions(t *testing.T) {
	cfg := &config.Config{}
	tests := []struct {
		name     string
		o        Options
		want     string // error text, "" for valid
		warmup   time.Duration
		inFlight int
	}{
		{"defaults", Options{Config: cfg}, "", 2 * time.Second, 8},
		{"no warmup", Options{Config: cfg, Warmup: -1, Concurrency: 64}, "", 0, 64},
		{"no config", Options{}, "Config is required", 2 * time.Second, 8},
		{"negative duration", Options{Config: cfg, Duration: -time.Second}, "Duration -1s is negative", 2 * time.Second, 8},
		{"negative concurrency", Options{Config: cfg, Concurrency: -1}, "Concurrency -1 is negative", 2 * time.Second, -1},
		{"negative rate", Options{Config: cfg, Rate: -1}, "Rate -1 is negative", 2 * time.Second, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			o.SetDefaults()
			CheckErr(t, o.Validate(), tt.want)
			if o.Warmup != tt.warmup || o.Concurrency != tt.inFlight || o.Drain <= 0 || o.Stall <= 0 || o.Progress == nil || o.Logger == nil {
				t.Errorf("after SetDefaults: %+v", o)
			}
		})
	}
}

func TestLocalConfig(t *testing.T) {
	cfg := &config.Config{}
	cfg.NATS.Replicas = 3
	o := Options{Config: cfg}
	if local := o.LocalConfig(); local.NATS.Replicas != 1 || cfg.NATS.Replicas != 3 {
		t.Fatalf("local replicas %d, config's %d; want 1 and 3 untouched", local.NATS.Replicas, cfg.NATS.Replicas)
	}
}

func TestCompleted(t *testing.T) {
	other := errors.New("consumer gone")
	tests := []struct {
		err      error
		complete bool
		fatal    error
	}{
		{nil, true, nil},
		{fmt.Errorf("%w for 30s", ErrStalled), false, nil},
		{other, false, other},
	}
	for _, tt := range tests {
		if complete, fatal := Completed(tt.err); complete != tt.complete || fatal != tt.fatal {
			t.Errorf("Completed(%v) = %v, %v; want %v, %v", tt.err, complete, fatal, tt.complete, tt.fatal)
		}
	}
}

func TestStep(t *testing.T) {
	var b bytes.Buffer
	o := Options{Progress: &b}
	o.Step("edge: %d concurrent", 64)
	if got := b.String(); got != "bench: edge: 64 concurrent\n" {
		t.Fatalf("Step wrote %q", got)
	}
	(&Options{}).Step("nowhere") // no Progress: nothing written, no panic
}
