package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeListsEveryMetric: every series the code registers is in the
// README's metrics table, so operators can build alerts from the README.
func TestReadmeListsEveryMetric(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`Name:\s*"(leadstream_[a-z_]+)"`)
	found := map[string]string{}
	for _, dir := range []string{".", "../../pkg", "../../services"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "bench" || d.Name() == "testdata") {
				return filepath.SkipDir // bench harnesses are not the product
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range name.FindAllSubmatch(src, -1) {
				found[string(m[1])] = path
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(found) < 20 {
		t.Fatalf("found only %d metric names in the sources: is the pattern still right?", len(found))
	}
	for metric, path := range found {
		if !strings.Contains(string(readme), "`"+metric+"`") {
			t.Errorf("%s (registered in %s) is not in README.md", metric, path)
		}
	}
}
