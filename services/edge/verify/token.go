package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Token authenticates a source whose provider signs nothing (Lokalebasen): the sender proves
// itself with a secret token, as the last path segment or as a bearer token, optionally from an
// allowed network only. A token does not bind the body; TLS is what protects it in transit.
type Token struct {
	sums  [][sha256.Size]byte // SHA-256 of each token, so comparisons take the same time whatever the lengths
	ids   []string            // "token#<index>"
	allow []netip.Prefix
}

// NewToken returns a verifier accepting any of tokens (several, so a token can be rotated without
// downtime; Result.KeyID reports the match as "token#<index>", its 0-based position). An empty
// token never matches: a request without a token is refused before any comparison. allow restricts the remote address to
// those prefixes; empty allows any address, including an unknown one. Both slices are copied.
func NewToken(tokens []string, allow []netip.Prefix) *Token {
	t := &Token{
		sums: make([][sha256.Size]byte, len(tokens)),
		ids:  make([]string, len(tokens)),
	}
	for i, tok := range tokens {
		t.sums[i] = sha256.Sum256([]byte(tok))
		t.ids[i] = "token#" + strconv.Itoa(i)
	}
	for _, p := range allow {
		t.allow = append(t.allow, p.Masked())
	}
	return t
}

// Verify checks the remote address first (a request from outside the allow-list learns nothing
// about tokens), then the token from Request.Token, or else from "Authorization: Bearer <token>".
// Every configured token is compared, in constant time and without branching on the outcome.
// The error wraps ErrForbiddenIP, ErrMissingSignature (no token at all) or ErrBadToken.
func (t *Token) Verify(r *Request) (Result, error) {
	if len(t.allow) > 0 && !t.allowed(r.RemoteIP) {
		return Result{}, fmt.Errorf("%w: remote address outside the allow-list", ErrForbiddenIP)
	}
	tok := r.Token
	if tok == "" {
		tok = bearer(r.Header)
	}
	if tok == "" {
		return Result{}, fmt.Errorf("%w: no token in path or Authorization header", ErrMissingSignature)
	}
	sum := sha256.Sum256([]byte(tok))
	match, found := -1, 0
	for i := range t.sums {
		eq := subtle.ConstantTimeCompare(sum[:], t.sums[i][:])
		match = subtle.ConstantTimeSelect(eq&^found, i, match)
		found |= eq
	}
	if found == 0 {
		return Result{}, fmt.Errorf("%w: token matches no configured token", ErrBadToken)
	}
	return Result{KeyID: t.ids[match]}, nil
}

// Precheck is Verify without the result: a token does not bind the body, so everything Verify
// checks is known before the body arrives.
func (t *Token) Precheck(r *Request) error {
	_, err := t.Verify(r)
	return err
}

// allowed unmaps IPv4-mapped IPv6 addresses, which a dual-stack listener reports for IPv4 peers,
// so that IPv4 prefixes match them.
func (t *Token) allowed(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range t.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// bearer returns the token of an "Authorization: Bearer <token>" header (scheme in any case), or "".
func bearer(h http.Header) string {
	scheme, tok, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.Trim(tok, " \t")
}
