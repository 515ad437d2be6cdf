package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/prometheus/procfs"
	"go.yaml.in/yaml/v3"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/services/edge/simulate"
)

// child is a `leadstream run` child process with its fake LMS and load.
type child struct {
	cmd     *exec.Cmd
	exited  chan error
	logPath string
	lms     *fakeLMS
	load    *sender
	track   *tracker
}

// startPipeline writes a config for the child into dir and starts it.
func startPipeline(ctx context.Context, o *pipeOptions, dir string, samples []sample, signer *simulate.Signer) (*child, error) {
	lms, err := newFakeLMS()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "leadstream.yaml")
	if err := writeChildConfig(o.configPath, cfgPath, httpAddr, natsAddr, filepath.Join(dir, "nats"), lms.url, o.adjust); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "leadstream-run.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.bin, "run", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &child{cmd: cmd, exited: make(chan error, 1), logPath: logPath, lms: lms, track: newTracker()}
	go func() { p.exited <- cmd.Wait(); logf.Close() }()
	lms.track = p.track
	base := "http://" + httpAddr
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := p.alive(); err != nil {
			p.stop()
			return nil, err
		}
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("leadstream run not ready after 60s (log %s)", logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "bench: pipeline: leadstream run (pid %d) serves %s, metrics at %s/metrics\n", cmd.Process.Pid, base, base)
	p.load = newSender(base, signer, samples, o.workers, 30*time.Second, true)
	return p, nil
}

// alive returns an error when the child has exited.
func (p *child) alive() error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return fmt.Errorf("leadstream run exited: %v (log %s)", err, p.logPath)
	default:
		return nil
	}
}

// stop ends the child (SIGTERM, then SIGKILL after 30s) and the fake LMS.
func (p *child) stop() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-p.exited:
			p.exited <- err
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	}
	if p.load != nil {
		p.load.tr.CloseIdleConnections()
	}
	p.lms.close()
}

// send is one request of the load, recorded by the tracker.
func (p *child) send(ctx context.Context) (struct{}, error) {
	r, err := p.load.send(ctx)
	if err != nil {
		p.track.failed.Add(1)
		return struct{}{}, err
	}
	p.track.accepted(r.EventID, r.Sent)
	return struct{}{}, nil
}

// rss is the child's resident set size in bytes.
func (p *child) rss() (int64, error) {
	proc, err := procfs.NewProc(p.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	st, err := proc.NewStatus()
	if err != nil {
		return 0, err
	}
	return int64(st.VmRSS), nil
}

// writeChildConfig writes the shipped config at from to path with the
// child's addresses and store, the webhook adapter pointed at lmsURL, the
// nats adapter, the demo LMS and the console left out, key paths made
// absolute, and warnings-only logs.
func writeChildConfig(from, path, httpAddr, natsAddr, storeDir, lmsURL string, adjust func(map[string]any)) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	abs, err := filepath.Abs(from)
	if err != nil {
		return err
	}
	base := filepath.Dir(abs)
	m["listen"] = httpAddr
	m["log"] = map[string]any{"format": "console", "level": "warn"}
	nats, _ := m["nats"].(map[string]any)
	if nats == nil {
		nats = map[string]any{}
	}
	nats["url"], nats["store_dir"], nats["listen"] = "", storeDir, natsAddr
	m["nats"] = nats
	delete(m, "demo_lms")
	// The operators' console listens on a fixed port too, which a `make run`
	// beside the bench, or an earlier child, may hold.
	if _, ok := m["console"]; ok {
		m["console"] = map[string]any{"listen": "off"}
	}
	if srcs, ok := m["sources"].([]any); ok {
		for _, s := range srcs {
			src, _ := s.(map[string]any)
			keys, _ := src["public_keys"].(map[string]any)
			for k, v := range keys {
				if p, ok := v.(string); ok && !filepath.IsAbs(p) {
					keys[k] = filepath.Join(base, p)
				}
			}
		}
	}
	var adapters []any
	if ads, ok := m["adapters"].([]any); ok {
		for _, a := range ads {
			ad, _ := a.(map[string]any)
			if ad["type"] == "webhook" {
				ad["url"] = lmsURL
				adapters = append(adapters, ad)
				break
			}
		}
	}
	if len(adapters) == 0 {
		return fmt.Errorf("%s has no webhook adapter to point at the fake LMS", from)
	}
	m["adapters"] = adapters
	if adjust != nil {
		adjust(m)
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return err
	}
	if _, err := config.Load(path); err != nil {
		return fmt.Errorf("the child's config: %w", err)
	}
	return nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
