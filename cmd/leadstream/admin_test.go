package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
)

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wantStatus polls url until it answers status.
func wantStatus(t *testing.T, url string, status int) string {
	t.Helper()
	var body string
	natstest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		var got int
		if got, body = get(t, url); got != status {
			return fmt.Errorf("%s: %d %q, want %d", url, got, body, status)
		}
		return nil
	})
	return body
}

// TestAdminReadyz: a normalizer's or dispatcher's /readyz fails when
// JetStream stops answering although the connection is up, and when the
// connection is down; /healthz fails only once the connection is closed for
// good.
func TestAdminReadyz(t *testing.T) {
	ns := natstest.RunServer(t)
	nc, js := natstest.Connect(t, ns)
	srv := httptest.NewServer(adminHandler(nc, js, prometheus.NewRegistry(), nil))
	defer srv.Close()

	wantStatus(t, srv.URL+"/readyz", http.StatusOK)
	wantStatus(t, srv.URL+"/healthz", http.StatusOK)

	if err := ns.DisableJetStream(); err != nil {
		t.Fatal(err)
	}
	if body := wantStatus(t, srv.URL+"/readyz", http.StatusServiceUnavailable); !strings.Contains(body, "jetstream") {
		t.Errorf("readyz body %q does not say JetStream", body)
	}
	if st := nc.Status(); st != nats.CONNECTED {
		t.Fatalf("connection %s: the JetStream check was not what failed", st)
	}
	wantStatus(t, srv.URL+"/healthz", http.StatusOK)

	nc.Close()
	wantStatus(t, srv.URL+"/healthz", http.StatusServiceUnavailable)
	if body := wantStatus(t, srv.URL+"/readyz", http.StatusServiceUnavailable); !strings.Contains(body, "CLOSED") {
		t.Errorf("readyz body %q does not say CLOSED", body)
	}
}

// TestAdminReadyzServerDown: with the server gone the connection is
// reconnecting; /readyz says so, /healthz stays 200 (nats.go will
// reconnect when the server is back).
func TestAdminReadyzServerDown(t *testing.T) {
	ns := natstest.RunServer(t)
	nc, js := natstest.Connect(t, ns)
	srv := httptest.NewServer(adminHandler(nc, js, prometheus.NewRegistry(), nil))
	defer srv.Close()
	wantStatus(t, srv.URL+"/readyz", http.StatusOK)
	ns.Shutdown()
	ns.WaitForShutdown()
	wantStatus(t, srv.URL+"/readyz", http.StatusServiceUnavailable)
	wantStatus(t, srv.URL+"/healthz", http.StatusOK)
}

// TestWatchConnEndsRun: when the shared connection is closed for good (here
// by the very poison of issue 14: a control line over max_control_line),
// the run group ends with that error and stops the other actors, so the
// process exits and is restarted instead of staying up with a dead
// connection.
func TestWatchConnEndsRun(t *testing.T) {
	ns := natstest.RunServer(t)
	closed := make(chan error, 1)
	nc, _, err := natsconn.Connect(ns.ClientURL(), natsconn.Options{Name: t.Name(), Closed: func(err error) { closed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var g run.Group
	actor(&g, func(ctx context.Context) error { return watchConn(ctx, closed) })
	stopped := make(chan struct{})
	actor(&g, func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil })
	done := make(chan error, 1)
	go func() { done <- g.Run() }()

	if err := nc.Publish("$KV.dispatch."+strings.Repeat("a", 5000), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "maximum control line") {
			t.Fatalf("run group ended with %v, want the connection's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run group still running with a closed connection")
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the other actor was not stopped")
	}

	// A run that ends for another reason ends the watcher without error.
	var g2 run.Group
	actor(&g2, func(ctx context.Context) error { return watchConn(ctx, make(chan error)) })
	actor(&g2, func(context.Context) error { return nil })
	if err := g2.Run(); err != nil {
		t.Fatalf("run group: %v", err)
	}
}
