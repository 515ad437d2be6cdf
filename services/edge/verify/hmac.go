package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/textproto"
	"strconv"
	"strings"
)

// HMAC verifies a hex HMAC-SHA256 of the raw body carried in one header, which is how Marktplaats
// API (X-Ecg-Signature) and Offerte Adviseur (x-offerte-adviseur-signature) sign their webhooks.
type HMAC struct {
	header  string   // canonical header name
	secrets [][]byte // private copies; empty ones never match
	ids     []string // "secret#<index>", built once so a verification allocates no key id
}

// NewHMAC returns a verifier for MACs sent in header under any of secrets. Several secrets may be
// active at once so that a shared secret can be rotated without downtime; Result.KeyID reports the
// matching one as "secret#<index>", its 0-based position in secrets. An empty secret never
// matches, because a MAC under an empty key can be computed by anyone. The secrets are copied.
func NewHMAC(header string, secrets [][]byte) *HMAC {
	v := &HMAC{
		header:  textproto.CanonicalMIMEHeaderKey(header),
		secrets: make([][]byte, len(secrets)),
		ids:     make([]string, len(secrets)),
	}
	for i, s := range secrets {
		v.secrets[i] = append([]byte(nil), s...)
		v.ids[i] = "secret#" + strconv.Itoa(i)
	}
	return v
}

// Verify checks the MAC header against the body under every configured secret, in constant time
// per comparison and without stopping at the first match, so timing tells nothing about which
// secret matched or how much of the MAC was right. Letter case of the hex does not matter.
// The error wraps ErrMissingSignature (header absent or empty), ErrMalformed (repeated header, or a
// value that is not exactly 64 hex digits - refused before any MAC is computed, since it cannot be
// an HMAC-SHA256) or ErrBadSignature (no secret produces it).
func (v *HMAC) Verify(r *Request) (Result, error) {
	var claimed [sha256.Size]byte
	if err := v.claimed(&claimed, r); err != nil {
		return Result{}, err
	}
	match := -1
	var sum [sha256.Size]byte
	for i, secret := range v.secrets {
		if len(secret) == 0 {
			continue
		}
		m := hmac.New(sha256.New, secret)
		m.Write(r.Body)
		if hmac.Equal(m.Sum(sum[:0]), claimed[:]) && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return Result{}, fmt.Errorf("%w: %s does not match any configured secret", ErrBadSignature, v.header)
	}
	return Result{KeyID: v.ids[match]}, nil
}

// Precheck checks the MAC header without the body: present once and 64 hex digits. The error
// wraps ErrMissingSignature or ErrMalformed, as Verify's would.
func (v *HMAC) Precheck(r *Request) error {
	var claimed [sha256.Size]byte
	return v.claimed(&claimed, r)
}

// claimed decodes the MAC the request claims into dst.
func (v *HMAC) claimed(dst *[sha256.Size]byte, r *Request) error {
	vals := r.Header.Values(v.header)
	if len(vals) == 0 || (len(vals) == 1 && strings.Trim(vals[0], " \t") == "") {
		return fmt.Errorf("%w: no %s header", ErrMissingSignature, v.header)
	}
	if len(vals) > 1 {
		return fmt.Errorf("%w: %s header given %d times", ErrMalformed, v.header, len(vals))
	}
	if !decodeHex32(dst, strings.Trim(vals[0], " \t")) {
		return fmt.Errorf("%w: %s is not 64 hex digits", ErrMalformed, v.header)
	}
	return nil
}

// decodeHex32 decodes exactly 64 hex digits of either case into dst without allocating.
func decodeHex32(dst *[sha256.Size]byte, s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHexChar(s[2*i])
		lo, ok2 := fromHexChar(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHexChar(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
