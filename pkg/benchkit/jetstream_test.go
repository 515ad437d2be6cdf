package benchkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestJetStream: the fixture is a fresh store under StoreDir that Fill
// fills and StreamState reads, and Close removes it.
func TestJetStream(t *testing.T) {
	ctx := context.Background()
	o := Options{StoreDir: t.TempDir()}
	o.SetDefaults()
	j, err := StartJetStream(&o, "test")
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			j.Close()
		}
	}()
	if !strings.HasPrefix(j.Dir, o.StoreDir) {
		t.Errorf("store %s not under %s", j.Dir, o.StoreDir)
	}
	if _, err := j.JS.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	const n = 1200 // more than one chunk
	msg := func(i int) (*nats.Msg, error) {
		m := nats.NewMsg(fmt.Sprint("t.", i%3))
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprint("id-", i))
		return m, nil
	}
	if err := Fill(ctx, j.JS, n, msg); err != nil {
		t.Fatal(err)
	}
	st, err := StreamState(ctx, j.JS, "T")
	if err != nil {
		t.Fatal(err)
	}
	if st.Msgs != n || st.LastSeq != n {
		t.Errorf("stream holds %d messages, last sequence %d; want %d", st.Msgs, st.LastSeq, n)
	}
	// The same ids again are duplicates: the load would not be unique.
	if err := Fill(ctx, j.JS, 1, msg); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("Fill of a duplicate = %v", err)
	}
	errMsg := errors.New("no message")
	if err := Fill(ctx, j.JS, 1, func(int) (*nats.Msg, error) { return nil, errMsg }); !errors.Is(err, errMsg) {
		t.Errorf("Fill = %v, want the message's error", err)
	}
	if _, err := StreamState(ctx, j.JS, "NONE"); err == nil {
		t.Error("StreamState of a missing stream: no error")
	}
	j.Close()
	closed = true
	if _, err := os.Stat(j.Dir); !os.IsNotExist(err) {
		t.Errorf("store %s still there after Close: %v", j.Dir, err)
	}
}
