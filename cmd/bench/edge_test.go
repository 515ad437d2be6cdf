package main

import (
	"encoding/json"
	"testing"

	"github.com/leadstream/leadstream/pkg/config"
)

// TestSpreadAggregates: each round gets aggregates of its own, in every
// field that names them, numbers stay as written, and what has no causal
// rules is left alone.
func TestSpreadAggregates(t *testing.T) {
	tests := []struct {
		name, provider, body, want string
	}{
		{"lms conversation", config.ProviderMarktplaatsLMS, `{"conversationId":"c1","x":12345}`, `{"conversationId":"c1-r7","x":12345}`},
		{"api advertisement", config.ProviderMarktplaatsAPI, `{"eventData":{"advertisementItemId":"m1"}}`, `{"eventData":{"advertisementItemId":"m1-r7"}}`},
		{"offerte lead and invoice", config.ProviderOfferteAdviseur, `{"payload":{"id":5,"lead_id":5,"lead_ids":[5,6]}}`, `{"payload":{"id":"5-r7","lead_id":"5-r7","lead_ids":["5-r7","6-r7"]}}`},
		{"offerte without payload", config.ProviderOfferteAdviseur, `{"id":5}`, `{"id":5}`},
		{"no causal rules", config.ProviderLokalebasen, `{"id":5}`, `{"id":5}`},
		{"not JSON", config.ProviderMarktplaatsLMS, `nope`, `nope`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := spreadAggregates(tt.provider, []byte(tt.body), "r7")
			if !jsonEqual(got, []byte(tt.want)) {
				t.Errorf("spreadAggregates = %s, want %s", got, tt.want)
			}
		})
	}
}

// jsonEqual compares JSON by value, other bytes as they are.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
