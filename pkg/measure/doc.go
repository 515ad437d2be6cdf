// Package measure holds what the benches of edge, normalizer and dispatcher
// measure with, so that their figures mean the same: this process's and
// other processes' CPU use over a window, nearest-rank latency percentiles,
// a load sent on a fixed schedule, and the formats their reports print.
//
// It is bench code, not service code: nothing in a running service imports
// it.
package measure
