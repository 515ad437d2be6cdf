package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/leadstream/leadstream/pkg/natstest"
)

// scaledObject is KEDA's ScaledObject (keda.sh/v1alpha1) as its documentation
// describes it: decoding refuses any other field.
type scaledObject struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval  *int `json:"pollingInterval,omitempty"`
		CooldownPeriod   *int `json:"cooldownPeriod,omitempty"`
		MinReplicaCount  *int `json:"minReplicaCount,omitempty"`
		MaxReplicaCount  *int `json:"maxReplicaCount,omitempty"`
		IdleReplicaCount *int `json:"idleReplicaCount,omitempty"`
		Triggers         []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// kedaTriggerFields are the documented metadata of the triggers used, and
// which of them are required.
var kedaTriggerFields = map[string]map[string]bool{
	"nats-jetstream": {"natsServerMonitoringEndpoint": true, "account": false, "stream": true, "consumer": true,
		"lagThreshold": false, "activationLagThreshold": false, "useHttps": false},
	"prometheus": {"serverAddress": true, "query": true, "threshold": true, "activationThreshold": false,
		"namespace": false, "customHeaders": false, "ignoreNullValues": false, "unsafeSsl": false, "queryParameters": false},
}

// rendered is one overlay's objects, decoded strictly.
type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	jobs        []*batchv1.Job
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	pdbs        []*policyv1.PodDisruptionBudget
	scaled      []*scaledObject
}

func render(t *testing.T, overlay string) *rendered {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the manifests cannot be rendered here (kubectl kustomize)")
	}
	out, err := exec.Command(kubectl, "kustomize", filepath.Join(repo, "deploy", "k8s", "overlays", overlay)).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", overlay, err)
	}
	r := &rendered{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		var head struct{ APIVersion, Kind string }
		if err := json.Unmarshal(js, &head); err != nil {
			t.Fatal(err)
		}
		strict := func(v any) {
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("%s %s: not a valid %s: %v\n%s", overlay, head.Kind, head.APIVersion, err, doc)
			}
		}
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			strict(d)
			r.deployments[d.Name] = d
		case "v1 Service":
			s := &corev1.Service{}
			strict(s)
			r.services[s.Name] = s
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			strict(c)
			r.configMaps[c.Name] = c
		case "v1 Secret":
			s := &corev1.Secret{}
			strict(s)
			r.secrets[s.Name] = s
		case "v1 Namespace":
			strict(&corev1.Namespace{})
		case "batch/v1 Job":
			j := &batchv1.Job{}
			strict(j)
			r.jobs = append(r.jobs, j)
		case "autoscaling/v2 HorizontalPodAutoscaler":
			h := &autoscalingv2.HorizontalPodAutoscaler{}
			strict(h)
			r.hpas = append(r.hpas, h)
		case "policy/v1 PodDisruptionBudget":
			p := &policyv1.PodDisruptionBudget{}
			strict(p)
			r.pdbs = append(r.pdbs, p)
		case "keda.sh/v1alpha1 ScaledObject":
			s := &scaledObject{}
			strict(s)
			r.scaled = append(r.scaled, s)
		default:
			t.Fatalf("%s: unexpected object %s %s", overlay, head.APIVersion, head.Kind)
		}
	}
	return r
}

// TestKubernetes renders both overlays with kubectl kustomize, decodes every
// object strictly into its k8s.io/api type (KEDA's ScaledObject into its
// documented shape), and checks them against the binary and the topology:
// commands, flags, ports and probe paths the binary has; non-root, read-only
// pods with resources and a grace period longer than the drain; one
// Deployment per normalizer kind and per adapter, each with a ScaledObject
// whose trigger names a consumer that `leadstream provision` creates; the
// edge's Service, HPA and PDB; the provision Job; and what each overlay
// leaves to the operator (prod's Secret and keys).
func TestKubernetes(t *testing.T) {
	kinds := []string{"lead", "chat", "bid", "asq", "transaction", "call", "enquiry", "invoice", "unknown"}
	for _, overlay := range []string{"dev", "prod"} {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, overlay)
			want := []string{"leadstream-edge", "leadstream-projection", "leadstream-dispatcher-crm"}
			for _, k := range kinds {
				want = append(want, "leadstream-normalizer-"+k)
			}
			if overlay == "dev" {
				want = append(want, "leadstream-demo-lms")
			}
			for _, name := range want {
				if r.deployments[name] == nil {
					t.Errorf("no Deployment %s", name)
				}
			}
			for name, d := range r.deployments {
				checkPod(t, name, d.Spec.Template.Spec, name != "leadstream-demo-lms")
				if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
					t.Errorf("%s: selector %v does not select its pods %v", name, d.Spec.Selector, d.Spec.Template.Labels)
				}
			}
			checkDistinctSelectors(t, r)
			checkEdge(t, r, overlay)
			if len(r.jobs) != 1 || r.jobs[0].Spec.Template.Spec.Containers[0].Args[0] != "provision" {
				t.Fatalf("want one provision Job, got %d", len(r.jobs))
			}
			checkPod(t, "provision job", r.jobs[0].Spec.Template.Spec, false)

			targets := map[string]bool{}
			for _, so := range r.scaled {
				name := so.Spec.ScaleTargetRef.Name
				if r.deployments[name] == nil {
					t.Errorf("ScaledObject %v scales %s, which does not exist", so.Metadata["name"], name)
				}
				targets[name] = true
				if so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount < 2 {
					t.Errorf("ScaledObject of %s scales to %v", name, so.Spec.MaxReplicaCount)
				}
				for _, tr := range so.Spec.Triggers {
					fields, ok := kedaTriggerFields[tr.Type]
					if !ok {
						t.Errorf("%s: trigger type %q", name, tr.Type)
						continue
					}
					for k := range tr.Metadata {
						if _, ok := fields[k]; !ok {
							t.Errorf("%s: %s trigger has no field %q (KEDA's documentation)", name, tr.Type, k)
						}
					}
					for k, required := range fields {
						if required && tr.Metadata[k] == "" {
							t.Errorf("%s: %s trigger lacks %q", name, tr.Type, k)
						}
					}
				}
			}
			for name := range r.deployments {
				if strings.Contains(name, "normalizer") || strings.Contains(name, "dispatcher-") {
					if !targets[name] {
						t.Errorf("%s has no ScaledObject", name)
					}
				}
			}
			checkTopology(t, r, overlay)
			checkReferences(t, r, overlay)
		})
	}
}

// checkPod: the image and command of the binary, on the ports and probe
// paths it serves, non-root and read-only, with resources and a grace
// period longer than the drain.
func checkPod(t *testing.T, name string, pod corev1.PodSpec, service bool) {
	t.Helper()
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers", name, len(pod.Containers))
	}
	c := pod.Containers[0]
	if !strings.HasPrefix(c.Image, "leadstream:") {
		t.Errorf("%s: image %q", name, c.Image)
	}
	if len(c.Args) == 0 || !strings.Contains(usageOf(t, "help"), "\n  "+c.Args[0]+" ") {
		t.Fatalf("%s: args %v: not a leadstream command", name, c.Args)
	}
	for _, arg := range c.Args[1:] {
		flagName, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if u := usageOf(t, c.Args[0]); !strings.Contains(u, "-"+flagName+" ") && !strings.Contains(u, "-"+flagName+"\n") {
			t.Errorf("%s: leadstream %s has no flag %s", name, c.Args[0], arg)
		}
	}
	sc, psc := c.SecurityContext, pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("%s: want non-root, read-only root, no privilege escalation, all capabilities dropped", name)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %v", name, c.Resources)
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 40 {
		t.Errorf("%s: terminationGracePeriodSeconds %v, shorter than the drain", name, pod.TerminationGracePeriodSeconds)
	}
	if !service {
		return
	}
	port := map[string]int32{"edge": 8080, "normalizer": 9090, "dispatcher": 9091}[c.Args[0]]
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port {
		t.Fatalf("%s: ports %v, want %d (leadstream %s's)", name, c.Ports, port, c.Args[0])
	}
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.String() != c.Ports[0].Name {
			t.Errorf("%s: want an HTTP probe of %s on port %s", name, path, c.Ports[0].Name)
		}
	}
}

func checkDistinctSelectors(t *testing.T, r *rendered) {
	t.Helper()
	for a, da := range r.deployments {
		for b, db := range r.deployments {
			if a < b && selects(da.Spec.Selector.MatchLabels, db.Spec.Template.Labels) {
				t.Errorf("the selector of %s also selects the pods of %s", a, b)
			}
		}
	}
}

func checkEdge(t *testing.T, r *rendered, overlay string) {
	t.Helper()
	edge := r.deployments["leadstream-edge"]
	svc := r.services["leadstream-edge"]
	if edge == nil || svc == nil || !selects(svc.Spec.Selector, edge.Spec.Template.Labels) || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Fatalf("the edge's Service does not reach its pods")
	}
	if len(r.hpas) != 1 || r.hpas[0].Spec.ScaleTargetRef.Name != "leadstream-edge" || r.hpas[0].Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
		t.Errorf("want an HPA on the edge's CPU")
	}
	if len(r.pdbs) != 1 || !selects(r.pdbs[0].Spec.Selector.MatchLabels, edge.Spec.Template.Labels) {
		t.Errorf("want a PodDisruptionBudget of the edge")
	}
	if overlay == "prod" && (r.pdbs[0].Spec.MinAvailable == nil || r.pdbs[0].Spec.MinAvailable.IntValue() < 2 || *r.hpas[0].Spec.MinReplicas < 3) {
		t.Errorf("prod: at least 3 edges, 2 of them always up")
	}
}

// checkTopology runs `leadstream provision` with the overlay's config
// against a JetStream and finds, for every nats-jetstream trigger, its
// stream and consumer there; a prometheus trigger's query names a series
// the dispatcher exports.
func checkTopology(t *testing.T, r *rendered, overlay string) {
	t.Helper()
	dir := t.TempDir()
	ns := natstest.RunServer(t)
	cfg := r.configMaps[configMapName(t, r, "leadstream-config")].Data["leadstream.yaml"]
	cfg = strings.Replace(cfg, "nats://nats:4222", ns.ClientURL(), 1)
	cfg = strings.Replace(cfg, "replicas: 3", "replicas: 1", 1)
	if err := os.WriteFile(filepath.Join(dir, "leadstream.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	keys := r.configMaps[configMapName(t, r, "leadstream-keys")]
	if keys == nil { // prod: the operator's; the demo keys stand in
		dev := render(t, "dev")
		keys = dev.configMaps[configMapName(t, dev, "leadstream-keys")]
	}
	for name, pem := range keys.Data {
		if err := os.WriteFile(filepath.Join(dir, "keys", name), []byte(pem), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(leadstreamBin(t), "provision", "--config", filepath.Join(dir, "leadstream.yaml"))
	cmd.Env = append(os.Environ(), "TENANT=t", "MP_API_SECRET=x", "OFFERTE_SECRET=y", "LOKALEBASEN_TOKEN=lb_0123456789ab",
		"CRM_URL=http://127.0.0.1:1/events", "CRM_WEBHOOK_SECRET=whsec_MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=", "POD_NAME=test-0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("leadstream provision with the %s config: %v\n%s", overlay, err, out)
	}
	_, js := natstest.Connect(t, ns)
	metrics, err := os.ReadFile(filepath.Join(repo, "services", "dispatcher", "metrics.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, so := range r.scaled {
		for _, tr := range so.Spec.Triggers {
			switch tr.Type {
			case "nats-jetstream":
				// (The normalizers' consumers are push consumers: nats.go says so, and so they exist.)
				if _, err := js.Consumer(context.Background(), tr.Metadata["stream"], tr.Metadata["consumer"]); err != nil && !errors.Is(err, jetstream.ErrNotPullConsumer) {
					t.Errorf("%s: trigger on %s > %s, which provision did not create: %v", so.Spec.ScaleTargetRef.Name, tr.Metadata["stream"], tr.Metadata["consumer"], err)
				}
			case "prometheus":
				series, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(tr.Metadata["query"], "max("), "sum("), "{")
				if !strings.Contains(string(metrics), `"`+series+`"`) {
					t.Errorf("%s: query %q names no series the dispatcher exports", so.Spec.ScaleTargetRef.Name, tr.Metadata["query"])
				}
				adapter := strings.TrimPrefix(so.Spec.ScaleTargetRef.Name, "leadstream-dispatcher-")
				if !strings.Contains(tr.Metadata["query"], fmt.Sprintf(`adapter=%q`, adapter)) {
					t.Errorf("%s: query %q is not about adapter %s", so.Spec.ScaleTargetRef.Name, tr.Metadata["query"], adapter)
				}
			}
		}
	}
}

// checkReferences: every ConfigMap and Secret a pod uses is in the output,
// but for what prod leaves to the operator.
func checkReferences(t *testing.T, r *rendered, overlay string) {
	t.Helper()
	external := map[string]bool{}
	if overlay == "prod" {
		external = map[string]bool{"leadstream-secrets": true, "leadstream-keys": true}
	}
	missing := map[string]bool{}
	for _, d := range r.deployments {
		pod := d.Spec.Template.Spec
		for _, v := range pod.Volumes {
			if v.ConfigMap != nil && r.configMaps[v.ConfigMap.Name] == nil {
				missing[v.ConfigMap.Name] = true
			}
		}
		for _, c := range pod.Containers {
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil && r.secrets[e.SecretRef.Name] == nil {
					missing[e.SecretRef.Name] = true
				}
				if e.ConfigMapRef != nil && r.configMaps[e.ConfigMapRef.Name] == nil {
					missing[e.ConfigMapRef.Name] = true
				}
			}
		}
	}
	for name := range missing {
		if !external[strings.TrimRight(name, "-0123456789abcdefghijklmnopqrstuvwxyz")] && !external[name] {
			t.Errorf("%s: pods use %s, which is not rendered", overlay, name)
		}
	}
	for name := range external {
		if !missing[name] {
			t.Errorf("%s: %s should be left to the operator", overlay, name)
		}
	}
}

// configMapName finds the generated ConfigMap of base name (with its hash suffix).
func configMapName(t *testing.T, r *rendered, base string) string {
	t.Helper()
	for name := range r.configMaps {
		if name == base || strings.HasPrefix(name, base+"-") && len(name) == len(base)+11 {
			return name
		}
	}
	return ""
}

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestNATSHelmValues: the values for the official NATS chart ask for three
// servers, JetStream on a file store with a PVC, sync before every ack
// (config.jetstream.merge), monitoring on and exposed for KEDA, and a
// max_payload the edge accepts.
func TestNATSHelmValues(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repo, "deploy", "k8s", "nats", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `json:"enabled"`
				Replicas int  `json:"replicas"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					Enabled bool `json:"enabled"`
					PVC     struct {
						Enabled bool   `json:"enabled"`
						Size    string `json:"size"`
					} `json:"pvc"`
				} `json:"fileStore"`
				Merge map[string]any `json:"merge"`
			} `json:"jetstream"`
			Monitor struct {
				Enabled bool `json:"enabled"`
				Port    int  `json:"port"`
			} `json:"monitor"`
			Merge map[string]any `json:"merge"`
		} `json:"config"`
		Service struct {
			Ports struct {
				Monitor struct {
					Enabled bool `json:"enabled"`
				} `json:"monitor"`
			} `json:"ports"`
		} `json:"service"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	c := v.Config
	switch {
	case !c.Cluster.Enabled || c.Cluster.Replicas != 3:
		t.Error("want a cluster of 3")
	case !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled || c.JetStream.FileStore.PVC.Size == "":
		t.Error("want JetStream on a file store with a PVC")
	case c.JetStream.Merge["sync_interval"] != "always":
		t.Errorf("config.jetstream.merge.sync_interval %v, want always", c.JetStream.Merge["sync_interval"])
	case !c.Monitor.Enabled || c.Monitor.Port != 8222 || !v.Service.Ports.Monitor.Enabled:
		t.Error("want monitoring on 8222, exposed")
	case !strings.Contains(fmt.Sprint(c.Merge["max_payload"]), "8MB"):
		t.Errorf("max_payload %v, want 8MB", c.Merge["max_payload"])
	}
}
