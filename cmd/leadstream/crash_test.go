package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/pkg/testvectors"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// buildBinary builds leadstream into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "leadstream")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// devConfig is a config for `leadstream run` on free ports with its store in
// a temporary directory and the sources the shared vectors are signed for.
type devConfig struct {
	path, url, natsAddr string
	cfg                 *config.Config
}

func newDevConfig(t *testing.T, extraYAML ...string) devConfig {
	t.Helper()
	vec := testvectors.Load(t)
	dir := t.TempDir()
	httpAddr, natsAddr := natstest.FreeAddr(t), natstest.FreeAddr(t)
	cfgText := fmt.Sprintf("listen: %q\nnats:\n  store_dir: %q\n  listen: %q\n", httpAddr, filepath.Join(dir, "nats"), natsAddr) + vec.ConfigYAML() + strings.Join(extraYAML, "")
	path := filepath.Join(dir, "leadstream.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return devConfig{path: path, url: "http://" + httpAddr, natsAddr: natsAddr, cfg: cfg}
}

// devProcess is `leadstream run` as a child process.
type devProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	done chan error
}

func startDev(t *testing.T, bin, cfgPath, url string) *devProcess {
	t.Helper()
	log, err := os.OpenFile(cfgPath+".log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd := exec.Command(bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &devProcess{t: t, cmd: cmd, url: url, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	natstest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		select {
		case err := <-p.done:
			b, _ := os.ReadFile(cfgPath + ".log")
			t.Fatalf("leadstream run exited: %v\n%s", err, b)
		default:
		}
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	return p
}

// burst sends unique signed samples from 32 workers until killAfter were
// acknowledged, then calls kill while the other requests are still in
// flight, and returns the acknowledged event ids with their sample names.
// Bursts with the same tag send the same webhooks (provider redeliveries).
func burst(t *testing.T, signer *simulate.Signer, url, tag string, killAfter int, kill func()) map[string]string {
	t.Helper()
	var mu sync.Mutex
	acked := map[string]string{}
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	samples := simulate.Samples()
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-killed:
					return
				default:
				}
				smp := samples[(w+i)%len(samples)]
				src, _ := signer.SourceFor(smp.Provider)
				body := simulate.Unique(smp.Provider, smp.Body, fmt.Sprintf("%sw%d-%d", tag, w, i))
				req, err := signer.Request(context.Background(), url, src, smp.Name, body)
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					continue // the process is gone: not acknowledged
				}
				var a struct{ ID string }
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &a) != nil {
					continue
				}
				mu.Lock()
				acked[a.ID] = smp.Name
				n := len(acked)
				mu.Unlock()
				if n >= killAfter {
					once.Do(func() { kill(); close(killed) })
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return acked
}

// TestSIGKILLAfterBurst kills the dev process with SIGKILL while a burst of
// webhooks is being answered; after a restart on the same data dir, every
// request that got a 2xx is in RAW.
func TestSIGKILLAfterBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	d := newDevConfig(t)
	cfgPath, cfg, url, natsAddr := d.path, d.cfg, d.url, d.natsAddr
	signer, err := simulate.NewSigner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := startDev(t, bin, cfgPath, url)

	acked := burst(t, signer, url, "", 300, func() { _ = p.cmd.Process.Signal(syscall.SIGKILL) })
	<-p.done
	total := len(acked)
	t.Logf("%d requests acknowledged before SIGKILL", total)

	p = startDev(t, bin, cfgPath, url)
	nc, js, err := natsconn.Connect("nats://"+natsAddr, natsconn.Options{Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	st, err := js.Stream(ctx, streams.RAW)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := st.Info(ctx)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		delete(acked, m.Header.Get(envelope.HdrEventID))
	}
	if len(acked) > 0 {
		t.Fatalf("%d of %d acknowledged requests are missing from RAW after SIGKILL and restart", len(acked), total)
	}
	if info.State.Msgs < uint64(total) {
		t.Fatalf("RAW holds %d, fewer than the %d acknowledged", info.State.Msgs, total)
	}

	// SIGTERM: a clean stop.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM")
	}
}

// killWhileDelivering runs `leadstream run` on d, sends a burst of signed
// webhooks, SIGKILLs it once deliveries to lms are flowing and returns the
// acknowledged event ids that can be delivered, with how many were at the
// LMS before the kill.
func killWhileDelivering(t *testing.T, bin string, lms *recordingLMS, d devConfig, undeliverable ...string) (map[string]bool, int) {
	t.Helper()
	signer, err := simulate.NewSigner(d.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := startDev(t, bin, d.path, d.url)
	acked := burst(t, signer, d.url, "", 200, func() {
		// Wait until deliveries are flowing, then kill mid-flight.
		natstest.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
			if len(lms.ids()) < 20 {
				return fmt.Errorf("LMS has %d", len(lms.ids()))
			}
			return nil
		})
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	})
	<-p.done
	want := map[string]bool{}
	for id, sample := range acked {
		if sample != "marktplaats-api/doc-example" && !slices.Contains(undeliverable, sample) { // doc-example: dead-lettered by the normalizer
			want[id] = true
		}
	}
	return want, len(lms.ids())
}

// waitAtLMS waits up to bound until every event of want reached lms.
func waitAtLMS(t *testing.T, lms *recordingLMS, want map[string]bool, bound time.Duration) {
	t.Helper()
	natstest.CheckFor(t, bound, 50*time.Millisecond, func() error {
		got := map[string]bool{}
		for _, id := range lms.ids() {
			got[id] = true
		}
		missing := 0
		for id := range want {
			if !got[id] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d acknowledged events not yet at the LMS", missing, len(want))
		}
		return nil
	})
}

// TestSIGKILLWhileDelivering kills the whole pipeline with SIGKILL while it
// is delivering to an LMS; after a restart every acknowledged webhook that
// can be normalized reaches the LMS (at least once, same webhook-id).
func TestSIGKILLWhileDelivering(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	lms := newRecordingLMS(t)
	// Short ack waits: what the killed process had taken but not acked comes
	// back after them at the latest.
	d := newDevConfig(t, fmt.Sprintf("normalizer: {ack_wait: 3s, handler_timeout: 2s}\ndispatcher: {max_park: 7s, ack_wait: 3s}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\n", lms.srv.URL, lmsSecret))
	want, before := killWhileDelivering(t, bin, lms, d)
	t.Logf("%d deliverable events acknowledged, %d delivered before SIGKILL", len(want), before)

	startDev(t, bin, d.path, d.url)
	waitAtLMS(t, lms, want, 45*time.Second)
	lms.mu.Lock()
	dups := 0
	for _, n := range lms.seen {
		if n > 1 {
			dups++
		}
	}
	lms.mu.Unlock()
	t.Logf("redelivered after the crash (same webhook-id, at least once): %d", dups)
}

// TestSIGKILLRestartTakesOver kills the pipeline while it delivers, with
// ack waits of ten minutes: the restarted process takes over what the dead
// one held (streams.TakeOver) instead of waiting them out, so every
// acknowledged webhook reaches the LMS well within the test's bound.
func TestSIGKILLRestartTakesOver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	lms := newRecordingLMS(t)
	d := newDevConfig(t, fmt.Sprintf("normalizer: {ack_wait: 10m, handler_timeout: 2s}\ndispatcher: {max_park: 30m, ack_wait: 10m}\nadapters:\n  - {name: crm, type: webhook, url: %q, secret: %q}\n", lms.srv.URL, lmsSecret))
	// Info level, for the take-over's log line.
	cfgText, err := os.ReadFile(d.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.path, []byte(strings.Replace(string(cfgText), "level: error", "level: info", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The transaction sample waits max_park for the change to PENDING.
	want, _ := killWhileDelivering(t, bin, lms, d, "marktplaats-api/transaction-status-changed")
	if err := os.Truncate(d.path+".log", 0); err != nil {
		t.Fatal(err)
	}
	startDev(t, bin, d.path, d.url)
	waitAtLMS(t, lms, want, 60*time.Second) // without the take-over: 10 minutes
	log, _ := os.ReadFile(d.path + ".log")
	if !strings.Contains(string(log), "took over unacknowledged messages") {
		t.Log("no consumer held unacknowledged messages at the kill: the take-over was not exercised this run")
	}
}
