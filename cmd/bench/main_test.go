package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseConcurrency(t *testing.T) {
	tests := []struct {
		flag string
		want []int
		err  bool
	}{
		{"64,256", []int{64, 256}, false},
		{" 8 , 16", []int{8, 16}, false},
		{"0", nil, false},
		{"64,0", nil, true},
		{"-1", nil, true},
		{"many", nil, true},
		{"", nil, true},
	}
	for _, tt := range tests {
		got, err := parseConcurrency(tt.flag)
		if (err != nil) != tt.err || !slices.Equal(got, tt.want) {
			t.Errorf("parseConcurrency(%q) = %v, %v; want %v, error %v", tt.flag, got, err, tt.want, tt.err)
		}
	}
}

// TestCheckBinary: the pipeline measurements refuse to start without a
// leadstream to run, and say how to build one.
func TestCheckBinary(t *testing.T) {
	dir := t.TempDir()
	exe, plain := filepath.Join(dir, "leadstream"), filepath.Join(dir, "notes")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkBinary(exe); err != nil {
		t.Errorf("checkBinary(executable) = %v", err)
	}
	for _, bad := range []string{filepath.Join(dir, "missing"), plain, dir} {
		if err := checkBinary(bad); err == nil || !strings.Contains(err.Error(), "go build -o .bin/leadstream ./cmd/leadstream") {
			t.Errorf("checkBinary(%s) = %v, want an error saying how to build it", bad, err)
		}
	}
}
