package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/testvectors"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// child is one service process of the real binary.
type child struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

func startChild(t *testing.T, bin, logPath string, args ...string) *child {
	t.Helper()
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	c := &child{cmd: exec.Command(bin, args...), done: make(chan error, 1), log: logPath}
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// provisionWith runs `leadstream provision` with the config at cfg, as a
// deployment's provision step does before the services start.
func provisionWith(t *testing.T, bin, cfg string) {
	t.Helper()
	out, err := exec.Command(bin, "provision", "--config", cfg).CombinedOutput()
	if err != nil {
		t.Fatalf("leadstream provision: %v\n%s", err, out)
	}
}

// waitReady polls url until it answers 200, failing if the child exits.
func (c *child) waitReady(t *testing.T, url string) {
	t.Helper()
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		select {
		case err := <-c.done:
			b, _ := os.ReadFile(c.log)
			t.Fatalf("%s exited: %v\n%s", c.cmd.Args[1], err, b)
		default:
		}
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %d", url, resp.StatusCode)
		}
		return nil
	})
}

// TestReplicasAndSIGKILL runs two edges and two normalizers of every kind
// as separate processes on one JetStream, sends a burst to both edges
// (provider redeliveries included), SIGKILLs one normalizer in the middle
// of it and keeps sending: every acknowledged webhook ends in EVENTS
// exactly once (guarantee 2 with replicas and a crash).
func TestReplicasAndSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	vec := testvectors.Load(t)
	dir := t.TempDir()
	var edges []string
	for i := range 2 {
		addr := natstest.FreeAddr(t)
		cfg := filepath.Join(dir, fmt.Sprintf("edge%d.yaml", i))
		text := fmt.Sprintf("listen: %q\nnats: {url: %q}\nnormalizer: {ack_wait: 3s, handler_timeout: 2s}\ndispatcher: {max_park: 7s, ack_wait: 3s}\n", addr, ns.ClientURL()) + vec.ConfigYAML()
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			provisionWith(t, bin, cfg)
		}
		startChild(t, bin, cfg+".edge.log", "edge", "--config", cfg).waitReady(t, "http://"+addr+"/readyz")
		edges = append(edges, "http://"+addr)
	}
	cfg := filepath.Join(dir, "edge0.yaml")
	var normalizers []*child
	for i := range 2 {
		admin := natstest.FreeAddr(t)
		c := startChild(t, bin, filepath.Join(dir, fmt.Sprintf("normalizer%d.log", i)), "normalizer", "--config", cfg, "--admin-listen", admin)
		c.waitReady(t, "http://"+admin+"/readyz")
		normalizers = append(normalizers, c)
	}
	signer, err := simulate.NewSigner(testConfig(t, cfg))
	if err != nil {
		t.Fatal(err)
	}

	// Both edges at once; the first SIGKILLs normalizer 0 after 150 acks.
	var mu sync.Mutex
	acked := map[string]string{}
	var wg sync.WaitGroup
	for i, url := range edges {
		wg.Go(func() {
			kill := func() {}
			if i == 0 {
				kill = func() { _ = normalizers[0].cmd.Process.Signal(syscall.SIGKILL) }
			}
			// The same tag on both edges: each webhook reaches both, as a
			// provider's redelivery to another edge would.
			got := burst(t, signer, url, "a", 150, kill)
			mu.Lock()
			for id, s := range got {
				acked[id] = s
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	<-normalizers[0].done
	// And on after the crash, with one normalizer left, plus a redelivery
	// of every sample to the other edge.
	for id, s := range burst(t, signer, edges[1], "b", 100, func() {}) {
		acked[id] = s
	}
	for _, r := range simulate.Run(context.Background(), &http.Client{Timeout: 10 * time.Second}, edges[0], signer) {
		if r.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %v", r.Sample, r.Status, r.Err)
		}
	}
	want := 0
	for _, s := range acked {
		if s != "marktplaats-api/doc-example" { // dead-lettered by the normalizer
			want++
		}
	}
	t.Logf("%d webhooks acknowledged by two edges (%d normalizable), normalizer 0 SIGKILLed after 150", len(acked), want)

	// EVENTS ends with every acknowledged event exactly once.
	var ids map[string]int
	natstest.CheckFor(t, 60*time.Second, 200*time.Millisecond, func() error {
		ids = eventIDs(t, js)
		missing := 0
		for id, s := range acked {
			if s != "marktplaats-api/doc-example" && ids[id] == 0 {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d acknowledged events not yet in EVENTS", missing, want)
		}
		return nil
	})
	total := 0
	for id, n := range ids {
		total += n
		if n > 1 {
			t.Errorf("event %s is in EVENTS %d times", id, n)
		}
	}
	t.Logf("EVENTS holds %d messages, %d distinct events", total, len(ids))
}

// eventIDs counts the EVENTS messages per ce-id.
func eventIDs(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	var ids map[string]int
	// A node that was just restarted may not answer for JetStream yet (no
	// responders): try again, within a bound.
	natstest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		ids = map[string]int{}
		return streams.Read(context.Background(), js, streams.EVENTS, jetstream.OrderedConsumerConfig{HeadersOnly: true}, func(m jetstream.Msg, _ *jetstream.MsgMetadata) error {
			id, _ := envelope.HeaderValue(m.Headers(), envelope.HdrCEID)
			ids[id]++
			return nil
		})
	})
	return ids
}

func testConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
