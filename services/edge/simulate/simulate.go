// Package simulate sends correctly signed sample webhooks of every provider
// and event type to an edge, the way each provider signs them: for demos,
// smoke tests and load tests.
package simulate

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"embed"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/services/edge/verify"
)

//go:embed samples
var samples embed.FS

// Sample is one example webhook body of a provider.
type Sample struct {
	// Name is "<provider>/<file>" without .json, e.g. "marktplaats-api/bid-placed".
	Name     string
	Provider string
	Body     []byte
}

// Samples returns every sample payload, sorted by name.
func Samples() []Sample {
	var out []Sample
	_ = fs.WalkDir(samples, "samples", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		body, err := samples.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, "samples/"), ".json")
		out = append(out, Sample{Name: rel, Provider: path.Dir(rel), Body: body})
		return nil
	})
	slices.SortFunc(out, func(a, b Sample) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Signer signs requests for the sources of one config.
type Signer struct {
	cfg  *config.Config
	keys map[string]map[string]*rsa.PrivateKey // source -> keyId -> private key
	// Now is the clock for cavage `created`; nil is time.Now.
	Now func() time.Time
}

// NewSigner prepares signing for cfg's sources. The private key of a
// Marktplaats LMS public key file X.pub.pem is read from X.pem beside it:
// only demo and test setups have one.
func NewSigner(cfg *config.Config) (*Signer, error) {
	s := &Signer{cfg: cfg, keys: map[string]map[string]*rsa.PrivateKey{}}
	for i, src := range cfg.Sources {
		if src.Provider != config.ProviderMarktplaatsLMS {
			continue
		}
		s.keys[src.Name] = map[string]*rsa.PrivateKey{}
		for keyID, pub := range src.PublicKeys {
			p := pub
			if !strings.HasPrefix(p, "/") {
				p = cfg.Dir + "/" + p
			}
			priv := strings.TrimSuffix(p, ".pub.pem") + ".pem"
			key, err := loadPrivateKey(priv)
			if err != nil {
				return nil, fmt.Errorf("sources[%d].public_keys.%s: private key for signing: %w", i, keyID, err)
			}
			s.keys[src.Name][keyID] = key
		}
	}
	return s, nil
}

// SourceFor returns the first configured source of provider.
func (s *Signer) SourceFor(provider string) (*config.Source, bool) {
	for i := range s.cfg.Sources {
		if s.cfg.Sources[i].Provider == provider {
			return &s.cfg.Sources[i], true
		}
	}
	return nil, false
}

// Request builds the signed POST of body to src on the edge at baseURL,
// exactly as the provider would send it.
func (s *Signer) Request(ctx context.Context, baseURL string, src *config.Source, sampleName string, body []byte) (*http.Request, error) {
	target := "/hooks/" + src.Name
	if src.Provider == config.ProviderLokalebasen {
		target += "/" + src.AllTokens()[0]
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(baseURL, "/")+target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	switch src.Provider {
	case config.ProviderMarktplaatsLMS:
		keyID := config.KeyIDLeadDelivery
		if strings.Contains(sampleName, "chat") {
			keyID = config.KeyIDChatMessagePush
		}
		key, ok := s.keys[src.Name][keyID]
		if !ok {
			return nil, fmt.Errorf("source %s: no signing key %s", src.Name, keyID)
		}
		signed := target
		if src.PublicPath != "" {
			signed = src.PublicPath
		}
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		digest, sig := verify.SignCavage(key, keyID, http.MethodPost, signed, now().Unix(), body)
		req.Header.Set(config.HeaderDigest, digest)
		req.Header.Set(config.HeaderSignature, sig)
	case config.ProviderMarktplaatsAPI:
		req.Header.Set(config.HeaderEcgSignature, verify.HMACHex([]byte(src.Secrets[0]), body))
	case config.ProviderOfferteAdviseur:
		req.Header.Set(config.HeaderOfferteAdviseurSignature, verify.HMACHex([]byte(src.Secrets[0]), body))
	}
	return req, nil
}

// Unique returns body with its provider event id made unique by suffix
// (Lokalebasen sends no id: its comment changes instead), so that a load
// test is not all duplicates. Bodies that are not JSON objects come back as
// they are.
func Unique(provider string, body []byte, suffix string) []byte {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	field := map[string]string{
		config.ProviderMarktplaatsAPI:  "id",
		config.ProviderOfferteAdviseur: "id",
	}[provider]
	switch provider {
	case config.ProviderMarktplaatsLMS:
		field = "leadId"
		if _, ok := m["messageId"]; ok {
			field = "messageId"
		}
	case config.ProviderLokalebasen:
		if p, ok := m["payload"].(map[string]any); ok {
			p["comment"] = fmt.Sprint(p["comment"], " #", suffix)
		}
	}
	if field != "" {
		m[field] = fmt.Sprint(m[field], "-", suffix)
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

// Result is the edge's answer to one sample.
type Result struct {
	Sample string
	Source string
	Status int
	Body   string
	Err    error
}

// Run sends every sample, then the first one again (a provider's
// redelivery, answered as a duplicate), and returns the answers in order.
func Run(ctx context.Context, client *http.Client, baseURL string, signer *Signer) []Result {
	all := Samples()
	if len(all) > 0 {
		all = append(all, all[0])
	}
	var out []Result
	for _, smp := range all {
		src, ok := signer.SourceFor(smp.Provider)
		if !ok {
			out = append(out, Result{Sample: smp.Name, Err: fmt.Errorf("no source with provider %s in the config", smp.Provider)})
			continue
		}
		res := Result{Sample: smp.Name, Source: src.Name}
		req, err := signer.Request(ctx, baseURL, src, smp.Name, smp.Body)
		if err == nil {
			var resp *http.Response
			if resp, err = client.Do(req); err == nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				res.Status, res.Body = resp.StatusCode, strings.TrimSpace(string(b))
			}
		}
		res.Err = err
		out = append(out, res)
	}
	return out
}

func loadPrivateKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA private key", path)
	}
	return rk, nil
}
