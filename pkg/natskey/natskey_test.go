package natskey

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestID(t *testing.T) {
	long := strings.Repeat("c", 3000)
	tests := []struct {
		id   string
		kept bool
	}{
		{"c2b7e4d0-1a9f-4c3e-8b5d-7f60a1e2c394", true},
		{"12345", true},
		{"sha256:0a0b3f9b480a23e5a194d68aefefc49e365e602eda841faafc003eb9252e1a58", true},
		{"with space and café", true},
		{"a.b*c>d", true}, // keys and subjects are escaped where they are built
		{strings.Repeat("x", MaxIDLen), true},
		{strings.Repeat("x", MaxIDLen+1), false},
		{long, false},
		{"tab\there", false},
		{"nul\x00", false},
		{"bad\xffutf8", false},
		{"\u0085next-line", false}, // a C1 control character
	}
	for _, tt := range tests {
		got := ID(tt.id)
		if kept := got == tt.id; kept != tt.kept {
			t.Errorf("ID(%.40q) = %.40q, kept %v, want %v", tt.id, got, kept, tt.kept)
		}
		if !tt.kept && (got != Hash(tt.id) || len(got) != hashLen || !strings.HasPrefix(got, hashPrefix)) {
			t.Errorf("ID(%.40q) = %q, want its hash", tt.id, got)
		}
	}
	if ID(long) == ID(long+"d") {
		t.Error("two long ids hash alike")
	}
}

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"crm.bXAtbGVhZHMvY29udmVyc2F0aW9uL2M", true},
		{"offerte.lead.12345", true},
		{"lokalebasen.enquiry.sha256=3A0a0b", true},
		{"a/b=c_d-e", true},
		{strings.Repeat("k", MaxKeyLen), true},
		{strings.Repeat("k", MaxKeyLen+1), false},
		{strings.Repeat("k", 3000), false},
		{"", false},
		{".a", false},
		{"a.", false},
		{"a..b", false},
		{"a b", false},
		{"a*", false},
		{"a>", false},
		{"a:b", false},
		{"café", false},
	}
	for _, tt := range tests {
		err := CheckKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("CheckKey(%.40q) = %v, want ok %v", tt.key, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("CheckKey(%.40q) = %v, not ErrInvalidKey", tt.key, err)
		}
		if err != nil && len(tt.key) > 8 && strings.Contains(err.Error(), tt.key) {
			t.Errorf("CheckKey's error quotes the key: %v", err)
		}
		if tt.ok && !natsKeyValid(tt.key) {
			t.Errorf("CheckKey accepts %q, which nats.go refuses", tt.key)
		}
	}
}

func TestCheckSubject(t *testing.T) {
	tests := []struct {
		subject string
		ok      bool
	}{
		{"events.lead.created.demo-dealer", true},
		{"dlq.normalize.chat", true},
		{"events.lead.created.", false},
		{"events..created.t", false},
		{"events.*.created.t", false},
		{"events.>", false},
		{"events.lead.created.a b", false},
		{"events.lead.created.a\tb", false},
		{"", false},
		{"events." + strings.Repeat("t", maxSubjectLen), false},
	}
	for _, tt := range tests {
		err := CheckSubject(tt.subject)
		if (err == nil) != tt.ok {
			t.Errorf("CheckSubject(%.40q) = %v, want ok %v", tt.subject, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidSubject) {
			t.Errorf("CheckSubject(%.40q) = %v, not ErrInvalidSubject", tt.subject, err)
		}
	}
}

// natsKeyValid is nats.go's KV key rule (jetstream/kv.go keyValid), which
// has no length bound.
func natsKeyValid(k string) bool {
	return k != "" && k[0] != '.' && k[len(k)-1] != '.' && !strings.Contains(k, "..") &&
		regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`).MatchString(k)
}

// FuzzCheckKey: CheckKey never accepts what nats.go refuses or what exceeds
// MaxKeyLen, and ID always yields an id of at most MaxIDLen bytes that is
// the input itself or its hash.
func FuzzCheckKey(f *testing.F) {
	for _, s := range []string{"a.b", "", ".", "a..b", strings.Repeat("x", 2000), "sha256:ab", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckKey(s) == nil && (!natsKeyValid(s) || len(s) > MaxKeyLen) {
			t.Fatalf("CheckKey accepts %q", s)
		}
		id := ID(s)
		if len(id) > MaxIDLen || (id != s && id != Hash(s)) {
			t.Fatalf("ID(%q) = %q", s, id)
		}
	})
}
