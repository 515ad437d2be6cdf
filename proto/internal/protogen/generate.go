package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	"github.com/bufbuild/protocompile/protoutil"
	"github.com/bufbuild/protocompile/reporter"
	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// goModule is the Go module that protoRoot is the root of. protoc-gen-go's
// module= option strips it from each go_package import path, so output names are
// relative to protoRoot, and a go_package outside the module is an error.
const goModule = "github.com/leadstream/leadstream/proto"

// Generate compiles every .proto file under protoRoot (import paths are
// relative to protoRoot; the well-known google/protobuf/*.proto imports are
// built in) and runs protoc-gen-go on them in-process. Beside each X.pb.go it
// makes X.binpb, the file's descriptor set for teams without Go or protoc
// (see descriptorSet). It returns the generated files' contents keyed by
// slash-separated path relative to protoRoot, e.g. "leadstream/v1/event.pb.go"
// and "leadstream/v1/event.binpb". The result depends only on the .proto
// sources and the pinned module versions.
func Generate(protoRoot string) (map[string][]byte, error) {
	return generate(protoRoot, nil)
}

// generate is Generate; warn, if non-nil, gets the compiler's warnings (for
// example an unused import).
func generate(protoRoot string, warn func(error)) (map[string][]byte, error) {
	files, err := findProtoFiles(protoRoot)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .proto files under %s", protoRoot)
	}
	req, err := compile(protoRoot, files, warn)
	if err != nil {
		return nil, err
	}
	out, err := runProtocGenGo(req)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		name := strings.TrimSuffix(f, ".proto") + ".binpb"
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("descriptor set %s: protoc-gen-go generated a file of that name", name)
		}
		set, err := descriptorSet(req, f)
		if err != nil {
			return nil, err
		}
		out[name] = set
	}
	return out, nil
}

// descriptorSet is what protoc --include_imports --include_source_info
// --descriptor_set_out writes for file: a FileDescriptorSet of file and
// everything it imports, imports first, so that a reader can add them to a
// descriptor pool in order. file keeps its comments (source info), for
// documentation tools. Marshalled deterministically, so it can be
// committed and checked for staleness like the .pb.go files.
func descriptorSet(req *pluginpb.CodeGeneratorRequest, file string) ([]byte, error) {
	byName := make(map[string]*descriptorpb.FileDescriptorProto, len(req.ProtoFile))
	for _, fd := range req.ProtoFile {
		byName[fd.GetName()] = fd
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(name string) error
	add = func(name string) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		fd, ok := byName[name]
		if !ok {
			return fmt.Errorf("descriptor set of %s: import %s was not compiled", file, name)
		}
		for _, dep := range fd.GetDependency() {
			if err := add(dep); err != nil {
				return err
			}
		}
		set.File = append(set.File, fd)
		return nil
	}
	if err := add(file); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("descriptor set of %s: %w", file, err)
	}
	return b, nil
}

// findProtoFiles returns the .proto files under root as sorted, slash-separated
// paths relative to root, skipping testdata and hidden directories.
func findProtoFiles(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || filepath.Ext(p) != ".proto" {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finding .proto files: %w", err)
	}
	sort.Strings(files)
	return files, nil
}

// compile parses and links files and returns the CodeGeneratorRequest protoc
// would send a plugin for them: every file and its transitive imports in
// dependency order, with source info (comments) for the files to generate.
func compile(protoRoot string, files []string, warn func(error)) (*pluginpb.CodeGeneratorRequest, error) {
	var errs []error
	rep := reporter.NewReporter(
		func(err reporter.ErrorWithPos) error {
			errs = append(errs, err) // keep going: report every error, not just the first
			return nil
		},
		func(err reporter.ErrorWithPos) {
			if warn != nil {
				warn(err)
			}
		},
	)
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			ImportPaths: []string{protoRoot},
		}),
		// Comments become doc comments in the generated code, as with protoc.
		SourceInfoMode: protocompile.SourceInfoStandard,
		// One at a time: the output does not depend on it, and errors come in
		// file order.
		MaxParallelism: 1,
		Reporter:       rep,
	}
	linked, err := c.Compile(context.Background(), files...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("compiling .proto files:\n%w", errors.Join(errs...))
	}
	if err != nil {
		return nil, fmt.Errorf("compiling .proto files: %w", err)
	}

	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: files,
		Parameter:      proto.String("module=" + goModule),
		// CompilerVersion is left unset: the header then says "protoc (unknown)",
		// since no protoc is involved.
	}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, fileProto(fd))
	}
	for _, f := range linked { // in the order of files
		add(f)
	}
	return req, nil
}

// fileProto is fd as a FileDescriptorProto.
func fileProto(fd protoreflect.FileDescriptor) *descriptorpb.FileDescriptorProto {
	// Clone: the compiler's own protos must not be shared with the generator.
	return proto.Clone(protoutil.ProtoFromFileDescriptor(fd)).(*descriptorpb.FileDescriptorProto)
}

// runProtocGenGo runs protoc-gen-go's generator on req, as its main does, and
// returns the generated files by name.
func runProtocGenGo(req *pluginpb.CodeGeneratorRequest) (map[string][]byte, error) {
	gen, err := protogen.Options{}.New(req)
	if err != nil {
		return nil, fmt.Errorf("protoc-gen-go: %w", err)
	}
	for _, f := range gen.Files {
		if f.Generate {
			gengo.GenerateFile(gen, f)
		}
	}
	gen.SupportedFeatures = gengo.SupportedFeatures
	gen.SupportedEditionsMinimum = gengo.SupportedEditionsMinimum
	gen.SupportedEditionsMaximum = gengo.SupportedEditionsMaximum

	resp := gen.Response()
	if resp.Error != nil {
		return nil, fmt.Errorf("protoc-gen-go: %s", resp.GetError())
	}
	out := make(map[string][]byte, len(resp.File))
	for _, f := range resp.File {
		name := f.GetName()
		if f.GetInsertionPoint() != "" {
			return nil, fmt.Errorf("protoc-gen-go: unexpected insertion point %q in %s", f.GetInsertionPoint(), name)
		}
		if name == "" || path.IsAbs(name) || name != path.Clean(name) || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("protoc-gen-go: output %q is outside the proto module", name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("protoc-gen-go: %s generated twice", name)
		}
		out[name] = []byte(f.GetContent())
	}
	return out, nil
}

// writeFiles writes files (as returned by Generate) under root, only where the
// content changed, and returns the names written.
func writeFiles(root string, files map[string][]byte) ([]string, error) {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var written []string
	for _, name := range names {
		p := filepath.Join(root, filepath.FromSlash(name))
		if old, err := os.ReadFile(p); err == nil && string(old) == string(files[name]) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return written, err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return written, err
		}
		written = append(written, name)
	}
	return written, nil
}
