package leadstreamv1_test

import (
	"os"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// TestDescriptorSet: the committed descriptor set is the schema compiled
// into the Go package, with its imports, the options for other languages and
// the comments, and a reader can build a pool from it alone.
func TestDescriptorSet(t *testing.T) {
	b, err := os.ReadFile("event.binpb")
	if err != nil {
		t.Fatalf("%v: run make proto", err)
	}
	set := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(b, set); err != nil {
		t.Fatalf("event.binpb is not a FileDescriptorSet: %v", err)
	}
	var names []string
	for _, f := range set.File {
		names = append(names, f.GetName())
	}
	if want := []string{"google/protobuf/timestamp.proto", "leadstream/v1/event.proto"}; !slices.Equal(names, want) {
		t.Fatalf("event.binpb holds %v, want %v (imports first)", names, want)
	}
	// protodesc.NewFiles resolves every import within the set, as a
	// Python or JavaScript descriptor pool must.
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatalf("event.binpb does not stand alone: %v", err)
	}
	d, err := files.FindDescriptorByName("leadstream.v1.Event")
	if err != nil {
		t.Fatal(err)
	}
	if d.ParentFile().SourceLocations().ByDescriptor(d).LeadingComments == "" {
		t.Error("event.binpb lost the comments of leadstream.v1.Event")
	}

	ev := set.File[1]
	compiled := protodesc.ToFileDescriptorProto(leadstreamv1.File_leadstream_v1_event_proto)
	stripped := proto.Clone(ev).(*descriptorpb.FileDescriptorProto)
	stripped.SourceCodeInfo = nil
	if !proto.Equal(stripped, compiled) {
		t.Error("event.binpb differs from the descriptor compiled into event.pb.go: run make proto")
	}
	o := ev.GetOptions()
	for _, c := range []struct{ option, got, want string }{
		{"java_package", o.GetJavaPackage(), "com.leadstream.v1"},
		{"java_outer_classname", o.GetJavaOuterClassname(), "EventProto"},
		{"csharp_namespace", o.GetCsharpNamespace(), "Leadstream.V1"},
		{"php_namespace", o.GetPhpNamespace(), `Leadstream\V1`},
		{"php_metadata_namespace", o.GetPhpMetadataNamespace(), `Leadstream\V1\GPBMetadata`},
		{"ruby_package", o.GetRubyPackage(), "Leadstream::V1"},
		{"objc_class_prefix", o.GetObjcClassPrefix(), "LXX"},
		{"go_package", o.GetGoPackage(), "github.com/leadstream/leadstream/proto/leadstream/v1;leadstreamv1"},
	} {
		if c.got != c.want {
			t.Errorf("option %s = %q, want %q", c.option, c.got, c.want)
		}
	}
	if !o.GetJavaMultipleFiles() {
		t.Error("option java_multiple_files is not set")
	}
}
