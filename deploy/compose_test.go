package deploy_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/leadstream/leadstream/pkg/config"
)

// repo is the repository's root, seen from this package.
const repo = ".."

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// leadstreamBin builds the binary once for the tests that check the
// deployments against it.
func leadstreamBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "leadstream-deploy-test-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "leadstream")
		build := exec.Command("go", "build", "-o", binPath, ".")
		build.Dir = filepath.Join(repo, "cmd", "leadstream")
		out, err := build.CombinedOutput()
		if err != nil {
			binErr = err
			t.Logf("%s", out)
		}
	})
	if binErr != nil {
		t.Fatalf("building leadstream: %v", binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// usageOf is what `leadstream <args> -h` prints (flag's usage goes to stderr).
func usageOf(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := exec.Command(leadstreamBin(t), append(args, "-h")...).CombinedOutput()
	return string(out)
}

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repo, "docker-compose.yml")},
		cli.WithWorkingDirectory(repo), cli.WithProfiles([]string{"observability"}), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("compose-go refuses docker-compose.yml: %v", err)
	}
	return p
}

// TestCompose loads docker-compose.yml with compose-go (the loader of
// docker compose itself) and checks it against the binary and the repo:
// the services, that every leadstream one runs the image of ./Dockerfile
// with a command the binary has, the health checks on the ports and paths
// the binary serves, the start order (NATS healthy, provision completed),
// the published ports, and that every mounted file exists and the mounted
// config loads with the mounted keys, as in the container.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	kinds := []string{"lead", "chat", "bid", "asq", "transaction", "call", "enquiry", "invoice", "unknown"}
	want := []string{"nats", "provision", "edge", "dispatcher-crm", "dispatcher-downstream", "projection", "demo-lms", "prometheus", "grafana"}
	for _, k := range kinds {
		want = append(want, "normalizer-"+k)
	}
	if got := p.ServiceNames(); !sameSet(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	usage := usageOf(t, "help")
	for name, s := range p.Services {
		t.Run(name, func(t *testing.T) {
			mounts(t, s)
			if name == "nats" || name == "prometheus" || name == "grafana" {
				if first, _, found := strings.Cut(s.Image, "/"); s.Image == "" || (found && strings.ContainsAny(first, ".:")) {
					t.Errorf("image %q: want an official image by its short name, no registry host", s.Image)
				}
				return
			}
			if s.Build == nil || s.Build.Context != mustAbs(t, repo) || s.Build.Dockerfile != "Dockerfile" {
				t.Errorf("build %+v, want the repository's Dockerfile", s.Build)
			}
			if len(s.Command) == 0 || !strings.Contains(usage, "\n  "+s.Command[0]+" ") {
				t.Fatalf("command %v: not a leadstream command", s.Command)
			}
			for _, arg := range s.Command[1:] {
				flagName, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
				if !strings.Contains(usageOf(t, s.Command[0]), "-"+flagName+" ") && !strings.Contains(usageOf(t, s.Command[0]), "-"+flagName+"\n") {
					t.Errorf("leadstream %s has no flag %s", s.Command[0], arg)
				}
			}
			if s.Environment["LEADSTREAM_CONFIG"] == nil || *s.Environment["LEADSTREAM_CONFIG"] != "/etc/leadstream/leadstream.yaml" {
				t.Errorf("LEADSTREAM_CONFIG %v", s.Environment["LEADSTREAM_CONFIG"])
			}
			if name == "demo-lms" {
				return
			}
			wantDep, cond := "provision", types.ServiceConditionCompletedSuccessfully
			if name == "provision" {
				wantDep, cond = "nats", types.ServiceConditionHealthy
			}
			if d, ok := s.DependsOn[wantDep]; !ok || d.Condition != cond {
				t.Errorf("depends_on %v, want %s: %s", s.DependsOn, wantDep, cond)
			}
			if name == "provision" {
				if s.Restart != "no" {
					t.Errorf("provision restart %q, want no (a one-shot)", s.Restart)
				}
				return
			}
			port := map[string]string{"edge": "8080", "normalizer": "9090", "dispatcher": "9091"}[s.Command[0]]
			if s.HealthCheck == nil || !slices.Equal([]string(s.HealthCheck.Test), []string{"CMD", "/leadstream", "health", "http://127.0.0.1:" + port + "/readyz"}) {
				t.Errorf("healthcheck %+v, want leadstream health on :%s/readyz", s.HealthCheck, port)
			}
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) < 30*time.Second {
				t.Errorf("stop_grace_period %v: shorter than the drain", s.StopGracePeriod)
			}
		})
	}
	if !published(p.Services["edge"], 8080) || !published(p.Services["nats"], 4222) || !published(p.Services["nats"], 8222) {
		t.Error("edge :8080, NATS :4222 and :8222 must be published")
	}
	if hc := p.Services["nats"].HealthCheck; hc == nil || !strings.Contains(strings.Join(hc.Test, " "), ":8222/healthz") {
		t.Errorf("nats healthcheck %+v, want its monitoring /healthz", hc)
	}
	if _, ok := p.Volumes["nats-data"]; !ok {
		t.Error("no named volume for JetStream's store")
	}
	if !slices.Contains(p.Services["prometheus"].Profiles, "observability") || !slices.Contains(p.Services["grafana"].Profiles, "observability") {
		t.Error("prometheus and grafana belong to the observability profile")
	}

	// The config the containers read, with the keys they get, as they get them.
	root := t.TempDir()
	for _, v := range p.Services["edge"].Volumes {
		data, err := os.ReadFile(v.Source)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(root, v.Target)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(root, "etc/leadstream/leadstream.yaml"))
	if err != nil {
		t.Fatalf("the mounted config does not load in the container's layout: %v", err)
	}
	if cfg.NATS.URL != "nats://nats:4222" || cfg.Listen != ":8080" {
		t.Errorf("config: nats.url %q, listen %q: want the nats service and :8080", cfg.NATS.URL, cfg.Listen)
	}
	var adapters []string
	for _, a := range cfg.Adapters {
		adapters = append(adapters, a.Name)
		if _, ok := p.Services["dispatcher-"+a.Name]; !ok {
			t.Errorf("adapter %s has no dispatcher service", a.Name)
		}
	}
	t.Logf("%d services; adapters %v; config and keys load as mounted", len(p.Services), adapters)
}

// TestDockerfile: a multi-stage build into an empty base, a non-root user,
// the binary as entrypoint, and the module files it copies exist.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repo, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var froms []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "FROM" {
			froms = append(froms, f[1])
		}
		if len(f) >= 3 && f[0] == "COPY" && !strings.HasPrefix(f[1], "--from") && f[1] != "." {
			for _, src := range f[1 : len(f)-1] {
				if _, err := os.Stat(filepath.Join(repo, src)); err != nil {
					t.Errorf("COPY %s: %v", src, err)
				}
			}
		}
	}
	if len(froms) != 2 || froms[1] != "scratch" {
		t.Errorf("stages %v, want a build stage and scratch", froms)
	}
	for _, want := range []string{"USER 65532:65532", `ENTRYPOINT ["/leadstream"]`, "CGO_ENABLED=0"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	work, err := os.ReadFile(filepath.Join(repo, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(work), "\n") {
		if m := strings.TrimSpace(line); strings.HasPrefix(m, "./") {
			if !strings.Contains(text, "COPY "+strings.TrimPrefix(m, "./")+"/go.mod") {
				t.Errorf("Dockerfile does not copy %s/go.mod before go mod download", m)
			}
		}
	}
}

func mounts(t *testing.T, s types.ServiceConfig) {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if _, err := os.Stat(v.Source); err != nil {
			t.Errorf("mount %s -> %s: %v", v.Source, v.Target, err)
		}
		if !v.ReadOnly {
			t.Errorf("mount %s -> %s is writable", v.Source, v.Target)
		}
	}
}

func published(s types.ServiceConfig, port uint32) bool {
	return slices.ContainsFunc(s.Ports, func(p types.ServicePortConfig) bool { return p.Target == port && p.Published != "" })
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
