package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leadstream/leadstream/pkg/natstest"
)

// TestConsoleStandalone: `leadstream console` serves the console against a
// running pipeline's NATS, shows what JetStream knows (the events, the
// dead letters, a trace) and says what only the edge and the dispatcher
// know.
func TestConsoleStandalone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	lms := newRecordingLMS(t)
	lms.reject = "bid.placed"
	d, ids := runSamples(t, bin, fmt.Sprintf("console: {listen: \"off\"}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\n", lms.srv.URL, lmsSecret))
	addr := natstest.FreeAddr(t)
	cmd := exec.Command(bin, "console", "--listen", addr, "--config", d.path)
	out, err := os.Create(d.path + ".console.log")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	page := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	natstest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if status, body := page("/dlq?stage=deliver"); status != http.StatusOK || !strings.Contains(body, "terminal") {
			return fmt.Errorf("GET /dlq?stage=deliver: %d %.200s", status, body)
		}
		return nil
	})
	for path, want := range map[string]string{
		"/sources":                              "known only to the edge",
		"/adapters":                             "known only to the dispatchers",
		"/events?type=lead.created":             ids["marktplaats-lms/lead"],
		"/trace/" + ids["marktplaats-lms/lead"]: "lead.created",
	} {
		if status, body := page(path); status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, status, want)
		}
	}
	// Bound to every interface without a credential: refused at start.
	bad := exec.Command(bin, "console", "--listen", "0.0.0.0:0", "--config", d.path)
	if msg, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(msg), "console.listen") {
		t.Errorf("console on 0.0.0.0 without a token: %v\n%s", err, msg)
	}
}

// TestRunConsoleDefaultAddressTaken: `run` goes on without its console when
// the default address is taken (another run, a test), saying so; an address
// the config names that cannot be had fails the start.
func TestRunConsoleDefaultAddressTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	d := newDevConfig(t)
	cfg := d.cfg
	if !cfg.Console.DefaultListen {
		t.Fatal("a config without console.listen does not count as the default")
	}
	cfg.Console.Listen = taken.Addr().String()
	core, logs := observer.New(zap.WarnLevel)
	var g run.Group
	if err := startConsole(&g, cfg, js, prometheus.NewRegistry(), zap.New(core)); err != nil {
		t.Fatalf("default address taken: %v", err)
	}
	if logs.FilterMessageSnippet("console not started").Len() != 1 {
		t.Errorf("no warning that the console did not start: %v", logs.All())
	}
	cfg.Console.DefaultListen = false
	if err := startConsole(&g, cfg, js, prometheus.NewRegistry(), zap.NewNop()); err == nil || !strings.Contains(err.Error(), "console.listen") {
		t.Errorf("configured address taken: %v, want an error naming console.listen", err)
	}
}
