package leads

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/leadstream/leadstream/pkg/natskey"
)

func TestKey(t *testing.T) {
	tests := []struct{ aggregate, key string }{
		{"offerte/lead/12345", "offerte.lead.12345"},
		{"mp-leads/conversation/c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394", "mp-leads.conversation.c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394"},
		{"mp-api/advertisement/m2034567890", "mp-api.advertisement.m2034567890"},
		{"lokalebasen/enquiry/sha256:0a0b", "lokalebasen.enquiry.sha256=3A0a0b"},
		{"a/b/c.d", "a.b.c=2Ed"},         // "." inside an id is not a separator
		{"a/b/c=2Ed", "a.b.c=3D2Ed"},     // and "=" is escaped, so these two differ
		{"a/b/x y*>", "a.b.x=20y=2A=3E"}, // subject wildcards and spaces never reach the key
		{"a/b/c/d", "a.b.c.d"},
		{"a//b", "a.=.b"},
		{"/a/", "=.a.="},
		{"", "="},
		{"a/b/café", "a.b.caf=C3=A9"},
	}
	for _, tt := range tests {
		if got := Key(tt.aggregate); got != tt.key {
			t.Errorf("Key(%q) = %q, want %q", tt.aggregate, got, tt.key)
		}
		if !validKey(tt.key) {
			t.Errorf("Key(%q) = %q is not a valid KV key", tt.aggregate, tt.key)
		}
	}
}

// validKey is nats.go's KV key rule (jetstream/kv.go keyValid).
func validKey(k string) bool {
	return k != "" && k[0] != '.' && k[len(k)-1] != '.' && !strings.Contains(k, "..") &&
		regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`).MatchString(k)
}

// decodeKey inverts Key; it exists to prove Key injective.
func decodeKey(t *testing.T, k string) string {
	t.Helper()
	segs := strings.Split(k, ".")
	for i, seg := range segs {
		if seg == "=" {
			segs[i] = ""
			continue
		}
		var b strings.Builder
		for j := 0; j < len(seg); j++ {
			if seg[j] != '=' {
				b.WriteByte(seg[j])
				continue
			}
			if j+3 > len(seg) {
				t.Fatalf("key %q: truncated escape", k)
			}
			n, err := strconv.ParseUint(seg[j+1:j+3], 16, 8)
			if err != nil {
				t.Fatalf("key %q: bad escape: %v", k, err)
			}
			b.WriteByte(byte(n))
			j += 2
		}
		segs[i] = b.String()
	}
	return strings.Join(segs, "/")
}

func FuzzKey(f *testing.F) {
	for _, s := range []string{"offerte/lead/12345", "a//b", "", "/", "x.y=z", "sha256:ab", "\xff/\x00"} {
		f.Add(s)
	}
	f.Add(strings.Repeat("a/", 600))
	f.Add("mp-leads/conversation/" + strings.Repeat("=", 400))
	f.Fuzz(func(t *testing.T, aggregate string) {
		k := Key(aggregate)
		if !validKey(k) || natskey.CheckKey(k) != nil {
			t.Fatalf("Key(%q) = %q is not a valid KV key: %v", aggregate, k, natskey.CheckKey(k))
		}
		if len(encode(aggregate, false)) > natskey.MaxKeyLen {
			return // hashed: checked by TestKeyBounded
		}
		if back := decodeKey(t, k); back != aggregate {
			t.Fatalf("Key(%q) = %q decodes to %q", aggregate, k, back)
		}
	})
}

// TestKeyBounded: an aggregate whose key would exceed natskey.MaxKeyLen is
// keyed by the hashes of its long segments, or else by its own hash; keys
// within the bound do not change.
func TestKeyBounded(t *testing.T) {
	long := strings.Repeat("c", 3000)
	atBound := "a/b/" + strings.Repeat("x", natskey.MaxKeyLen-4)
	tests := []struct {
		name, aggregate, key string
	}{
		{"at the bound: unchanged", atBound, "a.b." + strings.Repeat("x", natskey.MaxKeyLen-4)},
		{"a long id is hashed", "mp-leads/conversation/" + long, "mp-leads.conversation." + strings.ReplaceAll(natskey.Hash(long), ":", "=3A")},
		{"the same as the normalizer's aggregate for it", "mp-leads/conversation/" + natskey.Hash(long), "mp-leads.conversation." + strings.ReplaceAll(natskey.Hash(long), ":", "=3A")},
		{"escapes count: 400 dots", "a/b/" + strings.Repeat(".", 400), "a.b." + strings.ReplaceAll(natskey.Hash(strings.Repeat(".", 400)), ":", "=3A")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Key(tt.aggregate); got != tt.key {
				t.Errorf("Key = %.80q, want %.80q", got, tt.key)
			}
		})
	}
	// Many short segments: nothing to hash but the whole.
	many := strings.Repeat("s/", 700)
	k := Key(many)
	if !strings.HasPrefix(k, "=h") || len(k) != 66 || natskey.CheckKey(k) != nil {
		t.Errorf("Key(700 segments) = %q", k)
	}
	if Key(many) == Key(many+"t") {
		t.Error("two long aggregates share a key")
	}
}
