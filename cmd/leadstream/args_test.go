package main

import (
	"flag"
	"slices"
	"strings"
	"testing"
)

func TestParseArgsTakesFlagsAnywhere(t *testing.T) {
	for _, args := range [][]string{
		{"12345", "--config", "F", "--all"},
		{"--config", "F", "12345", "--all"},
		{"--all", "12345", "-config=F"},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		cfg := fs.String("config", "", "")
		all := fs.Bool("all", false, "")
		pos := parseArgs(fs, args)
		if !slices.Equal(pos, []string{"12345"}) || *cfg != "F" || !*all {
			t.Errorf("parseArgs(%q) = %q, config %q, all %v; want [12345], F, true", args, pos, *cfg, *all)
		}
	}
}

func TestWantArgsNamesTheExtraArgument(t *testing.T) {
	err := wantArgs("lead show", []string{"12345", "67890"}, 1)
	if err == nil || !strings.Contains(err.Error(), `"67890"`) {
		t.Fatalf("wantArgs = %v, want an error naming \"67890\"", err)
	}
	if err := wantArgs("lead show", []string{"12345"}, 1); err != nil {
		t.Fatalf("wantArgs with one argument: %v", err)
	}
}
