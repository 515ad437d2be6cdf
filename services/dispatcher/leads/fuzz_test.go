package leads

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// FuzzApply feeds pairs of arbitrary protobuf Events (as a consumer would
// unmarshal them from EVENTS) to Apply: it must not panic, Marshal must
// succeed, and the merge laws must hold for whatever the events contain.
func FuzzApply(f *testing.F) {
	h := history()
	for i, ev := range h {
		a, err := proto.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		b, err := proto.Marshal(h[(i+1)%len(h)])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(a, b)
	}
	f.Add([]byte{}, []byte{0x3a, 0x02, 0x08, 0x01}) // occurred_at with seconds only
	f.Fuzz(func(t *testing.T, a, b []byte) {
		e1, e2 := new(leadstreamv1.Event), new(leadstreamv1.Event)
		if proto.Unmarshal(a, e1) != nil || proto.Unmarshal(b, e2) != nil {
			return
		}
		s1 := Apply(nil, e1)
		b1 := mustMarshal(t, s1)
		if again := mustMarshal(t, Apply(s1, e1)); !bytes.Equal(again, b1) {
			t.Fatalf("applying an event twice changed the state:\n%s\n%s", b1, again)
		}
		back, err := Unmarshal(b1)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(s)): %v\n%s", err, b1)
		}
		if again := mustMarshal(t, back); !bytes.Equal(again, b1) {
			t.Fatalf("round trip changed the bytes:\n%s\n%s", b1, again)
		}
		x := mustMarshal(t, Apply(Apply(nil, e1), e2))
		y := mustMarshal(t, Apply(Apply(nil, e2), e1))
		if !bytes.Equal(x, y) {
			t.Fatalf("order changed the state:\n%s\n%s", x, y)
		}
		z := mustMarshal(t, Apply(back, e2))
		if !bytes.Equal(x, z) {
			t.Fatalf("a state read back merged differently:\n%s\n%s", x, z)
		}
	})
}
