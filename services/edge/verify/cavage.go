package verify

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxSkew is the window around now in which a cavage `created` is accepted when NewCavage
// is given none. Five minutes absorbs ordinary clock drift and provider retries that re-sign,
// while keeping a captured request from being replayed for long.
const DefaultMaxSkew = 5 * time.Minute

// Bounds on untrusted input, so that a hostile header costs little before it is rejected. Real
// Marktplaats headers are about 700 bytes with a 256-byte signature and three signed headers.
// The edge relies on the header bounds too: it keeps both headers of a verified request.
const (
	// MaxSignatureHeader is the most bytes of a signature header value a verified request has.
	MaxSignatureHeader = 8 << 10
	// MaxDigestHeader is the most bytes of a digest header value a verified request has.
	MaxDigestHeader = 1 << 10

	maxSignatureBytes = 1 << 10 // decoded signature (an RSA-8192 signature is 1 KiB)
	maxSignedHeaders  = 16      // entries in the headers parameter
)

// The pseudo-headers of the cavage draft that this package knows how to put in a signing string.
const (
	pseudoRequestTarget = "(request-target)"
	pseudoCreated       = "(created)"
	pseudoExpires       = "(expires)"
)

// requiredHeaders must all be covered by a signature, or method/path, time and body would not be
// bound to it and could be swapped or replayed.
var requiredHeaders = [...]string{pseudoRequestTarget, pseudoCreated, "digest"}

// Signature is a parsed cavage `signature:` header. Parsing is separate from verification so the
// edge can record keyId and created in the RAW envelope and a fuzzer can reach the parser alone.
type Signature struct {
	KeyID      string
	Algorithm  string // as sent; "" when absent
	Created    int64  // Unix seconds; valid when HasCreated
	HasCreated bool
	Expires    int64 // Unix seconds; valid when HasExpires
	HasExpires bool
	Headers    []string // lower case, in signing order; nil when the parameter is absent
	Signature  []byte   // decoded from hex or standard base64
}

// Cavage verifies Marktplaats LMS webhooks: cavage HTTP signatures (draft-cavage-http-signatures-12)
// with RSA PKCS#1 v1.5 over SHA-256, plus the digest header that binds the body. The signature
// binds Request.Method and Request.Path as given, so a signature made for another endpoint fails;
// the caller passes the path the provider signed for (with the query, if the provider sends one).
type Cavage struct {
	keys    map[string]*rsa.PublicKey
	maxSkew int64 // seconds
	now     func() time.Time
}

// NewCavage returns a verifier trusting keys, by keyId. Several keys may be configured at once
// so a provider can rotate without downtime; nil keys are dropped. maxSkew <= 0 selects
// DefaultMaxSkew, because a zero window would reject any sender whose clock is a second off; the
// window has one-second resolution, like `created`. now nil means time.Now; tests pass a fixed clock.
func NewCavage(keys map[string]*rsa.PublicKey, maxSkew time.Duration, now func() time.Time) *Cavage {
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	if now == nil {
		now = time.Now
	}
	k := maps.Clone(keys)
	maps.DeleteFunc(k, func(_ string, v *rsa.PublicKey) bool { return v == nil })
	return &Cavage{keys: k, maxSkew: int64(maxSkew / time.Second), now: now}
}

// Verify checks the request's signature and digest headers. Cheap checks (parsing, keyId, clock,
// digest) run first so that junk and replays never cost an RSA operation; the request is accepted
// only when all of them and the RSA signature pass. The error wraps ErrMissingSignature (no
// signature or digest header), ErrMalformed, ErrUnknownKey, ErrDigestMismatch, ErrClockSkew or
// ErrBadSignature.
func (c *Cavage) Verify(r *Request) (Result, error) {
	h, err := c.headers(r)
	if err != nil {
		return Result{}, err
	}
	actual := sha256.Sum256(r.Body)
	if subtle.ConstantTimeCompare(h.digest, actual[:]) != 1 {
		return Result{}, fmt.Errorf("%w: SHA-256 of the body differs from the digest header", ErrDigestMismatch)
	}
	hashed := sha256.Sum256(h.signingString)
	if err := rsa.VerifyPKCS1v15(h.key, crypto.SHA256, hashed[:], h.sig.Signature); err != nil {
		return Result{}, fmt.Errorf("%w: RSA signature does not verify with keyId %q", ErrBadSignature, clip(h.sig.KeyID))
	}
	return Result{KeyID: h.sig.KeyID}, nil
}

// Precheck runs every check of Verify that needs no body: parsing, algorithm, signed headers,
// keyId, digest syntax, clock and the signing string. The RSA operation is left to Verify, which
// needs the digest compared first and would otherwise pay for it twice.
func (c *Cavage) Precheck(r *Request) error {
	_, err := c.headers(r)
	return err
}

// checkedHeaders is what the header checks found, for Verify to finish with the body.
type checkedHeaders struct {
	sig           Signature
	key           *rsa.PublicKey
	digest        []byte
	signingString []byte
}

func (c *Cavage) headers(r *Request) (checkedHeaders, error) {
	raw := headerValue(r.Header, "Signature")
	if raw == "" {
		return checkedHeaders{}, fmt.Errorf("%w: no signature header", ErrMissingSignature)
	}
	sig, err := ParseSignature(raw)
	if err != nil {
		return checkedHeaders{}, err
	}
	if !acceptedAlgorithm(sig.Algorithm) {
		return checkedHeaders{}, fmt.Errorf("%w: algorithm %q is not accepted (want RSA with SHA-256)", ErrMalformed, clip(sig.Algorithm))
	}
	for _, need := range requiredHeaders {
		if !slices.Contains(sig.Headers, need) {
			return checkedHeaders{}, fmt.Errorf("%w: signed headers do not include %s", ErrMalformed, need)
		}
	}
	if !sig.HasCreated {
		return checkedHeaders{}, fmt.Errorf("%w: (created) is signed but the created parameter is missing", ErrMalformed)
	}
	key := c.keys[sig.KeyID]
	if key == nil {
		return checkedHeaders{}, fmt.Errorf("%w: keyId %q", ErrUnknownKey, clip(sig.KeyID))
	}

	digest := headerValue(r.Header, "Digest")
	if digest == "" {
		return checkedHeaders{}, fmt.Errorf("%w: no digest header", ErrMissingSignature)
	}
	claimed, err := ParseDigest(digest)
	if err != nil {
		return checkedHeaders{}, err
	}

	// The clock before the body hash: a flood of replays then costs no pass over the bodies.
	now := c.now().Unix()
	switch {
	case sig.Created < now-c.maxSkew:
		return checkedHeaders{}, fmt.Errorf("%w: created %d is %ds before now", ErrClockSkew, sig.Created, now-sig.Created)
	case sig.Created > now+c.maxSkew:
		return checkedHeaders{}, fmt.Errorf("%w: created %d is %ds after now", ErrClockSkew, sig.Created, sig.Created-now)
	case sig.HasExpires && now > sig.Expires:
		return checkedHeaders{}, fmt.Errorf("%w: signature expired %ds ago", ErrClockSkew, now-sig.Expires)
	}

	msg, err := signingString(&sig, r.Method, r.Path, r.Header)
	if err != nil {
		return checkedHeaders{}, err
	}
	return checkedHeaders{sig: sig, key: key, digest: claimed, signingString: msg}, nil
}

// acceptedAlgorithm reports whether the algorithm parameter is compatible with RSA PKCS#1 v1.5
// and SHA-256. "hs2019" and absent mean "derive it from the key", which for our keys is exactly
// that; anything else is refused so that a sender cannot talk the verifier into another scheme.
func acceptedAlgorithm(a string) bool {
	switch {
	case a == "",
		strings.EqualFold(a, "rsa"),
		strings.EqualFold(a, "rsa-sha256"),
		strings.EqualFold(a, "hs2019"):
		return true
	}
	return false
}

// signingString builds the string the signature covers: one "name: value\n" line per entry of
// sig.Headers, in order, the last one included - the seed insists on that trailing line feed.
func signingString(sig *Signature, method, path string, h http.Header) ([]byte, error) {
	b := make([]byte, 0, 256)
	for _, name := range sig.Headers {
		b = append(b, name...)
		b = append(b, ": "...)
		switch name {
		case pseudoRequestTarget:
			b = appendLower(b, method)
			b = append(b, ' ')
			b = append(b, path...)
		case pseudoCreated:
			if !sig.HasCreated {
				return nil, fmt.Errorf("%w: (created) is signed but the created parameter is missing", ErrMalformed)
			}
			b = strconv.AppendInt(b, sig.Created, 10)
		case pseudoExpires:
			if !sig.HasExpires {
				return nil, fmt.Errorf("%w: (expires) is signed but the expires parameter is missing", ErrMalformed)
			}
			b = strconv.AppendInt(b, sig.Expires, 10)
		default:
			if name[0] == '(' {
				return nil, fmt.Errorf("%w: unsupported pseudo-header %q in signed headers", ErrMalformed, clip(name))
			}
			vals := h.Values(name)
			if len(vals) == 0 {
				return nil, fmt.Errorf("%w: signed header %q is not in the request", ErrMalformed, clip(name))
			}
			for i, v := range vals {
				if i > 0 {
					b = append(b, ", "...)
				}
				b = append(b, v...)
			}
		}
		b = append(b, '\n')
	}
	return b, nil
}

// ParseSignature parses a cavage `signature:` header value into its parameters. Parameters may
// come in any order, separated by commas with optional whitespace; values are quoted or bare
// tokens, so both created=1 and created="1" parse. Unknown parameters are ignored (the draft
// allows extensions); a repeated known one is refused because which copy was signed would be
// ambiguous. keyId and signature are required; the signature is hex, as Marktplaats sends it,
// or standard base64, as the draft specifies. created and expires must be non-negative integers
// of Unix seconds: a fractional expires is refused rather than rounded, since the signing string
// must repeat it exactly. The error wraps ErrMalformed. Input over 8 KiB, more than 16 signed
// headers or a signature over 1 KiB is refused before any further work.
func ParseSignature(v string) (Signature, error) {
	var s Signature
	if len(v) > MaxSignatureHeader {
		return s, fmt.Errorf("%w: signature header over %d bytes", ErrMalformed, MaxSignatureHeader)
	}
	const (
		seenKeyID = 1 << iota
		seenAlgorithm
		seenCreated
		seenExpires
		seenHeaders
		seenSignature
	)
	var (
		seen    int
		sigText string
		i       int
	)
	for {
		// Empty list elements (",,", trailing comma) are tolerated, as in HTTP lists.
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
			i++
		}
		if i == len(v) {
			break
		}
		start := i
		for i < len(v) && isTokenChar(v[i]) {
			i++
		}
		name := v[start:i]
		if name == "" {
			return Signature{}, fmt.Errorf("%w: signature header: expected a parameter name at offset %d", ErrMalformed, i)
		}
		i = skipOWS(v, i)
		if i == len(v) || v[i] != '=' {
			return Signature{}, fmt.Errorf("%w: signature header: parameter without a value at offset %d", ErrMalformed, i)
		}
		i = skipOWS(v, i+1)
		var val string
		if i < len(v) && v[i] == '"' {
			i++
			start = i
			for i < len(v) && v[i] != '"' {
				// No escapes: no legitimate value contains a quote or backslash, and control
				// characters would let a value forge lines of the signing string.
				if v[i] == '\\' || v[i] < 0x20 || v[i] == 0x7f {
					return Signature{}, fmt.Errorf("%w: signature header: invalid character in quoted value at offset %d", ErrMalformed, i)
				}
				i++
			}
			if i == len(v) {
				return Signature{}, fmt.Errorf("%w: signature header: unterminated quoted value", ErrMalformed)
			}
			val = v[start:i]
			i++
		} else {
			start = i
			for i < len(v) && isTokenChar(v[i]) {
				i++
			}
			val = v[start:i]
			if val == "" {
				return Signature{}, fmt.Errorf("%w: signature header: empty value at offset %d", ErrMalformed, i)
			}
		}
		i = skipOWS(v, i)
		if i < len(v) && v[i] != ',' {
			return Signature{}, fmt.Errorf("%w: signature header: expected a comma at offset %d", ErrMalformed, i)
		}

		var bit int
		switch {
		case strings.EqualFold(name, "keyId"):
			bit = seenKeyID
			s.KeyID = val
		case strings.EqualFold(name, "algorithm"):
			bit = seenAlgorithm
			s.Algorithm = val
		case strings.EqualFold(name, "created"):
			bit = seenCreated
			t, err := parseUnixSeconds(val)
			if err != nil {
				return Signature{}, fmt.Errorf("%w: signature header: created: %v", ErrMalformed, err)
			}
			s.Created, s.HasCreated = t, true
		case strings.EqualFold(name, "expires"):
			bit = seenExpires
			t, err := parseUnixSeconds(val)
			if err != nil {
				return Signature{}, fmt.Errorf("%w: signature header: expires: %v", ErrMalformed, err)
			}
			s.Expires, s.HasExpires = t, true
		case strings.EqualFold(name, "headers"):
			bit = seenHeaders
			hs, err := parseHeaderList(val)
			if err != nil {
				return Signature{}, err
			}
			s.Headers = hs
		case strings.EqualFold(name, "signature"):
			bit = seenSignature
			sigText = val
		default:
			continue
		}
		if seen&bit != 0 {
			return Signature{}, fmt.Errorf("%w: signature header: parameter %s given twice", ErrMalformed, strings.ToLower(name))
		}
		seen |= bit
	}
	if s.KeyID == "" {
		return Signature{}, fmt.Errorf("%w: signature header: no keyId", ErrMalformed)
	}
	if seen&seenSignature == 0 {
		return Signature{}, fmt.Errorf("%w: signature header: no signature", ErrMalformed)
	}
	b, err := decodeSignature(sigText)
	if err != nil {
		return Signature{}, err
	}
	s.Signature = b
	return s, nil
}

// parseHeaderList splits the headers parameter. Names are lower-cased because the signing string
// uses them lower case, and checked so that nothing but a header name or a pseudo-header can
// reach a line of the signing string.
func parseHeaderList(val string) ([]string, error) {
	n := 0
	for f := range strings.FieldsSeq(val) {
		n++
		if n > maxSignedHeaders {
			return nil, fmt.Errorf("%w: signature header: more than %d signed headers", ErrMalformed, maxSignedHeaders)
		}
		if !validHeaderName(f) {
			return nil, fmt.Errorf("%w: signature header: invalid entry in headers", ErrMalformed)
		}
	}
	hs := make([]string, 0, n)
	for f := range strings.FieldsSeq(val) {
		hs = append(hs, strings.ToLower(f))
	}
	return hs, nil
}

// decodeSignature accepts hex (Marktplaats) first and standard base64 (the draft) second. A hex
// string is also valid base64, but a 2048-bit signature in base64 ends in "==" and so is never
// taken for hex; other sizes would collide only if every character happened to be a hex digit.
// The 8 KiB bound on the whole header already caps the decoding work.
func decodeSignature(t string) ([]byte, error) {
	b, err := hex.DecodeString(t)
	if err != nil {
		b, err = base64.StdEncoding.DecodeString(t)
		if err != nil {
			return nil, fmt.Errorf("%w: signature is neither hex nor base64", ErrMalformed)
		}
	}
	if len(b) == 0 || len(b) > maxSignatureBytes {
		return nil, fmt.Errorf("%w: signature of %d bytes", ErrMalformed, len(b))
	}
	return b, nil
}

// ParseDigest parses a `digest:` header value and returns the SHA-256 bytes it claims. The value
// may list several algorithms ("SHA-512=..., SHA-256=..."); only SHA-256 is used, its name matched
// in any case, its value in hex of either case (what Marktplaats sends) or standard base64 (what
// RFC 3230 specifies). A list without SHA-256, with it twice, or with an element that is not
// name=value is refused. The error wraps ErrMalformed.
func ParseDigest(v string) ([]byte, error) {
	if len(v) > MaxDigestHeader {
		return nil, fmt.Errorf("%w: digest header over %d bytes", ErrMalformed, MaxDigestHeader)
	}
	var sum []byte
	for part := range strings.SplitSeq(v, ",") {
		part = strings.Trim(part, " \t")
		if part == "" {
			continue
		}
		alg, val, ok := strings.Cut(part, "=")
		alg, val = strings.Trim(alg, " \t"), strings.Trim(val, " \t")
		if !ok || alg == "" || val == "" {
			return nil, fmt.Errorf("%w: digest header: element is not algorithm=value", ErrMalformed)
		}
		if !strings.EqualFold(alg, "SHA-256") {
			continue
		}
		if sum != nil {
			return nil, fmt.Errorf("%w: digest header: SHA-256 given twice", ErrMalformed)
		}
		var err error
		switch len(val) {
		case 2 * sha256.Size:
			sum, err = hex.DecodeString(val)
		case base64.StdEncoding.EncodedLen(sha256.Size):
			sum, err = base64.StdEncoding.DecodeString(val)
		default:
			err = errors.New("bad length")
		}
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("%w: digest header: SHA-256 value is neither 64 hex digits nor 44 base64 characters", ErrMalformed)
		}
	}
	if sum == nil {
		return nil, fmt.Errorf("%w: digest header: no SHA-256 digest", ErrMalformed)
	}
	return sum, nil
}

// parseUnixSeconds accepts digits only: a sign or fraction has no place in these parameters, and
// refusing them keeps created-now arithmetic free of overflow.
func parseUnixSeconds(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, errors.New("not a timestamp of up to 19 digits")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not an unsigned integer")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return n, nil
}

// validHeaderName accepts an HTTP token or a token in parentheses (a pseudo-header).
func validHeaderName(s string) bool {
	if len(s) > 2 && s[0] == '(' && s[len(s)-1] == ')' {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// headerValue joins repeated header lines with ", " as the cavage draft prescribes for the
// signing string, so the value parsed is the value signed.
func headerValue(h http.Header, name string) string {
	vals := h.Values(name)
	switch len(vals) {
	case 0:
		return ""
	case 1:
		return vals[0]
	}
	return strings.Join(vals, ", ")
}

// appendLower appends the ASCII lower case of s without allocating a new string.
func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

// clip bounds attacker-chosen text (keyId, algorithm) before it goes into an error, so an error
// message stays a log line and not a payload.
func clip(s string) string {
	const limit = 64
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
