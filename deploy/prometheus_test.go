package deploy_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leadstream/leadstream/pkg/natstest"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian's prometheus package; `make test` installs it where apt-get works): the Prometheus files are not checked here")
	}
	return p
}

// TestPrometheusRules: the scrape config and the alert rules pass promtool's
// checks, and the rules' unit tests (alerts_test.yml: each alert fires on
// the series it is about, with its labels and annotations) pass.
func TestPrometheusRules(t *testing.T) {
	pt := promtool(t)
	dir := filepath.Join(repo, "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "config", filepath.Join(dir, "prometheus.yml")},
		{"check", "rules", filepath.Join(dir, "alerts.yml")},
		{"test", "rules", filepath.Join(dir, "alerts_test.yml")},
	} {
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestMetricNames: what `leadstream run` (edge, normalizer and dispatcher in
// one process, one registry) serves on /metrics passes `promtool check
// metrics` (names, units, help texts, counter suffixes).
func TestMetricNames(t *testing.T) {
	pt := promtool(t)
	bin := leadstreamBin(t)
	dir := t.TempDir()
	local, err := os.ReadFile(filepath.Join(repo, "deploy", "local", "leadstream.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := filepath.Abs(filepath.Join(repo, "deploy", "local", "keys"))
	if err != nil {
		t.Fatal(err)
	}
	edge, natsAddr, lms := natstest.FreeAddr(t), natstest.FreeAddr(t), natstest.FreeAddr(t)
	cfg := strings.NewReplacer(
		`listen: ":8080"`, fmt.Sprintf("listen: %q", edge),
		`store_dir: "../../.data/nats"`, fmt.Sprintf("store_dir: %q", filepath.Join(dir, "nats")),
		`listen: "127.0.0.1:4222"`, fmt.Sprintf("listen: %q", natsAddr),
		`listen: "127.0.0.1:9000"`, fmt.Sprintf("listen: %q", lms),
		`url: http://127.0.0.1:9000/events`, fmt.Sprintf("url: http://%s/events", lms),
		"keys/", keys+"/",
	).Replace(string(local))
	path := filepath.Join(dir, "leadstream.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	var metrics []byte
	natstest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		resp, err := http.Get("http://" + edge + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		metrics, err = io.ReadAll(resp.Body)
		if err == nil && !strings.Contains(string(metrics), "leadstream_dispatcher_partitions") {
			err = fmt.Errorf("the dispatcher's series are not there yet")
		}
		return err
	})
	check := exec.Command(pt, "check", "metrics")
	check.Stdin = strings.NewReader(string(metrics))
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	t.Logf("%d bytes of /metrics pass promtool check metrics", len(metrics))
}
