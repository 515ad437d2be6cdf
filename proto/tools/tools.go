// Package tools pins buf for the proto module (go.mod: tool github.com/bufbuild/buf/cmd/buf)
// and checks the schema with it. Its tests fail when the generated code or descriptor sets are
// stale, when buf lint finds something, and when the schema is incompatible with the one last
// released (proto/released.binpb, buf breaking).
//
// It is a module of its own, left out of the workspace: buf brings many dependencies, and
// newer versions of some the services use (google.golang.org/protobuf among them), which in
// the workspace would change what the services build with. Run it with GOWORK=off, as the
// Makefile does.
package tools
