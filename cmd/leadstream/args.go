package main

import (
	"flag"
	"fmt"
)

// parseArgs parses fs over args, taking flags before, between and after the
// positional arguments (`lead show 12345 --config F`), and returns the
// positional ones. The flag package alone stops at the first positional
// argument and would take "--config" for a second id.
func parseArgs(fs *flag.FlagSet, args []string) []string {
	var pos []string
	for {
		_ = fs.Parse(args) // ExitOnError: a bad flag has printed its message and exited
		args = fs.Args()
		if len(args) == 0 {
			return pos
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// wantArgs refuses positional arguments beyond n, naming the first.
func wantArgs(cmd string, pos []string, n int) error {
	if len(pos) > n {
		return fmt.Errorf("%s: unexpected argument %q (flags go before or after the arguments: -h lists them)", cmd, pos[n])
	}
	return nil
}
