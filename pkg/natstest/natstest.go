// Package natstest runs real JetStream servers for tests (random port,
// temporary store) and polls for outcomes instead of sleeping.
package natstest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/embedded"
	"github.com/leadstream/leadstream/pkg/natsconn"
)

// RunServer starts a JetStream server on a random port with its store in a
// fresh temporary directory, shut down when the test ends.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerOnDir(t, t.TempDir(), "127.0.0.1:0")
}

// RunServerOnDir starts a JetStream server on listen with its store in dir,
// with fsync before ack as in production, so that tests can restart a
// server on the same store and find what was acknowledged.
func RunServerOnDir(t testing.TB, dir, listen string) *server.Server {
	t.Helper()
	s, err := embedded.Start(embedded.Options{Listen: listen, StoreDir: dir})
	if err != nil {
		t.Fatalf("starting nats-server: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect connects to s and returns the connection and a JetStream context,
// closed when the test ends.
func Connect(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js, err := natsconn.Connect(s.ClientURL(), natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// CheckFor calls f every `every` until it returns nil, failing the test with
// f's last error once total has passed.
func CheckFor(t testing.TB, total, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(every)
	}
	t.Fatalf("condition not met after %v: %v", total, err)
}
