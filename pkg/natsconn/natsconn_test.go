package natsconn_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
)

// TestClosed: a control line over the server's max_control_line makes the
// server close the connection and nats.go give it up for good, reconnects
// or not; Closed is told, with the reason. A connection the caller closes
// calls it with nil.
func TestClosed(t *testing.T) {
	ns := natstest.RunServer(t)
	got := make(chan error, 2)
	nc, _, err := natsconn.Connect(ns.ClientURL(), natsconn.Options{Name: t.Name(), Closed: func(err error) { got <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// What a 3,000-byte id in a KV key once did.
	if err := nc.Publish("$KV.dispatch."+strings.Repeat("a", 5000), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "maximum control line") {
			t.Fatalf("Closed(%v), want the control line error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Closed was not called")
	}
	if st := nc.Status(); st != nats.CLOSED {
		t.Fatalf("status %s, want CLOSED", st)
	}
	// Still closed a while later: nats.go does not reconnect.
	if err := nc.Publish("x", nil); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("publish after close: %v", err)
	}

	nc2, _, err := natsconn.Connect(ns.ClientURL(), natsconn.Options{Name: t.Name(), Closed: func(err error) { got <- err }})
	if err != nil {
		t.Fatal(err)
	}
	nc2.Close()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Closed(%v) after Close, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Closed was not called after Close")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                                "nats://127.0.0.1:4222",
		"nats://edge:s3cret@nats-1:4222":                       "nats://edge:xxxxx@nats-1:4222",
		"nats://tok3n@nats-1:4222":                             "nats://xxxxx@nats-1:4222",
		"nats://a:p1@n1:4222, nats://a:p2@n2:4222,nats://n3:1": "nats://a:xxxxx@n1:4222,nats://a:xxxxx@n2:4222,nats://n3:1",
	} {
		if got := natsconn.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A failed connection's error names the server but not its password.
func TestConnectErrorHasNoPassword(t *testing.T) {
	_, _, err := natsconn.Connect("nats://edge:s3cret@127.0.0.1:1", natsconn.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Connect error %v: want the address without the password", err)
	}
}
