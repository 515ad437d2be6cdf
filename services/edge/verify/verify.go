// Package verify decides whether an incoming provider webhook is authentic, before the edge
// stores it and answers 2xx.
//
// Each provider proves authenticity its own way (DESIGN.md, "Providers and authenticity"):
// Marktplaats LMS signs with cavage HTTP signatures over RSA (Cavage), Marktplaats API and Offerte
// Adviseur send an HMAC of the raw body (HMAC), and Lokalebasen sends nothing, so its source is
// protected by a secret token in the URL (Token). All of them implement Verifier and return errors
// that wrap exactly one sentinel, so the HTTP layer maps them to a status in one place and Reason
// gives them a bounded metric label.
//
// The verifiers are immutable once built and therefore safe for concurrent use. Their errors never
// contain secrets, tokens, MACs or body bytes, so they may be logged as they are.
package verify

import (
	"errors"
	"net/http"
	"net/netip"
)

// Request is what a verifier sees of one HTTP request. It is a plain struct rather than an
// *http.Request so that a replay of a stored RAW envelope can be re-verified without a server.
type Request struct {
	Method   string      // as received, e.g. "POST"
	Path     string      // request path as received (or the source's public path; a token source's route, without the token) - used for (request-target)
	Header   http.Header // canonical keys, as net/http delivers them
	Body     []byte
	RemoteIP netip.Addr // may be invalid (zero) when unknown
	Token    string     // the last path segment /hooks/{source}/{token}, "" if absent
}

// Result says which credential matched, so that the stored envelope records the key id and a
// rotation can be finished once the old credential is no longer seen.
type Result struct {
	KeyID string // cavage keyId ("leadDeliveryKey"), or "secret#<index>" for HMAC, or "token#<index>" for tokens
}

// Verifier checks one request's authenticity. Verify returns a nil error only for an authentic
// request; otherwise the error wraps one of the sentinel errors of this package (ErrMissingSignature,
// ErrMalformed, ErrDigestMismatch, ErrUnknownKey, ErrBadSignature, ErrClockSkew, ErrBadToken,
// ErrForbiddenIP).
//
// Precheck looks only at what arrives before the body (method, path, headers, remote address,
// token) and ignores Request.Body, so the edge can refuse a request that no body could make
// authentic before it spends time and memory reading one. It returns nil when Verify may still
// accept the request. What Precheck refuses, Verify refuses too, whatever the body, with an error
// of the same Reason; so an error of Precheck may be answered exactly as one of Verify.
type Verifier interface {
	Precheck(r *Request) error
	Verify(r *Request) (Result, error)
}

var (
	// ErrMissingSignature means the request carries no credential at all (no signature, digest or
	// token). It is kept apart from ErrBadSignature because it usually points at a sender that is
	// not configured to sign, not at a forgery.
	ErrMissingSignature = errors.New("verify: missing signature")

	// ErrMalformed means a credential is present but cannot be parsed or uses something this edge
	// does not accept (algorithm, hex/base64 encoding, a headers list lacking a required entry, a
	// signed header that the request does not carry, input over a size bound).
	ErrMalformed = errors.New("verify: malformed signature")

	// ErrDigestMismatch means the cavage digest header does not match the body: the body was
	// changed after signing or truncated on the way.
	ErrDigestMismatch = errors.New("verify: digest does not match body")

	// ErrUnknownKey means the cavage keyId names no configured public key, typically a key the
	// provider rotated to before it was configured here.
	ErrUnknownKey = errors.New("verify: unknown key id")

	// ErrBadSignature means the signature or MAC does not verify with any configured credential.
	ErrBadSignature = errors.New("verify: bad signature")

	// ErrClockSkew means the cavage `created` lies outside the allowed window around now (a replay
	// or a badly wrong clock), or the signature's `expires` has passed.
	ErrClockSkew = errors.New("verify: signature outside the allowed time window")

	// ErrBadToken means a source token was sent but matches none of the configured tokens.
	ErrBadToken = errors.New("verify: bad token")

	// ErrForbiddenIP means the remote address is unknown or outside the source's allow-list.
	ErrForbiddenIP = errors.New("verify: remote address not allowed")
)

// reasons is ordered like the sentinels' documentation; each error wraps exactly one of them, so
// the order only matters for errors joined by a caller.
var reasons = [...]struct {
	err   error
	label string
}{
	{ErrMissingSignature, "missing_signature"},
	{ErrMalformed, "malformed"},
	{ErrDigestMismatch, "digest_mismatch"},
	{ErrUnknownKey, "unknown_key"},
	{ErrBadSignature, "bad_signature"},
	{ErrClockSkew, "clock_skew"},
	{ErrBadToken, "bad_token"},
	{ErrForbiddenIP, "forbidden_ip"},
}

// Reasons returns every label Reason can return but "unknown", so that
// counters can be created at 0.
func Reasons() []string {
	out := make([]string, 0, len(reasons))
	for _, r := range reasons {
		out = append(out, r.label)
	}
	return out
}

// Reason returns a short, stable label for a verification error, safe to use as a metric label or
// as the short reason of a 401 because it comes from a fixed set and never from the input:
// "missing_signature", "malformed", "digest_mismatch", "unknown_key", "bad_signature",
// "clock_skew", "bad_token", "forbidden_ip", or "unknown" for anything else (nil included).
func Reason(err error) string {
	if err == nil {
		return "unknown"
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "unknown"
}
