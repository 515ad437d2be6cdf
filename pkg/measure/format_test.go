package measure

import (
	"testing"
	"time"
)

func TestMillis(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.00ms"},
		{1500 * time.Microsecond, "1.50ms"},
		{37 * time.Microsecond, "0.04ms"},
		{2 * time.Second, "2000.00ms"},
	}
	for _, tt := range tests {
		if got := Millis(tt.d); got != tt.want {
			t.Errorf("Millis(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestCPUs(t *testing.T) {
	tests := []struct {
		x    float64
		want string
	}{
		{-1, "-"},
		{0, "0.00"},
		{0.125, "0.12"},
		{3.456, "3.46"},
	}
	for _, tt := range tests {
		if got := CPUs(tt.x); got != tt.want {
			t.Errorf("CPUs(%g) = %q, want %q", tt.x, got, tt.want)
		}
	}
}
