// Package benchkit is what the benchmark harness (cmd/bench) and the
// benches of edge, normalizer and dispatcher (services/*/bench) share, so
// that their figures mean the same and read alike: the options every bench
// takes, a fresh embedded JetStream to measure on, a load sent at a steady
// rate, this process's and other processes' CPU use over a window (from
// /proc, by prometheus/procfs), latency percentiles (HDR histograms), the
// disk's fsync rate, and the formats and tables the reports print.
//
// It is bench code, not service code: nothing in a running service imports
// it.
package benchkit
