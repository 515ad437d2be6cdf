// Command protogen generates the Go code for the .proto files of this module
// (the .pb.go files beside them), and a descriptor set of each (the .binpb
// files: the schema for other languages), without protoc: protocompile parses and links
// the .proto files, and protoc-gen-go's generator runs in-process. The versions
// of both are the ones pinned in proto/go.mod, so the output is reproducible on
// any machine with Go.
//
// Run it from the proto module's root, as `make proto` does:
//
//	cd proto && go run ./internal/protogen
//
// -check writes nothing and exits 1 if a generated file is missing or stale.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

func main() {
	root := flag.String("root", ".", "the proto module's root: import paths and output names are relative to it")
	check := flag.Bool("check", false, "write nothing; exit 1 if a generated file is missing or differs")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: protogen [-root dir] [-check]")
		os.Exit(2)
	}

	files, err := generate(*root, func(err error) { fmt.Fprintln(os.Stderr, "protogen: warning:", err) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "protogen:", err)
		os.Exit(1)
	}

	if *check {
		var stale []string
		for name, content := range files {
			old, err := os.ReadFile(filepath.Join(*root, filepath.FromSlash(name)))
			if err != nil || !bytes.Equal(old, content) {
				stale = append(stale, name)
			}
		}
		sort.Strings(stale)
		for _, name := range stale {
			fmt.Fprintf(os.Stderr, "protogen: %s is stale: run make proto\n", name)
		}
		if len(stale) > 0 {
			os.Exit(1)
		}
		return
	}

	written, err := writeFiles(*root, files)
	for _, name := range written {
		fmt.Println("protogen: wrote", name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "protogen:", err)
		os.Exit(1)
	}
	if len(written) == 0 {
		fmt.Println("protogen: up to date")
	}
}
