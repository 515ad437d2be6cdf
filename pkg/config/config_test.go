package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// keysDir holds the shared test keys; tests pass it as the config's dir so
// that key paths in the snippets are bare file names.
const keysDir = "../../../shared/testdata/keys"

// shipped is the configuration `make run` uses.
const shipped = "../../deploy/local/leadstream.yaml"

// fieldLine is what every validation error line must start with: a field
// path such as "sources[1].public_keys.leadDeliveryKey: ".
var fieldLine = regexp.MustCompile(`^[a-z_]+(\[\d+\])?(\.[A-Za-z0-9_-]+(\[\d+\])?)*: `)

// abs returns the absolute path of a file under this package's testdata, for
// snippets whose dir is keysDir.
func abs(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func parse(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	cfg, err := Parse([]byte(yaml), keysDir)
	if err != nil && cfg != nil {
		t.Errorf("Parse returned a config with error %v", err)
	}
	return cfg, err
}

func mustParse(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := parse(t, yaml)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, yaml)
	}
	return cfg
}

// unsetenv unsets name for the test and restores it afterwards.
func unsetenv(t *testing.T, name string) {
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

// minimal is the smallest valid configuration.
const minimal = `
sources:
  - name: mp-api
    provider: marktplaats-api
    tenant: demo
    secrets: [s3cr3t]
`

// minimalWith prepends top-level YAML to minimal.
func minimalWith(top string) string { return top + minimal }

// lbWith is a valid lokalebasen source plus the given source fields.
func lbWith(fields string) string {
	return `
sources:
  - name: lb
    provider: lokalebasen
    tenant: demo
` + fields
}

func TestLoadShipped(t *testing.T) {
	for _, v := range []string{"MP_API_SECRET", "OFFERTE_SECRET", "LOKALEBASEN_TOKEN"} {
		unsetenv(t, v)
	}
	cfg, err := Load(shipped)
	if err != nil {
		t.Fatalf("Load(%s): %v", shipped, err)
	}

	wantDir, err := filepath.Abs(filepath.Dir(shipped))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dir != wantDir {
		t.Errorf("Dir = %q, want %q", cfg.Dir, wantDir)
	}
	if want := filepath.Join(wantDir, "../../.data/nats"); cfg.NATS.StoreDir != want {
		t.Errorf("nats.store_dir = %q, want %q (relative to the file)", cfg.NATS.StoreDir, want)
	}
	if cfg.Log.Format != "console" || cfg.NATS.Listen != "127.0.0.1:4222" || cfg.MaxBodyBytes != 1<<20 {
		t.Errorf("log.format %q, nats.listen %q, max_body_bytes %d: not what the file says", cfg.Log.Format, cfg.NATS.Listen, cfg.MaxBodyBytes)
	}

	want := []struct{ name, provider string }{
		{"mp-leads", ProviderMarktplaatsLMS},
		{"mp-api", ProviderMarktplaatsAPI},
		{"offerte", ProviderOfferteAdviseur},
		{"lokalebasen", ProviderLokalebasen},
	}
	if len(cfg.Sources) != len(want) {
		t.Fatalf("%d sources, want %d", len(cfg.Sources), len(want))
	}
	for i, w := range want {
		s := cfg.Sources[i]
		if s.Name != w.name || s.Provider != w.provider || s.Tenant != "demo-dealer" {
			t.Errorf("sources[%d] = %s/%s/%s, want %s/%s/demo-dealer", i, s.Name, s.Provider, s.Tenant, w.name, w.provider)
		}
		if got, ok := cfg.Source(w.name); !ok || got != &cfg.Sources[i] {
			t.Errorf("Source(%q) = %p, %v; want sources[%d]", w.name, got, ok, i)
		}
	}

	lms := cfg.Sources[0]
	if lms.MaxClockSkew.Duration != 5*time.Minute {
		t.Errorf("max_clock_skew = %s", lms.MaxClockSkew.Duration)
	}
	if len(lms.Keys) != 2 {
		t.Fatalf("%d keys parsed, want 2", len(lms.Keys))
	}
	for keyID, key := range lms.Keys {
		// The demo keys are the shared test keys: the parsed public key must
		// be the half of the private key that `simulate` signs with.
		priv := readPrivateKey(t, filepath.Join(filepath.Dir(shipped), "keys", keyID+".pem"))
		if !key.Equal(&priv.PublicKey) {
			t.Errorf("public_keys.%s does not match keys/%s.pem", keyID, keyID)
		}
	}
	if !slices.Equal(cfg.Sources[1].Secrets, []string{"s3cr3t"}) {
		t.Errorf("mp-api secrets = %q, want the demo default", cfg.Sources[1].Secrets)
	}
	if !slices.Equal(cfg.Sources[2].Secrets, []string{"oa_test_secret_7f3b"}) {
		t.Errorf("offerte secrets = %q, want the demo default", cfg.Sources[2].Secrets)
	}
	if got := cfg.Sources[3].AllTokens(); !slices.Equal(got, []string{"lb_9c2e4a71d05b"}) {
		t.Errorf("lokalebasen tokens = %q, want the demo default", got)
	}
	if _, ok := cfg.Source("nope"); ok {
		t.Error(`Source("nope") found a source`)
	}
}

// TestLoadShippedFromEnv: the shipped file takes its secrets from the
// environment when they are set.
func TestLoadShippedFromEnv(t *testing.T) {
	t.Setenv("MP_API_SECRET", "from-env-1")
	t.Setenv("OFFERTE_SECRET", "from-env-2")
	t.Setenv("LOKALEBASEN_TOKEN", "from-env-token-3")
	cfg, err := Load(shipped)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{cfg.Sources[1].Secrets[0], cfg.Sources[2].Secrets[0], cfg.Sources[3].Token}
	if want := []string{"from-env-1", "from-env-2", "from-env-token-3"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func readPrivateKey(t *testing.T, path string) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return key.(*rsa.PrivateKey)
}

// TestLoadResolvesPathsAgainstTheFile: relative paths in a config file are
// relative to the file, not to the working directory.
func TestLoadResolvesPathsAgainstTheFile(t *testing.T) {
	cfg, err := Load("testdata/load/leadstream.yaml")
	if err != nil {
		t.Fatal(err)
	}
	key := cfg.Sources[0].Keys["leadDeliveryKey"]
	priv := readPrivateKey(t, filepath.Join(keysDir, "leadDeliveryKey.pem"))
	if key == nil || !key.Equal(&priv.PublicKey) {
		t.Errorf("leadDeliveryKey = %v, want the shared test key", key)
	}
	if want := abs(t, "load/state/nats"); cfg.NATS.StoreDir != want {
		t.Errorf("nats.store_dir = %q, want %q", cfg.NATS.StoreDir, want)
	}
	if want := abs(t, "load/nats.creds"); cfg.NATS.CredsFile != want {
		t.Errorf("nats.creds_file = %q, want %q", cfg.NATS.CredsFile, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()

	missing := filepath.Join(dir, "missing.yaml")
	_, err := Load(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "reading config") {
		t.Errorf("Load(missing) = %v, want a not-exist error saying what it was doing", err)
	}

	invalid := filepath.Join(dir, "invalid.yaml")
	if err := os.WriteFile(invalid, []byte(minimalWith("listen: \":8080\"\nlog: {level: loud}\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(invalid)
	if err == nil || cfg != nil {
		t.Fatalf("Load(invalid) = %v, %v", cfg, err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "config "+invalid+": ") || !strings.Contains(msg, "log.level: ") {
		t.Errorf("error %q: want it to name the file and the field", msg)
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, minimal)
	dur := func(d Duration) any { return d.Duration }
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"listen", cfg.Listen, ":8080"},
		{"max_body_bytes", cfg.MaxBodyBytes, int64(1 << 20)},
		{"max_in_flight", cfg.MaxInFlight, 4096},
		{"max_reading_bytes", cfg.MaxReadingBytes, int64(64 << 20)},
		{"body_read_timeout", dur(cfg.BodyReadTimeout), 10 * time.Second},
		{"publish_timeout", dur(cfg.PublishTimeout), 5 * time.Second},
		{"shutdown_timeout", dur(cfg.ShutdownTimeout), 25 * time.Second},
		{"dedupe_ttl", dur(cfg.DedupeTTL), 168 * time.Hour},
		{"streams.raw_duplicate_window", dur(cfg.Streams.RawDuplicateWindow), 2 * time.Minute},
		{"streams.raw_max_age", dur(cfg.Streams.RawMaxAge), 720 * time.Hour},
		{"sources[0].max_clock_skew", dur(cfg.Sources[0].MaxClockSkew), 5 * time.Minute},
		{"nats.replicas", cfg.NATS.Replicas, 1},
		{"normalizer.max_ack_pending", cfg.Normalizer.MaxAckPending, 1024},
		{"normalizer.subscribers", cfg.Normalizer.Subscribers, 1024},
		{"nats.listen", cfg.NATS.Listen, "127.0.0.1:4222"},
		{"nats.store_dir", cfg.NATS.StoreDir, filepath.Join(keysDir, ".data/nats")},
		{"log.format", cfg.Log.Format, "json"},
		{"log.level", cfg.Log.Level, "info"},
		{"dir", cfg.Dir, keysDir},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.field, tc.got, tc.want)
		}
	}
}

// TestExplicitValuesWin: a value in the file is kept, never replaced by a default.
func TestExplicitValuesWin(t *testing.T) {
	cfg := mustParse(t, `
listen: "127.0.0.1:9999"
max_body_bytes: 2048
max_in_flight: 7
max_reading_bytes: 4096
body_read_timeout: 3s
publish_timeout: 1500ms
shutdown_timeout: 1m
dedupe_ttl: 24h
log: {format: console, level: debug}
nats: {url: "nats://a:4222,nats://b:4222", replicas: 3}
streams: {raw_max_age: 48h, raw_duplicate_window: 30s}
sources:
  - name: mp-leads
    provider: marktplaats-lms
    tenant: demo
    public_keys: {leadDeliveryKey: leadDeliveryKey.pub.pem}
    max_clock_skew: 90s
`)
	dur := func(d Duration) any { return d.Duration }
	tests := []struct {
		field string
		got   any
		want  any
	}{
		{"listen", cfg.Listen, "127.0.0.1:9999"},
		{"max_body_bytes", cfg.MaxBodyBytes, int64(2048)},
		{"max_in_flight", cfg.MaxInFlight, 7},
		{"max_reading_bytes", cfg.MaxReadingBytes, int64(4096)},
		{"body_read_timeout", dur(cfg.BodyReadTimeout), 3 * time.Second},
		{"publish_timeout", dur(cfg.PublishTimeout), 1500 * time.Millisecond},
		{"shutdown_timeout", dur(cfg.ShutdownTimeout), time.Minute},
		{"dedupe_ttl", dur(cfg.DedupeTTL), 24 * time.Hour},
		{"streams.raw_duplicate_window", dur(cfg.Streams.RawDuplicateWindow), 30 * time.Second},
		{"streams.raw_max_age", dur(cfg.Streams.RawMaxAge), 48 * time.Hour},
		{"sources[0].max_clock_skew", dur(cfg.Sources[0].MaxClockSkew), 90 * time.Second},
		{"nats.replicas", cfg.NATS.Replicas, 3},
		{"nats.url", cfg.NATS.URL, "nats://a:4222,nats://b:4222"},
		// The embedded server's settings mean nothing with an external NATS.
		{"nats.store_dir", cfg.NATS.StoreDir, ""},
		{"nats.listen", cfg.NATS.Listen, ""},
		{"log.format", cfg.Log.Format, "console"},
		{"log.level", cfg.Log.Level, "debug"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.field, tc.got, tc.want)
		}
	}
}

func TestPublicKeyFormats(t *testing.T) {
	want := readPrivateKey(t, filepath.Join(keysDir, "leadDeliveryKey.pem")).PublicKey
	for _, file := range []string{"leadDeliveryKey.pub.pem", abs(t, "keys/leadDeliveryKey.pkcs1.pem")} {
		cfg := mustParse(t, `
sources:
  - name: mp-leads
    provider: marktplaats-lms
    tenant: demo
    public_keys: {leadDeliveryKey: "`+file+`"}
`)
		if got := cfg.Sources[0].Keys["leadDeliveryKey"]; got == nil || !got.Equal(&want) {
			t.Errorf("%s: key %v, want the leadDeliveryKey public key", filepath.Base(file), got)
		}
	}
}

func TestAllowCIDRsParsed(t *testing.T) {
	cfg := mustParse(t, lbWith(`    token: lb_0123456789ab
    allow_cidrs: ["10.1.2.3/8", "2001:db8::1/32", "192.0.2.7/32"]
`))
	var got []string
	for _, p := range cfg.Sources[0].Allow {
		got = append(got, p.String())
	}
	if want := []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"}; !slices.Equal(got, want) {
		t.Errorf("allow = %q, want %q (masked)", got, want)
	}
}

func TestAllTokens(t *testing.T) {
	cfg := mustParse(t, lbWith(`    token: lb_0123456789ab
    tokens: [lb_rotated_000001, lb_rotated_000002]
`))
	want := []string{"lb_0123456789ab", "lb_rotated_000001", "lb_rotated_000002"}
	if got := cfg.Sources[0].AllTokens(); !slices.Equal(got, want) {
		t.Errorf("AllTokens = %q, want %q", got, want)
	}
}

func TestEnvExpansion(t *testing.T) {
	const unset = "\x00unset"
	tests := []struct {
		name    string
		env     map[string]string
		secret  string // YAML text of the secret
		want    string // expanded secret
		wantErr []string
	}{
		{"set", map[string]string{"LS_TEST_SECRET": "abc"}, `"${LS_TEST_SECRET}"`, "abc", nil},
		{"default unused", map[string]string{"LS_TEST_SECRET": "abc"}, `"${LS_TEST_SECRET:-def}"`, "abc", nil},
		{"default when unset", map[string]string{"LS_TEST_SECRET": unset}, `"${LS_TEST_SECRET:-def}"`, "def", nil},
		{"default when empty", map[string]string{"LS_TEST_SECRET": ""}, `"${LS_TEST_SECRET:-def}"`, "def", nil},
		{"default with colon and spaces", map[string]string{"LS_TEST_SECRET": unset}, `"${LS_TEST_SECRET:-a b:c-d}"`, "a b:c-d", nil},
		{"several in one value", map[string]string{"LS_TEST_A": "1", "LS_TEST_B": "2"}, `"x-${LS_TEST_A}-${LS_TEST_B}-y"`, "x-1-2-y", nil},
		{"unquoted", map[string]string{"LS_TEST_SECRET": "abc"}, `${LS_TEST_SECRET}`, "abc", nil},
		{"bare dollar is literal", map[string]string{"LS_TEST_SECRET": "abc"}, `"p$LS_TEST_SECRET$"`, "p$LS_TEST_SECRET$", nil},
		{"unset without default", map[string]string{"LS_TEST_SECRET": unset}, `"${LS_TEST_SECRET}"`, "", []string{"LS_TEST_SECRET", "not set"}},
		{"empty without default", map[string]string{"LS_TEST_SECRET": ""}, `"${LS_TEST_SECRET}"`, "", []string{"LS_TEST_SECRET"}},
		{"empty default", map[string]string{"LS_TEST_SECRET": unset}, `"${LS_TEST_SECRET:-}"`, "", []string{"sources[0].secrets[0]: ", "empty secret"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				if v == unset {
					unsetenv(t, k)
				} else {
					t.Setenv(k, v)
				}
			}
			cfg, err := parse(t, `
sources:
  - name: mp-api
    provider: marktplaats-api
    tenant: demo
    secrets: [`+tc.secret+`]
`)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, secrets %q", cfg.Sources[0].Secrets)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Sources[0].Secrets; !slices.Equal(got, []string{tc.want}) {
				t.Errorf("secrets = %q, want [%q]", got, tc.want)
			}
		})
	}
}

// TestEnvExpansionEverywhere: any scalar may come from the environment,
// including numbers, durations and key file paths.
func TestEnvExpansionEverywhere(t *testing.T) {
	t.Setenv("LS_TEST_MAX_BODY", "4096")
	t.Setenv("LS_TEST_SKEW", "2m")
	unsetenv(t, "LS_TEST_KEY")
	cfg := mustParse(t, `
max_body_bytes: ${LS_TEST_MAX_BODY}
publish_timeout: ${LS_TEST_TIMEOUT:-7s}
sources:
  - name: mp-leads
    provider: marktplaats-lms
    tenant: ${LS_TEST_TENANT:-acme}
    public_keys: {leadDeliveryKey: "${LS_TEST_KEY:-leadDeliveryKey.pub.pem}"}
    max_clock_skew: ${LS_TEST_SKEW}
`)
	if cfg.MaxBodyBytes != 4096 || cfg.PublishTimeout.Duration != 7*time.Second ||
		cfg.Sources[0].Tenant != "acme" || cfg.Sources[0].MaxClockSkew.Duration != 2*time.Minute ||
		cfg.Sources[0].Keys["leadDeliveryKey"] == nil {
		t.Errorf("got max_body_bytes %d, publish_timeout %s, tenant %q, max_clock_skew %s, keys %v",
			cfg.MaxBodyBytes, cfg.PublishTimeout.Duration, cfg.Sources[0].Tenant, cfg.Sources[0].MaxClockSkew.Duration, cfg.Sources[0].Keys)
	}
}

// TestNormalizerSubscribersFollowMaxAckPending: without subscribers of its
// own, a kind has one handler per message it may have in flight.
func TestNormalizerSubscribersFollowMaxAckPending(t *testing.T) {
	cfg := mustParse(t, minimalWith("normalizer: {max_ack_pending: 32}\n"))
	if n := cfg.Normalizer; n.MaxAckPending != 32 || n.Subscribers != 32 {
		t.Fatalf("max_ack_pending %d, subscribers %d; want 32 and 32", n.MaxAckPending, n.Subscribers)
	}
	cfg = mustParse(t, minimalWith("normalizer: {max_ack_pending: 32, subscribers: 8}\n"))
	if n := cfg.Normalizer; n.MaxAckPending != 32 || n.Subscribers != 8 {
		t.Fatalf("max_ack_pending %d, subscribers %d; want 32 and 8", n.MaxAckPending, n.Subscribers)
	}
}

// TestValidationErrors: every problem is reported with the field it is about.
// fields lists the field paths that must each start an error line; contains,
// text the error must contain; secret, text it must not (no secret is echoed).
// TestMaxParkAboveAckWaits: a max_park longer than both ack waits together
// is accepted, shortened ack waits included.
func TestMaxParkAboveAckWaits(t *testing.T) {
	cfg := mustParse(t, minimalWith("normalizer: {ack_wait: 6s, handler_timeout: 5s}\ndispatcher: {max_park: 13s, ack_wait: 6s}\n"))
	if cfg.Dispatcher.MaxPark.Duration != 13*time.Second {
		t.Fatalf("max_park %s", cfg.Dispatcher.MaxPark.Duration)
	}
	mustParse(t, minimal) // the defaults: 15m against 30s + 30s
}

// TestDispatcherGroupDefaults: 16 partitions, and a member name only when
// one is given (the dispatcher then names itself after host and pid).
func TestDispatcherGroupDefaults(t *testing.T) {
	cfg := mustParse(t, minimal)
	if cfg.Dispatcher.Partitions != 16 || cfg.Dispatcher.Member != "" {
		t.Fatalf("partitions %d, member %q", cfg.Dispatcher.Partitions, cfg.Dispatcher.Member)
	}
	cfg = mustParse(t, minimalWith("dispatcher: {partitions: 4, member: dispatcher-crm-7f9c_0}\n"))
	if cfg.Dispatcher.Partitions != 4 || cfg.Dispatcher.Member != "dispatcher-crm-7f9c_0" {
		t.Fatalf("partitions %d, member %q", cfg.Dispatcher.Partitions, cfg.Dispatcher.Member)
	}
}

func TestValidationErrors(t *testing.T) {
	lms := func(keys string) string {
		return `
sources:
  - name: mp-leads
    provider: marktplaats-lms
    tenant: demo
    public_keys: ` + keys + "\n"
	}
	withSource := func(provider, fields string) string {
		return `
sources:
  - name: s
    provider: ` + provider + `
    tenant: demo
` + fields
	}
	tests := []struct {
		name     string
		yaml     string
		fields   []string
		contains []string
		secret   string
	}{
		// Marktplaats LMS public keys.
		{"missing key file", lms(`{leadDeliveryKey: nope.pub.pem}`),
			[]string{"sources[0].public_keys.leadDeliveryKey"}, []string{"nope.pub.pem", "reading key file"}, ""},
		{"private key instead of public", lms(`{leadDeliveryKey: leadDeliveryKey.pem}`),
			[]string{"sources[0].public_keys.leadDeliveryKey"}, []string{`"PRIVATE KEY" is not a public key`}, ""},
		{"not PEM", lms(`{leadDeliveryKey: "` + abs(t, "keys/not-pem.pub") + `"}`),
			[]string{"sources[0].public_keys.leadDeliveryKey"}, []string{"no PEM block"}, ""},
		{"not RSA", lms(`{leadDeliveryKey: "` + abs(t, "keys/ec.pub.pem") + `"}`),
			[]string{"sources[0].public_keys.leadDeliveryKey"}, []string{"not an RSA public key"}, ""},
		{"corrupt PEM body", lms(`{leadDeliveryKey: "` + abs(t, "keys/corrupt.pub.pem") + `"}`),
			[]string{"sources[0].public_keys.leadDeliveryKey"}, []string{"corrupt.pub.pem"}, ""},
		{"directory instead of key", lms(`{leadDeliveryKey: .}`),
			[]string{"sources[0].public_keys.leadDeliveryKey"}, nil, ""},
		{"only the bad one of two keys", lms(`{leadDeliveryKey: leadDeliveryKey.pub.pem, chatMessagePushKey: nope.pem}`),
			[]string{"sources[0].public_keys.chatMessagePushKey"}, nil, ""},
		{"no public keys", lms(`{}`),
			[]string{"sources[0].public_keys"}, []string{"required"}, ""},
		{"secret on a key source", lms(`{leadDeliveryKey: leadDeliveryKey.pub.pem}`) + "    secrets: [x]\n",
			[]string{"sources[0].secrets"}, []string{"not used by provider marktplaats-lms"}, ""},

		// Providers and names.
		{"unknown provider", minimal + `  - name: other
    provider: marktplaats
    tenant: demo
`, []string{"sources[1].provider"}, []string{`unknown provider "marktplaats"`, ProviderMarktplaatsAPI}, ""},
		{"missing provider", `
sources:
  - name: x
    tenant: demo
`, []string{"sources[0].provider"}, []string{"required"}, ""},
		{"no sources", `listen: ":8080"`, []string{"sources"}, []string{"at least one source"}, ""},
		{"duplicate source name", `
sources:
  - {name: a, provider: marktplaats-api, tenant: demo, secrets: [x]}
  - {name: b, provider: marktplaats-api, tenant: demo, secrets: [x]}
  - {name: a, provider: offerte-adviseur, tenant: demo, secrets: [x]}
`, []string{"sources[2].name"}, []string{`duplicate source name "a"`, "sources[0]"}, ""},

		// Durations.
		{"bad max_clock_skew", lms(`{leadDeliveryKey: leadDeliveryKey.pub.pem}`) + "    max_clock_skew: 5 minutes\n",
			[]string{"sources[0].max_clock_skew"}, []string{`"5 minutes"`}, ""},
		{"bad publish_timeout", minimalWith("publish_timeout: fast\n"), []string{"publish_timeout"}, []string{`"fast"`}, ""},
		{"duration without unit", minimalWith("streams: {raw_duplicate_window: 120}\n"),
			[]string{"streams.raw_duplicate_window"}, []string{`"120"`}, ""},
		{"days are not a Go unit", minimalWith("dedupe_ttl: 7d\n"), []string{"dedupe_ttl"}, nil, ""},
		{"bad raw_max_age", minimalWith("streams: {raw_max_age: forever}\n"), []string{"streams.raw_max_age"}, nil, ""},
		{"bad shutdown_timeout", minimalWith("shutdown_timeout: 1x\n"), []string{"shutdown_timeout"}, nil, ""},
		{"negative publish_timeout", minimalWith("publish_timeout: -5s\n"), []string{"publish_timeout"}, []string{"positive"}, ""},
		{"negative max_clock_skew", lms(`{leadDeliveryKey: leadDeliveryKey.pub.pem}`) + "    max_clock_skew: -1m\n",
			[]string{"sources[0].max_clock_skew"}, []string{"positive"}, ""},
		{"zero duplicate window", minimalWith("streams: {raw_duplicate_window: 0s}\n"),
			[]string{"streams.raw_duplicate_window"}, []string{"positive"}, ""},
		{"duration as a list", minimalWith("publish_timeout: [5s]\n"), []string{"publish_timeout"}, nil, ""},
		{"duration as a map", minimalWith("dedupe_ttl: {hours: 1}\n"), []string{"dedupe_ttl"}, nil, ""},

		// HMAC providers.
		{"marktplaats-api without secrets", withSource(ProviderMarktplaatsAPI, ""),
			[]string{"sources[0].secrets"}, []string{"at least one secret"}, ""},
		{"offerte-adviseur without secrets", withSource(ProviderOfferteAdviseur, "    secrets: []\n"),
			[]string{"sources[0].secrets"}, []string{"at least one secret"}, ""},
		{"empty second secret", withSource(ProviderOfferteAdviseur, "    secrets: [s3cr3t-kept, \"\"]\n"),
			[]string{"sources[0].secrets[1]"}, []string{"empty secret"}, "s3cr3t-kept"},
		{"token on an HMAC source", withSource(ProviderMarktplaatsAPI, "    secrets: [x]\n    token: lb_0123456789ab\n"),
			[]string{"sources[0].token"}, []string{"not used"}, "lb_0123456789ab"},
		{"keys on an HMAC source", withSource(ProviderOfferteAdviseur, "    secrets: [x]\n    public_keys: {k: leadDeliveryKey.pub.pem}\n"),
			[]string{"sources[0].public_keys"}, []string{"not used"}, ""},

		// Lokalebasen tokens.
		{"lokalebasen without token", lbWith(""), []string{"sources[0].token"}, []string{"required"}, ""},
		{"token too short", lbWith("    token: short-tok\n"), []string{"sources[0].token"}, []string{"at least 12"}, "short-tok"},
		{"token with slash", lbWith("    token: abcdef/ghijklmn\n"), []string{"sources[0].token"}, nil, "abcdef/ghijklmn"},
		{"token with space", lbWith("    token: abcdef ghijklmn\n"), []string{"sources[0].token"}, nil, "abcdef ghijklmn"},
		{"rotated token too short", lbWith("    token: lb_0123456789ab\n    tokens: [lb_0123456789cd, tiny-token]\n"),
			[]string{"sources[0].tokens[1]"}, []string{"at least 12"}, "tiny-token"},
		{"only rotated tokens, one short", lbWith("    tokens: [tiny-token]\n"),
			[]string{"sources[0].tokens[0]"}, nil, "tiny-token"},
		{"secrets on a token source", lbWith("    token: lb_0123456789ab\n    secrets: [x]\n"),
			[]string{"sources[0].secrets"}, []string{"not used"}, ""},
		{"bad CIDR", lbWith("    token: lb_0123456789ab\n    allow_cidrs: [10.0.0.0/33]\n"),
			[]string{"sources[0].allow_cidrs[0]"}, []string{`"10.0.0.0/33"`}, ""},
		{"IP without prefix length", lbWith("    token: lb_0123456789ab\n    allow_cidrs: [10.0.0.0/8, 192.0.2.1]\n"),
			[]string{"sources[0].allow_cidrs[1]"}, nil, ""},
		{"host name as CIDR", lbWith("    token: lb_0123456789ab\n    allow_cidrs: [example.com/24]\n"),
			[]string{"sources[0].allow_cidrs[0]"}, nil, ""},
		{"public_path not absolute", withSource(ProviderMarktplaatsAPI, "    secrets: [x]\n    public_path: hooks/s\n"),
			[]string{"sources[0].public_path"}, nil, ""},
		{"public_path too long", withSource(ProviderMarktplaatsAPI, "    secrets: [x]\n    public_path: /"+strings.Repeat("p", 1024)+"\n"),
			[]string{"sources[0].public_path"}, []string{"at most 1024 bytes"}, ""},
		{"key id too long", lms(`{` + strings.Repeat("k", 129) + `: leadDeliveryKey.pub.pem}`),
			[]string{"sources[0].public_keys"}, []string{"1 to 128 printable"}, ""},
		{"key id with a space", lms(`{"lead key": leadDeliveryKey.pub.pem}`),
			[]string{"sources[0].public_keys"}, []string{`"lead key"`}, ""},

		// Adapters.
		{"adapter unknown type", minimalWith("adapters: [{name: crm, type: kafka, url: 'http://x', secret: s}]\n"),
			[]string{"adapters[0].type"}, []string{`"kafka"`}, ""},
		{"adapter without type", minimalWith("adapters: [{name: crm, url: 'http://x', secret: s}]\n"),
			[]string{"adapters[0].type"}, nil, ""},
		{"adapter url scheme", minimalWith("adapters: [{name: crm, type: webhook, url: 'ftp://x/events', secret: s}]\n"),
			[]string{"adapters[0].url"}, nil, ""},
		{"adapter url missing", minimalWith("adapters: [{name: crm, type: webhook, secret: s}]\n"),
			[]string{"adapters[0].url"}, nil, ""},
		{"adapter url without host", minimalWith("adapters: [{name: crm, type: webhook, url: 'http://', secret: s}]\n"),
			[]string{"adapters[0].url"}, nil, ""},
		{"adapter url with space", minimalWith("adapters: [{name: crm, type: webhook, url: 'http://crm local/x', secret: s}]\n"),
			[]string{"adapters[0].url"}, nil, ""},
		{"adapter without secret", minimalWith("adapters: [{name: ok, type: webhook, url: 'https://x'}, {name: crm, type: webhook, url: 'https://x'}]\n"),
			[]string{"adapters[0].secret", "adapters[1].secret"}, nil, ""},
		{"adapter bad name", minimalWith("adapters: [{name: CRM.main, type: webhook, url: 'https://x', secret: s}]\n"),
			[]string{"adapters[0].name"}, nil, ""},
		{"duplicate adapter name", minimalWith("adapters: [{name: crm, type: webhook, url: 'https://x', secret: s}, {name: crm, type: webhook, url: 'https://y', secret: s}]\n"),
			[]string{"adapters[1].name"}, []string{"adapters[0]"}, ""},

		// The rest of the top level.
		{"negative max_body_bytes", minimalWith("max_body_bytes: -1\n"), []string{"max_body_bytes"}, nil, ""},
		{"negative max_in_flight", minimalWith("max_in_flight: -1\n"), []string{"max_in_flight"}, nil, ""},
		{"max_park within the default ack waits", minimalWith("dispatcher: {max_park: 20s}\n"),
			[]string{"dispatcher.max_park"}, []string{"normalizer.ack_wait (30s)", "dispatcher.ack_wait (30s)", "= 1m0s", "got 20s"}, ""},
		{"max_park equal to the ack waits", minimalWith("normalizer: {ack_wait: 20s}\ndispatcher: {max_park: 30s, ack_wait: 10s}\n"),
			[]string{"dispatcher.max_park"}, []string{"normalizer.ack_wait (20s)", "dispatcher.ack_wait (10s)", "got 30s"}, ""},
		{"more subscribers than messages in flight", minimalWith("normalizer: {max_ack_pending: 64, subscribers: 65}\n"),
			[]string{"normalizer.subscribers"}, []string{"normalizer.max_ack_pending (64)", "got 65"}, ""},
		{"more subscribers than the default in flight", minimalWith("normalizer: {subscribers: 1025}\n"),
			[]string{"normalizer.subscribers"}, []string{"normalizer.max_ack_pending (1024)", "got 1025"}, ""},
		{"negative normalizer max_ack_pending", minimalWith("normalizer: {max_ack_pending: -1}\n"),
			[]string{"normalizer.max_ack_pending"}, []string{"positive"}, ""},
		{"tracing protocol", minimalWith("tracing: {otlp_endpoint: 'collector:4317', protocol: thrift}\n"),
			[]string{"tracing.protocol"}, []string{"grpc or http", `"thrift"`}, ""},
		{"tracing sample ratio", minimalWith("tracing: {sample_ratio: 2}\n"), []string{"tracing.sample_ratio"}, nil, ""},
		{"too many partitions", minimalWith("dispatcher: {partitions: 2000}\n"),
			[]string{"dispatcher.partitions"}, []string{"1 and 1024", "2000"}, ""},
		{"negative partitions", minimalWith("dispatcher: {partitions: -1}\n"), []string{"dispatcher.partitions"}, nil, ""},
		{"member not a consumer name", minimalWith("dispatcher: {member: pod.1}\n"),
			[]string{"dispatcher.member"}, []string{"JetStream consumer", `"pod.1"`}, ""},
		{"reading budget below one body", minimalWith("max_body_bytes: 4096\nmax_reading_bytes: 4095\n"),
			[]string{"max_reading_bytes"}, []string{"max_body_bytes (4096)", "4095"}, ""},
		{"negative max_reading_bytes", minimalWith("max_reading_bytes: -1\n"), []string{"max_reading_bytes"}, nil, ""},
		{"bad body_read_timeout", minimalWith("body_read_timeout: 0s\n"), []string{"body_read_timeout"}, []string{"positive"}, ""},
		{"too many replicas", minimalWith("nats: {replicas: 7}\n"), []string{"nats.replicas"}, nil, ""},
		{"embedded listen needs an IP", minimalWith("nats: {listen: 'localhost:4222'}\n"), []string{"nats.listen"}, nil, ""},
		{"log format", minimalWith("log: {format: text}\n"), []string{"log.format"}, nil, ""},
		{"log level", minimalWith("log: {level: trace}\n"), []string{"log.level"}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml)
			if err == nil {
				t.Fatalf("no error for\n%s", tc.yaml)
			}
			lines := strings.Split(err.Error(), "\n")
			for _, line := range lines {
				if !fieldLine.MatchString(line) {
					t.Errorf("error line %q does not start with a field", line)
				}
			}
			for _, f := range tc.fields {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, f+": ") }) {
					t.Errorf("no error about %s in:\n%s", f, err)
				}
			}
			for _, c := range tc.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error does not contain %q:\n%s", c, err)
				}
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error echoes the credential %q:\n%s", tc.secret, err)
			}
		})
	}
}

// TestSubjectTokens: source names, tenants and adapter names become NATS
// subject tokens and URL segments, so nothing that could change a subject's
// shape gets through.
func TestSubjectTokens(t *testing.T) {
	bad := []string{
		"Demo", "DEMO", "demo.dealer", "demo dealer", "*", ">", "demo*", "demo>", "a.>",
		"", "-demo", "_demo", "demo/x", "demo\tx", "démo", "demo$", strings.Repeat("a", 65),
	}
	good := []string{"a", "0", "demo-dealer", "demo_dealer", "9lives", "a-", strings.Repeat("a", 64)}
	snippet := func(name, tenant, adapter string) string {
		return `
sources:
  - {name: "` + name + `", provider: marktplaats-api, tenant: "` + tenant + `", secrets: [x]}
adapters:
  - {name: "` + adapter + `", type: webhook, url: "https://crm.example/events", secret: s}
`
	}
	for _, v := range bad {
		for _, field := range []string{"sources[0].name", "sources[0].tenant", "adapters[0].name"} {
			name, tenant, adapter := "ok", "ok", "ok"
			switch field {
			case "sources[0].name":
				name = v
			case "sources[0].tenant":
				tenant = v
			default:
				adapter = v
			}
			_, err := parse(t, snippet(name, tenant, adapter))
			if err == nil || !strings.Contains(err.Error(), field+": ") {
				t.Errorf("%s %q: error %v, want one naming %s", field, v, err, field)
			}
		}
	}
	for _, v := range good {
		cfg, err := parse(t, snippet(v, v, v))
		if err != nil {
			t.Errorf("%q rejected: %v", v, err)
			continue
		}
		if cfg.Sources[0].Name != v || cfg.Sources[0].Tenant != v || cfg.Adapters[0].Name != v {
			t.Errorf("%q not kept: %+v", v, cfg.Sources[0])
		}
	}
}

// TestYAMLErrors: problems the YAML decoder finds before validation. Strict
// decoding names an unknown field; a type error gives the line.
func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		contains []string
	}{
		{"unknown top-level field", minimalWith("listne: \":8080\"\n"), []string{"listne", "not found"}},
		{"unknown source field", minimal + "    secret: x\n", []string{"field secret not found", "line 7"}},
		{"unknown nats field", minimalWith("nats: {urls: [nats://x]}\n"), []string{"field urls not found"}},
		{"unknown adapter field", minimalWith("adapters: [{name: crm, type: webhook, url: 'https://x', secret: s, retries: 3}]\n"), []string{"field retries not found"}},
		{"wrong type", minimalWith("max_body_bytes: lots\n"), []string{"line 1", "lots"}},
		{"sources not a list", "sources: {name: x}\n", []string{"line 1"}},
		{"syntax", "sources: [\n", []string{"parsing yaml"}},
		{"tabs", "sources:\n\t- name: x\n", []string{"parsing yaml"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml)
			if err == nil {
				t.Fatalf("no error for\n%s", tc.yaml)
			}
			for _, c := range tc.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error does not contain %q:\n%s", c, err)
				}
			}
		})
	}
}

// TestAllErrorsReported: an operator fixes a config in one go, so every
// problem is reported, not just the first.
func TestAllErrorsReported(t *testing.T) {
	_, err := parse(t, `
publish_timeout: soon
log: {format: xml}
sources:
  - name: Bad.Name
    provider: marktplaats-lms
    tenant: demo
    public_keys: {leadDeliveryKey: nope.pem}
  - name: mp-api
    provider: marktplaats-api
    tenant: demo
  - name: lb
    provider: lokalebasen
    tenant: "*"
    token: short
    allow_cidrs: [nope]
  - name: mp-api
    provider: nope
    tenant: demo
adapters:
  - {name: crm, type: webhook, url: "ftp://x"}
`)
	if err == nil {
		t.Fatal("no error")
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not a joined error: %v", err, err)
	}
	want := []string{
		"publish_timeout", "log.format",
		"sources[0].name", "sources[0].public_keys.leadDeliveryKey",
		"sources[1].secrets",
		"sources[2].tenant", "sources[2].token", "sources[2].allow_cidrs[0]",
		"sources[3].name", "sources[3].provider",
		"adapters[0].url", "adapters[0].secret",
	}
	var got []string
	for _, e := range joined.Unwrap() {
		field, _, _ := strings.Cut(e.Error(), ": ")
		got = append(got, field)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("no error about %s; got errors about %q", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(got), len(want), err)
	}
}

// TestEnvMissingVariable: a missing variable is reported, by name, before
// the YAML is decoded (here it sits in a field the decoder would reject).
func TestEnvMissingVariable(t *testing.T) {
	unsetenv(t, "LS_TEST_MISSING")
	_, err := parse(t, minimal+"    token: ${LS_TEST_MISSING}\n")
	if err == nil || !strings.Contains(err.Error(), "LS_TEST_MISSING") {
		t.Errorf("error %v, want one naming LS_TEST_MISSING", err)
	}
}

// TestEnvInComments: a variable named only in a comment need not be set,
// and every missing variable is named at once.
func TestEnvInComments(t *testing.T) {
	data := []byte("# secret: ${LS_NEVER_SET_IN_COMMENT}\nlisten: \":8080\" # was ${LS_NEVER_SET_EITHER}\n" +
		"sources:\n  - {name: a, provider: marktplaats-api, tenant: t, secrets: [\"${LS_MISSING_ONE}\", \"${LS_MISSING_TWO}\", \"x#${LS_MISSING_ONE}\"]}\n")
	_, err := Parse(data, t.TempDir())
	if err == nil {
		t.Fatal("missing variables accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "LS_MISSING_ONE, LS_MISSING_TWO") || strings.Contains(msg, "IN_COMMENT") || strings.Contains(msg, "EITHER") {
		t.Fatalf("error %q: want both missing variables and none from comments", msg)
	}
	t.Setenv("LS_MISSING_ONE", "s1")
	t.Setenv("LS_MISSING_TWO", "s2")
	cfg, err := Parse(data, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sources[0].Secrets; len(got) != 3 || got[0] != "s1" || got[1] != "s2" || got[2] != "x#s1" {
		t.Fatalf("secrets %q", got)
	}
}
