package verify

import (
	"errors"
	"fmt"
	"testing"
)

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{ErrMissingSignature, "missing_signature"},
		{ErrMalformed, "malformed"},
		{ErrDigestMismatch, "digest_mismatch"},
		{ErrUnknownKey, "unknown_key"},
		{ErrBadSignature, "bad_signature"},
		{ErrClockSkew, "clock_skew"},
		{ErrBadToken, "bad_token"},
		{ErrForbiddenIP, "forbidden_ip"},
		{fmt.Errorf("%w: details", ErrClockSkew), "clock_skew"},
		{fmt.Errorf("source mp-leads: %w", fmt.Errorf("%w: x", ErrUnknownKey)), "unknown_key"},
		{errors.New("verify: bad signature"), "unknown"}, // same text, not the sentinel
		{nil, "unknown"},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestSentinelsDistinct: the HTTP layer and the metrics rely on each sentinel having its own label.
func TestSentinelsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range reasons {
		if seen[r.label] || Reason(r.err) != r.label {
			t.Errorf("label %q is not unique to %v", r.label, r.err)
		}
		seen[r.label] = true
	}
}
