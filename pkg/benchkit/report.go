package benchkit

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Millis formats d in milliseconds with two decimals, so that report
// columns line up, sub-millisecond latencies stay visible, and every bench
// prints latencies alike.
func Millis(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// PerSecond is n over d in seconds: 0 for no time.
func PerSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// CPUs formats CPUs' worth of time, as Use holds it, with two decimals:
// "-" when unknown (negative).
func CPUs(x float64) string {
	if x < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

// Column is a column of a Table.
type Column struct {
	// Name heads the column.
	Name string
	// Width is the column's width in characters; a wider cell pushes the
	// rest of its line on.
	Width int
	// Left aligns the column's cells left, as names read; the others are
	// right-aligned, as figures line up.
	Left bool
}

// Table prints the rows of a report's table as they come, so that a long
// run shows each as soon as it is measured: every section's tables look
// alike, each column at its width (wider cells push the line on), one space
// between columns.
type Table struct {
	w    io.Writer
	cols []Column
}

// NewTable returns a table of cols on w.
func NewTable(w io.Writer, cols ...Column) *Table {
	return &Table{w: w, cols: cols}
}

// Header prints the columns' names.
func (t *Table) Header() {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = c.Name
	}
	t.Row(names...)
}

// Row prints one line of cells, in the columns' order; missing cells are
// blank.
func (t *Table) Row(cells ...string) {
	var b strings.Builder
	for i, c := range t.cols {
		cell := ""
		if i < len(cells) {
			cell = cells[i]
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if c.Left {
			fmt.Fprintf(&b, "%-*s", c.Width, cell)
		} else {
			fmt.Fprintf(&b, "%*s", c.Width, cell)
		}
	}
	fmt.Fprintln(t.w, strings.TrimRight(b.String(), " "))
}
