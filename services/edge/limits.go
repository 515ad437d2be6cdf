package edge

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/leadstream/leadstream/pkg/jsbatch"
)

// Bounds on what a request puts into its RAW envelope besides the body. With
// them the envelope's headers have a known upper size, so the edge can tell
// at start whether a body of max_body_bytes fits the server's max_payload.
const (
	// maxRequestURI bounds the request target (414 above): cavage signs it
	// and RAW keeps it. A provider's webhook URL is far shorter.
	maxRequestURI = 1 << 10
	// maxContentType bounds the Content-Type kept; a longer one is kept as
	// its media type alone, or not at all.
	maxContentType = 256
)

// maxEnvelopeHeaderBytes bounds the NATS headers of a RAW message, the batch
// headers (jsbatch.BatchHeaderBytes) included. Its parts, each bounded where the request is taken in:
// source, tenant (64 each, config) and provider; the Nats-Msg-Id (source and
// a provider event id of at most 128, extract); event id, kind, time, method;
// the path (maxRequestURI, or a public_path of at most as much, config); the
// key id (128, config); the content type (maxContentType); and the signature
// headers of the source's own verifier, which only a verified request brings:
// a cavage signature (verify.MaxSignatureHeader) and digest
// (verify.MaxDigestHeader), or one 64-digit MAC. That sums to under 12 KiB; a
// test builds the largest envelope and checks it stays within this.
const maxEnvelopeHeaderBytes = 16 << 10

// msgSize is the size of m as the server counts it against max_payload:
// the encoded headers and the body.
func msgSize(m *nats.Msg) int64 { return int64(jsbatch.PayloadSize(m)) }

// clipContentType keeps a content type within maxContentType: whole, or its
// media type, or nothing. Only the normalizer's logs and a replay read it.
func clipContentType(v string) string {
	if len(v) <= maxContentType {
		return v
	}
	if mt, _, _ := strings.Cut(v, ";"); len(strings.TrimSpace(mt)) <= maxContentType {
		return strings.TrimSpace(mt)
	}
	return ""
}

// checkMaxPayload refuses limits the NATS server cannot honour: a body of
// maxBody bytes with its envelope must fit in one message, or such webhooks
// could only ever be answered with an error the provider retries forever.
func checkMaxPayload(maxBody, maxPayload int64) error {
	if need := maxBody + maxEnvelopeHeaderBytes; need > maxPayload {
		fit := maxPayload - maxEnvelopeHeaderBytes
		return fmt.Errorf("edge: max_body_bytes (%d) plus up to %d bytes of RAW envelope headers does not fit the NATS server's max_payload (%d): "+
			"set max_body_bytes to at most %d, or raise max_payload in the server's config to at least %d (deploy/nats/nats.conf sets 8MB)",
			maxBody, maxEnvelopeHeaderBytes, maxPayload, max(fit, 0), need)
	}
	return nil
}
