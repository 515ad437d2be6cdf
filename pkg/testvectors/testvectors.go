// Package testvectors loads the shared, openssl-signed webhook request
// vectors (../shared/testdata beside the repository) for tests.
package testvectors

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leadstream/leadstream/pkg/config"
)

// Vector is one signed request and the status the edge must answer.
type Vector struct {
	Name       string            `json:"name"`
	Source     string            `json:"source"`
	Provider   string            `json:"provider"`
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Now        int64             `json:"now"`
	Headers    map[string]string `json:"headers"`
	BodyBase64 string            `json:"body_base64"`
	WantStatus int               `json:"want_status"`
}

// Body decodes the vector's body.
func (v Vector) Body() []byte {
	b, err := base64.StdEncoding.DecodeString(v.BodyBase64)
	if err != nil {
		panic(fmt.Sprintf("vector %s: body: %v", v.Name, err))
	}
	return b
}

// Target is the request path to send the vector to: its own path when that
// routes to its source, else the source's URL. The one vector signed for
// another path (lms-lead-other-path) so arrives at its source with a
// signature over a path it was not sent to.
func (v Vector) Target() string {
	base := "/hooks/" + v.Source
	if v.Path == base || strings.HasPrefix(v.Path, base+"/") {
		return v.Path
	}
	return base
}

// File is vectors.json.
type File struct {
	Secrets struct {
		MPAPI            string `json:"mp-api"`
		Offerte          string `json:"offerte"`
		LokalebasenToken string `json:"lokalebasen_token"`
	} `json:"secrets"`
	PublicKeys          map[string]string `json:"public_keys"`
	MaxClockSkewSeconds int64             `json:"max_clock_skew_seconds"`
	Vectors             []Vector          `json:"vectors"`
	// Dir is the shared testdata directory; key paths are relative to it.
	Dir string `json:"-"`
}

// Dir returns the shared testdata directory: $LEADSTREAM_SHARED_TESTDATA, or
// ../shared/testdata beside the repository root (the directory with go.work).
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("LEADSTREAM_SHARED_TESTDATA"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(dir, "..", "shared", "testdata")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testvectors: no go.work above the working directory")
		}
		dir = parent
	}
}

// Load reads vectors.json.
func Load(t testing.TB) *File {
	t.Helper()
	dir := Dir(t)
	data, err := os.ReadFile(filepath.Join(dir, "vectors.json"))
	if err != nil {
		t.Fatalf("testvectors: %v (the shared test data must be at ../shared beside the repository)", err)
	}
	f := &File{Dir: dir}
	if err := json.Unmarshal(data, f); err != nil {
		t.Fatalf("testvectors: vectors.json: %v", err)
	}
	return f
}

// ConfigYAML is a leadstream config with the four sources the vectors are
// signed for (mp-leads, mp-api, offerte, lokalebasen), key paths absolute.
func (f *File) ConfigYAML() string {
	return fmt.Sprintf(`log: {format: console, level: error}
sources:
  - name: mp-leads
    provider: marktplaats-lms
    tenant: t1
    public_keys:
      leadDeliveryKey: %s
      chatMessagePushKey: %s
    max_clock_skew: %ds
  - name: mp-api
    provider: marktplaats-api
    tenant: t1
    secrets: [%q]
  - name: offerte
    provider: offerte-adviseur
    tenant: t1
    secrets: [%q]
  - name: lokalebasen
    provider: lokalebasen
    tenant: t1
    token: %q
`, filepath.Join(f.Dir, f.PublicKeys[config.KeyIDLeadDelivery]), filepath.Join(f.Dir, f.PublicKeys[config.KeyIDChatMessagePush]), f.MaxClockSkewSeconds,
		f.Secrets.MPAPI, f.Secrets.Offerte, f.Secrets.LokalebasenToken)
}
