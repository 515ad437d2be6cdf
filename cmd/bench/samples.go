package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/services/edge/extract"
	"github.com/leadstream/leadstream/services/edge/simulate"
	nbench "github.com/leadstream/leadstream/services/normalizer/bench"
)

// sample is a simulator payload with what the edge learns about it.
type sample struct {
	simulate.Sample
	src *config.Source
	// keyID is the credential the edge's verifier reports for it.
	keyID string
	kind  string
	// sig and path are the signature headers and request target of the
	// sample as sent, which the edge copies into RAW.
	sig  http.Header
	path string
}

// loadSamples returns every simulator payload that the config has a source
// for and that the normalizer maps. The one of kind "unknown" (the
// Marktplaats docs' placeholder) only ever goes to DLQ: it would measure
// dead-lettering, and never arrive in EVENTS.
func loadSamples(ctx context.Context, signer *simulate.Signer) ([]sample, error) {
	var out []sample
	for _, smp := range simulate.Samples() {
		src, ok := signer.SourceFor(smp.Provider)
		if !ok {
			continue
		}
		keyID := verifiedKeyID(smp)
		kind := extract.Extract(smp.Provider, keyID, smp.Body).Kind
		if kind == envelope.KindUnknown {
			continue
		}
		req, err := signer.Request(ctx, "http://127.0.0.1", src, smp.Name, smp.Body)
		if err != nil {
			return nil, fmt.Errorf("signing sample %s: %w", smp.Name, err)
		}
		sig := http.Header{}
		for _, k := range envelope.SignatureHeaders {
			if v := req.Header.Get(k); v != "" {
				sig.Set(k, v)
			}
		}
		out = append(out, sample{Sample: smp, src: src, keyID: keyID, kind: kind, sig: sig, path: req.URL.RequestURI()})
	}
	if len(out) == 0 {
		return nil, errors.New("the config has no source for any sample the normalizer maps")
	}
	return out, nil
}

// verifiedKeyID is the key id the edge's verifier reports for a sample the
// simulator signed: the cavage keyId it picks by name, else the first
// secret or token.
func verifiedKeyID(smp simulate.Sample) string {
	switch smp.Provider {
	case config.ProviderMarktplaatsLMS:
		if strings.Contains(smp.Name, "chat") {
			return config.KeyIDChatMessagePush
		}
		return config.KeyIDLeadDelivery
	case config.ProviderLokalebasen:
		return "token#0"
	default:
		return "secret#0"
	}
}

// normalizerSamples makes RAW envelopes exactly as the edge stores them,
// except that the signature headers are those of the unchanged sample: the
// normalizer carries them without verifying, so they only need their real
// size, and RSA-signing thousands of bodies would take longer than
// normalizing them.
func normalizerSamples(samples []sample) []nbench.Sample {
	out := make([]nbench.Sample, 0, len(samples))
	for _, s := range samples {
		out = append(out, nbench.Sample{Name: s.Name, Kind: s.kind, Raw: func(suffix string) *envelope.Raw {
			body := simulate.Unique(s.Provider, s.Body, suffix)
			ev := extract.Extract(s.Provider, s.keyID, body)
			return &envelope.Raw{
				Source:          s.src.Name,
				Provider:        s.Provider,
				Tenant:          s.src.Tenant,
				Kind:            ev.Kind,
				EventID:         eventid.New(s.src.Name, ev.ProviderEventID),
				ProviderEventID: ev.ProviderEventID,
				ReceivedAt:      time.Now().UTC(),
				Method:          http.MethodPost,
				Path:            s.path,
				KeyID:           s.keyID,
				ContentType:     "application/json",
				Signature:       s.sig,
				Body:            body,
			}
		}})
	}
	return out
}

// dispatchSamples splits the samples into the dispatcher's end-to-end load
// and those left out. Left out is the transaction change: the sample goes
// from PENDING to COMPLETED, and the change to PENDING never comes, so the
// dispatcher parks every one until max_park and then delivers it as an
// orphan - a latency of max_park by design, not the pipeline's. (The doc
// example, which the normalizer dead-letters, is not among the samples at
// all: see loadSamples.)
func dispatchSamples(samples []sample) (load, left []sample) {
	for _, s := range samples {
		if s.kind == envelope.KindTransaction {
			left = append(left, s)
			continue
		}
		load = append(load, s)
	}
	return load, left
}

// describeDispatchLoad describes the dispatcher's end-to-end load for its
// report.
func describeDispatchLoad(load, left []sample, maxPark time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d sample payloads round robin, each send a provider event of its own; each round has a conversation", len(load))
	b.WriteString("\n    (Marktplaats LMS), advertisement (Marktplaats API), lead and invoice (Offerte Adviseur) of its own, so the causal rules apply per round")
	chat := slices.IndexFunc(load, func(s sample) bool { return s.kind == envelope.KindChat })
	lead := slices.IndexFunc(load, func(s sample) bool {
		return s.Provider == config.ProviderMarktplaatsLMS && s.kind == envelope.KindLead
	})
	if chat >= 0 && lead > chat {
		b.WriteString(":\n    the chat is sent before its lead and parks until the lead is delivered")
	}
	b.WriteString(".\n    Left out:")
	for _, s := range left {
		fmt.Fprintf(&b, " %s, which has no predecessor: it would park until\n    max_park (%s) and go as an orphan; and", s.Name, maxPark)
	}
	b.WriteString(" the Marktplaats doc example, which the normalizer dead-letters")
	return b.String()
}
