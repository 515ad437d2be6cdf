package benchkit

import (
	"bytes"
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

func TestTable(t *testing.T) {
	var b bytes.Buffer
	tb := NewTable(&b, Column{Name: "kind", Width: 6, Left: true}, Column{Name: "events", Width: 7}, Column{Name: "µs", Width: 4})
	tb.Header()
	tb.Row("lead", "2000", "141µs")
	tb.Row("all, in turn", "12000")
	want := "" +
		"kind    events   µs\n" +
		"lead      2000 141µs\n" +
		"all, in turn   12000\n"
	if got := b.String(); got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
}
