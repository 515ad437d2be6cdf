#!/bin/sh
# generate.sh [OUT]: the Go code (X.pb.go, buf generate) and the descriptor set (X.binpb, buf
# build) of every X.proto of the proto module, written under the directory OUT (default: beside
# the .proto files). `make proto` runs it; proto/tools' test runs it into a temporary OUT and
# compares. buf is the one proto/tools/go.mod pins: a module outside the workspace, hence
# GOWORK=off.
set -eu
case ${1:-} in
"") out=. ;;
/*) out=$1 ;;
*) out=$PWD/$1 ;;
esac
cd "$(dirname "$0")"
buf() { GOWORK=off "${GO:-go}" tool -modfile=tools/go.mod buf "$@"; }

buf generate -o "$out"
# Each descriptor set is what protoc --include_imports --include_source_info writes: the file
# and everything it imports, imports first, comments kept; a plain FileDescriptorSet (no buf
# image extensions), for any language's descriptor pool.
for f in $(buf ls-files); do
	mkdir -p "$out/$(dirname "$f")"
	buf build --as-file-descriptor-set --path "$f" -o "$out/${f%.proto}.binpb"
done
