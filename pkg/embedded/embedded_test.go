package embedded

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// TestShippedConfigsSyncAlways: every NATS config leadstream ships parses
// with nats-server's own loader and syncs before every acknowledgement, as
// the embedded server does.
func TestShippedConfigsSyncAlways(t *testing.T) {
	t.Setenv("NATS_SERVER_NAME", "nats-1")
	// secure.conf takes its users' passwords from the environment.
	for _, user := range []string{"EDGE", "NORMALIZER", "DISPATCHER", "OPS", "DOWNSTREAM", "PROVISION"} {
		t.Setenv("LEADSTREAM_NATS_"+user+"_PASSWORD", "p-test")
	}
	files, _ := filepath.Glob("../../deploy/nats/*.conf")
	if len(files) == 0 {
		t.Fatal("no NATS configs under deploy/nats")
	}
	for _, f := range files {
		opts, err := server.ProcessConfigFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !opts.JetStream || !opts.SyncAlways {
			t.Errorf("%s: jetstream=%v sync always=%v, want both", f, opts.JetStream, opts.SyncAlways)
		}
	}
}

func TestStartSyncAlways(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Options{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	if !s.JetStreamEnabled() {
		t.Fatal("JetStream not enabled")
	}
	if !s.JetStreamConfig().SyncAlways {
		t.Fatal("embedded server does not sync before ack")
	}
	if _, err := os.Stat(filepath.Join(dir, "jetstream")); err != nil {
		t.Fatalf("store dir not used: %v", err)
	}
	if _, err := Start(Options{Listen: "not-an-address", StoreDir: dir}); err == nil {
		t.Fatal("bad listen address accepted")
	}
}

// TestMaxPayload: clients learn the server's max_payload, 8 MiB unless set.
func TestMaxPayload(t *testing.T) {
	for _, want := range []int32{0, 64 << 10} {
		s, err := Start(Options{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), MaxPayload: want})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		if want == 0 {
			want = defaultMaxPayload
		}
		if got := nc.MaxPayload(); got != int64(want) {
			t.Errorf("max_payload %d, want %d", got, want)
		}
		nc.Close()
		s.Shutdown()
	}
}
