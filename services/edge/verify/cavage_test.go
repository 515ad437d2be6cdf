package verify

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of the vectors (make-vectors.sh CREATED).
const testNow = 1795600000

// cavageKeys are the private halves of the test keys, by the keyId the tests use.
type cavageKeys struct {
	lead, chat, other *rsa.PrivateKey
}

func loadCavageKeys(tb testing.TB) cavageKeys {
	return cavageKeys{
		lead:  loadPrivateKey(tb, "leadDeliveryKey"),
		chat:  loadPrivateKey(tb, "chatMessagePushKey"),
		other: loadPrivateKey(tb, "otherKey"),
	}
}

// verifier trusts leadDeliveryKey and chatMessagePushKey, like the mp-leads source.
func (k cavageKeys) verifier() *Cavage {
	return NewCavage(map[string]*rsa.PublicKey{
		"leadDeliveryKey":    &k.lead.PublicKey,
		"chatMessagePushKey": &k.chat.PublicKey,
	}, 5*time.Minute, func() time.Time { return time.Unix(testNow, 0) })
}

// cavageReq describes a cavage-signed request; the zero value of each field means "as
// Marktplaats does it". It builds the signing string itself, independently of signingString,
// so the tests check the verifier against the seed's rules and not against its own code.
type cavageReq struct {
	key        *rsa.PrivateKey
	keyID      string
	algorithm  string // "-" omits the parameter
	created    int64
	noCreated  bool
	expires    int64 // 0: no expires parameter
	headers    []string
	headersArg string // the headers parameter as sent, when it differs from what was signed
	digest     string // digest header; "" means SHA-256=<hex of body>
	noDigest   bool
	body       []byte
	method     string // of the request
	path       string
	signMethod string // what the signer put in (request-target), when it differs
	signPath   string
	extra      http.Header
	mangle     func(msg string) string
	encode     func([]byte) string
	rewrite    func(sigHeader string) string
}

func (c cavageReq) build(tb testing.TB, k cavageKeys) *Request {
	tb.Helper()
	if c.key == nil {
		c.key = k.lead
	}
	if c.keyID == "" {
		c.keyID = "leadDeliveryKey"
	}
	if c.algorithm == "" {
		c.algorithm = "RSA"
	}
	if c.created == 0 {
		c.created = testNow
	}
	if c.headers == nil {
		c.headers = []string{"(request-target)", "(created)", "digest"}
	}
	if c.body == nil {
		c.body = []byte(`{"leadId":"L-1","name":"Jan de Vries"}`)
	}
	if c.method == "" {
		c.method = "POST"
	}
	if c.path == "" {
		c.path = "/hooks/mp-leads"
	}
	if c.signMethod == "" {
		c.signMethod = strings.ToLower(c.method)
	}
	if c.signPath == "" {
		c.signPath = c.path
	}
	if c.encode == nil {
		c.encode = hex.EncodeToString
	}
	h := http.Header{}
	for name, vals := range c.extra {
		h[name] = vals
	}
	if c.digest == "" {
		sum := sha256.Sum256(c.body)
		c.digest = "SHA-256=" + hex.EncodeToString(sum[:])
	}
	if !c.noDigest {
		h.Set("Digest", c.digest)
	}
	h.Set("Content-Type", "application/json")

	var msg strings.Builder
	for _, name := range c.headers {
		switch name {
		case "(request-target)":
			msg.WriteString(name + ": " + c.signMethod + " " + c.signPath + "\n")
		case "(created)":
			msg.WriteString(name + ": " + strconv.FormatInt(c.created, 10) + "\n")
		case "(expires)":
			msg.WriteString(name + ": " + strconv.FormatInt(c.expires, 10) + "\n")
		default:
			msg.WriteString(name + ": " + strings.Join(h.Values(name), ", ") + "\n")
		}
	}
	m := msg.String()
	if c.mangle != nil {
		m = c.mangle(m)
	}
	hashed := sha256.Sum256([]byte(m))
	raw, err := rsa.SignPKCS1v15(nil, c.key, crypto.SHA256, hashed[:])
	if err != nil {
		tb.Fatal(err)
	}

	var p []string
	p = append(p, `keyId="`+c.keyID+`"`)
	if c.algorithm != "-" {
		p = append(p, `algorithm="`+c.algorithm+`"`)
	}
	if !c.noCreated {
		p = append(p, "created="+strconv.FormatInt(c.created, 10))
	}
	if c.expires != 0 {
		p = append(p, "expires="+strconv.FormatInt(c.expires, 10))
	}
	if c.headersArg == "" {
		c.headersArg = strings.Join(c.headers, " ")
	}
	p = append(p, `headers="`+c.headersArg+`"`, `signature="`+c.encode(raw)+`"`)
	sig := strings.Join(p, ",")
	if c.rewrite != nil {
		sig = c.rewrite(sig)
	}
	h.Set("Signature", sig)
	return &Request{Method: c.method, Path: c.path, Header: h, Body: c.body}
}

func TestCavageVerify(t *testing.T) {
	k := loadCavageKeys(t)
	v := k.verifier()
	body := []byte(`{"leadId":"L-1","name":"Jan de Vries"}`)
	sum := sha256.Sum256(body)
	hexDigest := hex.EncodeToString(sum[:])
	b64Digest := base64.StdEncoding.EncodeToString(sum[:])
	sha512 := "SHA-512=" + base64.StdEncoding.EncodeToString(make([]byte, 64))
	std := []string{"(request-target)", "(created)", "digest"}

	tests := []struct {
		name string
		req  cavageReq
		want error // nil: accepted
	}{
		{name: "as Marktplaats signs", req: cavageReq{}},
		{name: "chat key", req: cavageReq{key: k.chat, keyID: "chatMessagePushKey"}},
		{name: "signing string without trailing newline", req: cavageReq{mangle: func(m string) string { return strings.TrimSuffix(m, "\n") }}, want: ErrBadSignature},
		{name: "signing string with CRLF", req: cavageReq{mangle: func(m string) string { return strings.ReplaceAll(m, "\n", "\r\n") }}, want: ErrBadSignature},
		{name: "created at now-skew", req: cavageReq{created: testNow - 300}},
		{name: "created at now+skew", req: cavageReq{created: testNow + 300}},
		{name: "created just before the window", req: cavageReq{created: testNow - 301}, want: ErrClockSkew},
		{name: "created just after the window", req: cavageReq{created: testNow + 301}, want: ErrClockSkew},
		{name: "created an hour old", req: cavageReq{created: testNow - 3600}, want: ErrClockSkew},
		{name: "keyId of another trusted key", req: cavageReq{key: k.chat, keyID: "leadDeliveryKey"}, want: ErrBadSignature},
		{name: "untrusted key under a trusted keyId", req: cavageReq{key: k.other}, want: ErrBadSignature},
		{name: "unknown keyId", req: cavageReq{key: k.other, keyID: "otherKey"}, want: ErrUnknownKey},
		{name: "keyId differs in case", req: cavageReq{keyID: "LeadDeliveryKey"}, want: ErrUnknownKey},
		{name: "headers lack digest", req: cavageReq{headers: []string{"(request-target)", "(created)"}}, want: ErrMalformed},
		{name: "headers lack (created)", req: cavageReq{headers: []string{"(request-target)", "digest"}}, want: ErrMalformed},
		{name: "headers lack (request-target)", req: cavageReq{headers: []string{"(created)", "digest"}}, want: ErrMalformed},
		{name: "headers parameter absent", req: cavageReq{rewrite: func(s string) string {
			return strings.Replace(s, `headers="(request-target) (created) digest",`, "", 1)
		}}, want: ErrMalformed},
		{name: "headers in another order, signed so", req: cavageReq{headers: []string{"digest", "(created)", "(request-target)"}}},
		{name: "headers parameter order differs from what was signed", req: cavageReq{headersArg: "(created) (request-target) digest"}, want: ErrBadSignature},
		{name: "headers upper case", req: cavageReq{headersArg: "(REQUEST-TARGET) (Created) Digest"}},
		{name: "extra signed header", req: cavageReq{headers: append(std, "content-type")}},
		{name: "signed header repeated in the request", req: cavageReq{
			headers: append(std, "x-trace"), extra: http.Header{"X-Trace": {"a", "b"}},
		}},
		{name: "signed header not in the request", req: cavageReq{headers: append(std, "x-missing")}, want: ErrMalformed},
		{name: "unknown pseudo-header signed", req: cavageReq{headers: append(std, "(foo)")}, want: ErrMalformed},
		{name: "algorithm absent", req: cavageReq{algorithm: "-"}},
		{name: "algorithm rsa", req: cavageReq{algorithm: "rsa"}},
		{name: "algorithm RSA-SHA256", req: cavageReq{algorithm: "RSA-SHA256"}},
		{name: "algorithm hs2019", req: cavageReq{algorithm: "hs2019"}},
		{name: "algorithm hmac-sha256", req: cavageReq{algorithm: "hmac-sha256"}, want: ErrMalformed},
		{name: "algorithm rsa-sha1", req: cavageReq{algorithm: "rsa-sha1"}, want: ErrMalformed},
		{name: "algorithm ecdsa-sha256", req: cavageReq{algorithm: "ecdsa-sha256"}, want: ErrMalformed},
		{name: "expires in the future", req: cavageReq{expires: testNow + 60, headers: append(std, "(expires)")}},
		{name: "expires passed", req: cavageReq{expires: testNow - 1, headers: append(std, "(expires)")}, want: ErrClockSkew},
		{name: "(expires) signed without expires", req: cavageReq{headers: append(std, "(expires)")}, want: ErrMalformed},
		{name: "(created) signed without created", req: cavageReq{noCreated: true}, want: ErrMalformed},
		{name: "digest upper-case hex", req: cavageReq{digest: "SHA-256=" + strings.ToUpper(hexDigest)}},
		{name: "digest base64", req: cavageReq{digest: "SHA-256=" + b64Digest}},
		{name: "digest algorithm lower case", req: cavageReq{digest: "sha-256=" + hexDigest}},
		{name: "digest lists several algorithms", req: cavageReq{digest: sha512 + ", SHA-256=" + hexDigest}},
		{name: "digest without SHA-256", req: cavageReq{digest: sha512}, want: ErrMalformed},
		{name: "digest not hex", req: cavageReq{digest: "SHA-256=" + strings.Repeat("zz", 32)}, want: ErrMalformed},
		{name: "digest of another body", req: cavageReq{digest: "SHA-256=" + strings.Repeat("00", 32)}, want: ErrDigestMismatch},
		{name: "digest header missing", req: cavageReq{noDigest: true}, want: ErrMissingSignature},
		{name: "method upper case in the signing string", req: cavageReq{signMethod: "POST"}, want: ErrBadSignature},
		{name: "method lower case in the request", req: cavageReq{method: "post"}},
		{name: "method other than signed", req: cavageReq{method: "PUT", signMethod: "post"}, want: ErrBadSignature},
		{name: "signed for another path", req: cavageReq{signPath: "/hooks/elsewhere"}, want: ErrBadSignature},
		{name: "signature in base64", req: cavageReq{encode: base64.StdEncoding.EncodeToString}},
		{name: "signature upper-case hex", req: cavageReq{encode: func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }}},
		{name: "signature one byte short", req: cavageReq{encode: func(b []byte) string { return hex.EncodeToString(b[1:]) }}, want: ErrBadSignature},
		{name: "signature bit flipped", req: cavageReq{encode: func(b []byte) string {
			b[100] ^= 1
			return hex.EncodeToString(b)
		}}, want: ErrBadSignature},
		{name: "parameters reordered, created quoted, spaces", req: cavageReq{rewrite: func(s string) string {
			sig, _ := ParseSignature(s)
			return `signature = "` + hex.EncodeToString(sig.Signature) + `" , headers="(request-target) (created) digest", created="` +
				strconv.FormatInt(testNow, 10) + `",  algorithm="RSA", keyId="leadDeliveryKey"`
		}}},
		{name: "unknown parameter ignored", req: cavageReq{rewrite: func(s string) string { return s + `,nonce="abc"` }}},
		{name: "duplicate created", req: cavageReq{rewrite: func(s string) string { return s + ",created=" + strconv.Itoa(testNow-9999) }}, want: ErrMalformed},
		{name: "signature header over 8 KiB", req: cavageReq{rewrite: func(s string) string {
			return s + `,x="` + strings.Repeat("a", 8<<10) + `"`
		}}, want: ErrMalformed},
		{name: "more than 16 signed headers", req: cavageReq{headersArg: "(request-target) (created) digest" + strings.Repeat(" content-type", 14)}, want: ErrMalformed},
		{name: "empty body", req: cavageReq{body: []byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := v.Verify(tt.req.build(t, k))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if want := tt.req.keyID; want != "" && res.KeyID != want || want == "" && res.KeyID != "leadDeliveryKey" {
					t.Errorf("key id %q", res.KeyID)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("want %v, got %v", tt.want, err)
			}
		})
	}
}

// TestCavageRepeatedSignatureHeader: two signature header lines are ambiguous (which one was
// meant?), so they are refused, even when one of them is valid.
func TestCavageRepeatedSignatureHeader(t *testing.T) {
	k := loadCavageKeys(t)
	r := cavageReq{}.build(t, k)
	r.Header.Add("Signature", r.Header.Get("Signature"))
	if _, err := k.verifier().Verify(r); !errors.Is(err, ErrMalformed) {
		t.Fatalf("want ErrMalformed, got %v", err)
	}
}

// TestCavageKeyRotatedUnderSameID: when a provider replaces the key behind a keyId, signatures
// made with the old key stop verifying.
func TestCavageKeyRotatedUnderSameID(t *testing.T) {
	k := loadCavageKeys(t)
	v := NewCavage(map[string]*rsa.PublicKey{"leadDeliveryKey": &k.other.PublicKey}, 0, func() time.Time { return time.Unix(testNow, 0) })
	if _, err := v.Verify(cavageReq{}.build(t, k)); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("old key: want ErrBadSignature, got %v", err)
	}
	if _, err := v.Verify(cavageReq{key: k.other}.build(t, k)); err != nil {
		t.Fatalf("new key: %v", err)
	}
}

// TestNewCavageDefaults: a zero skew means the default window, not "no tolerance", and a nil
// clock means the wall clock.
func TestNewCavageDefaults(t *testing.T) {
	k := loadCavageKeys(t)
	v := NewCavage(map[string]*rsa.PublicKey{"leadDeliveryKey": &k.lead.PublicKey, "nil": nil}, 0, nil)
	now := time.Now().Unix()
	for _, tt := range []struct {
		created int64
		ok      bool
	}{
		{now, true},
		{now - int64(DefaultMaxSkew/time.Second) + 2, true},
		{now - int64(DefaultMaxSkew/time.Second) - 2, false},
	} {
		_, err := v.Verify(cavageReq{created: tt.created}.build(t, k))
		if (err == nil) != tt.ok {
			t.Errorf("created now%+d: %v", tt.created-now, err)
		}
	}
	r := cavageReq{keyID: "nil"}.build(t, k)
	if _, err := v.Verify(r); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("nil key: want ErrUnknownKey, got %v", err)
	}
}

func TestParseSignature(t *testing.T) {
	sig := bytes.Repeat([]byte{0xab}, 256)
	sigHex := hex.EncodeToString(sig)
	sigB64 := base64.StdEncoding.EncodeToString(sig)
	std := []string{"(request-target)", "(created)", "digest"}

	ok := []struct {
		name string
		in   string
		want Signature
	}{
		{"seed format", `keyId="leadDeliveryKey",algorithm="RSA",created=1636631099,headers="(request-target) (created) digest",signature="` + sigHex + `"`,
			Signature{KeyID: "leadDeliveryKey", Algorithm: "RSA", Created: 1636631099, HasCreated: true, Headers: std, Signature: sig}},
		{"reordered, quoted created, whitespace, trailing comma", ` signature = "` + sigB64 + `" ,	created="7", keyId=k ,headers="(Request-Target)  (created)   Digest",`,
			Signature{KeyID: "k", Created: 7, HasCreated: true, Headers: std, Signature: sig}},
		{"expires and unknown parameters", `keyId="k",expires=99,foo="bar",baz=1,signature="` + sigHex + `"`,
			Signature{KeyID: "k", Expires: 99, HasExpires: true, Signature: sig}},
		{"parameter names in any case", `KEYID="k",Signature="` + sigHex + `"`,
			Signature{KeyID: "k", Signature: sig}},
		{"empty headers", `keyId="k",headers="",signature="` + sigHex + `"`,
			Signature{KeyID: "k", Headers: []string{}, Signature: sig}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSignature(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}

	bad := []struct{ name, in string }{
		{"empty", ``},
		{"no keyId", `signature="` + sigHex + `"`},
		{"empty keyId", `keyId="",signature="` + sigHex + `"`},
		{"no signature", `keyId="k"`},
		{"empty signature", `keyId="k",signature=""`},
		{"signature neither hex nor base64", `keyId="k",signature="not*base64"`},
		{"signature over 1 KiB", `keyId="k",signature="` + strings.Repeat("ab", 1025) + `"`},
		{"signature over 1 KiB in base64", `keyId="k",signature="` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 1026)) + `"`},
		{"header over 8 KiB", `keyId="k",signature="` + sigHex + `",x="` + strings.Repeat("x", 8<<10) + `"`},
		{"17 headers", `keyId="k",headers="` + strings.Repeat("a ", 17) + `",signature="` + sigHex + `"`},
		{"header name with colon", `keyId="k",headers="digest:",signature="` + sigHex + `"`},
		{"empty pseudo-header", `keyId="k",headers="()",signature="` + sigHex + `"`},
		{"duplicate keyId", `keyId="a",keyId="b",signature="` + sigHex + `"`},
		{"duplicate signature", `keyId="a",signature="` + sigHex + `",signature="` + sigHex + `"`},
		{"created negative", `keyId="k",created=-1,signature="` + sigHex + `"`},
		{"created with sign", `keyId="k",created=+1,signature="` + sigHex + `"`},
		{"created fractional", `keyId="k",created="1.5",signature="` + sigHex + `"`},
		{"expires fractional", `keyId="k",expires="1.5",signature="` + sigHex + `"`},
		{"created overflows", `keyId="k",created=9999999999999999999,signature="` + sigHex + `"`},
		{"created too long", `keyId="k",created=00000000000000000001,signature="` + sigHex + `"`},
		{"created empty", `keyId="k",created="",signature="` + sigHex + `"`},
		{"unterminated quote", `keyId="k,signature="` + sigHex},
		{"backslash in value", `keyId="k\"",signature="` + sigHex + `"`},
		{"newline in value", "keyId=\"k\nx\",signature=\"" + sigHex + `"`},
		{"no value", `keyId,signature="` + sigHex + `"`},
		{"empty bare value", `keyId=,signature="` + sigHex + `"`},
		{"missing comma", `keyId="k" signature="` + sigHex + `"`},
		{"garbage name", `"keyId"="k",signature="` + sigHex + `"`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSignature(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("want ErrMalformed, got %+v, %v", got, err)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	sum := sha256.Sum256([]byte("body"))
	hx := hex.EncodeToString(sum[:])
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	for _, in := range []string{
		"SHA-256=" + hx,
		"SHA-256=" + strings.ToUpper(hx),
		"sha-256=" + hx,
		"SHA-256=" + b64,
		" SHA-256 = " + hx + " ",
		"MD5=Q2hlY2sgSW50ZWdyaXR5IQ==, SHA-256=" + hx,
		"SHA-256=" + hx + ",SHA-512=" + base64.StdEncoding.EncodeToString(make([]byte, 64)) + ",",
	} {
		got, err := ParseDigest(in)
		if err != nil || !bytes.Equal(got, sum[:]) {
			t.Errorf("%q: got %x, %v", in, got, err)
		}
	}
	for _, in := range []string{
		"",
		"SHA-256",
		"SHA-256=",
		"=" + hx,
		"SHA256=" + hx,
		"SHA-512=" + hx,
		"SHA-256=" + hx[:62],
		"SHA-256=" + hx + "00",
		"SHA-256=" + strings.Repeat("g", 64),
		"SHA-256=" + strings.TrimSuffix(b64, "="),
		"SHA-256=" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)),
		"SHA-256=" + hx + ", SHA-256=" + hx,
		"SHA-256=" + hx + ", junk",
		"SHA-256=" + hx + "," + strings.Repeat(" ", 1<<10),
	} {
		if got, err := ParseDigest(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: want ErrMalformed, got %x, %v", in, got, err)
		}
	}
}

// FuzzParseSignature: the parser meets raw attacker input; it must not panic, and whatever it
// accepts must respect the bounds that keep verification cheap.
func FuzzParseSignature(f *testing.F) {
	for _, v := range loadVectors(f).Vectors {
		if s := v.Headers["signature"]; s != "" {
			f.Add(s)
		}
	}
	f.Add(`keyId=k,created="1",expires=2,headers="(request-target) (created) (expires) digest x",signature="AAAA"`)
	f.Add(`keyId="k",,signature="00",`)
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSignature(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		switch {
		case len(in) > MaxSignatureHeader:
			t.Fatalf("accepted %d bytes", len(in))
		case s.KeyID == "":
			t.Fatal("accepted without keyId")
		case len(s.Signature) == 0 || len(s.Signature) > maxSignatureBytes:
			t.Fatalf("accepted a signature of %d bytes", len(s.Signature))
		case len(s.Headers) > maxSignedHeaders:
			t.Fatalf("accepted %d signed headers", len(s.Headers))
		case s.Created < 0 || s.Expires < 0:
			t.Fatalf("accepted negative times %d %d", s.Created, s.Expires)
		}
		for _, h := range s.Headers {
			if h != strings.ToLower(h) || strings.ContainsAny(h, " \t\r\n:") || h == "" {
				t.Fatalf("accepted header entry %q", h)
			}
		}
	})
}

// FuzzParseDigest: no panic; anything accepted is exactly one SHA-256.
func FuzzParseDigest(f *testing.F) {
	for _, v := range loadVectors(f).Vectors {
		if d := v.Headers["digest"]; d != "" {
			f.Add(d)
		}
	}
	f.Add("SHA-256=" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ", MD5=x")
	f.Fuzz(func(t *testing.T, in string) {
		sum, err := ParseDigest(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(sum) != sha256.Size {
			t.Fatalf("accepted %d bytes", len(sum))
		}
	})
}

// FuzzCavageVerify feeds arbitrary signature and digest headers and bodies to a verifier trusting
// two keys whose private halves the test holds. Nothing may be accepted unless it really is
// what the key holder signs: since RSA PKCS#1 v1.5 is deterministic, an accepted signature must
// equal the one the test computes with the private key over the signing string (built here
// independently), the digest must be the body's, and created must be inside the window. Seeds
// are the vectors, so the fuzzer starts from valid requests and mutates them.
func FuzzCavageVerify(f *testing.F) {
	k := loadCavageKeys(f)
	v := k.verifier()
	privs := map[string]*rsa.PrivateKey{"leadDeliveryKey": k.lead, "chatMessagePushKey": k.chat}
	for _, vec := range loadVectors(f).Vectors {
		if vec.Source != "mp-leads" {
			continue
		}
		body, _ := base64.StdEncoding.DecodeString(vec.BodyBase64)
		f.Add(vec.Headers["signature"], vec.Headers["digest"], body)
	}
	f.Add("", "", []byte(nil))
	f.Fuzz(func(t *testing.T, sigHeader, digest string, body []byte) {
		h := http.Header{}
		if sigHeader != "" {
			h.Set("Signature", sigHeader)
		}
		if digest != "" {
			h.Set("Digest", digest)
		}
		h.Set("Content-Type", "application/json")
		r := &Request{Method: "POST", Path: "/hooks/mp-leads", Header: h, Body: body}
		res, err := v.Verify(r)
		// Precheck, which sees no body, refuses only what Verify refuses, for the same reason.
		if perr := v.Precheck(&Request{Method: r.Method, Path: r.Path, Header: h}); perr != nil && (err == nil || Reason(perr) != Reason(err)) {
			t.Fatalf("Precheck refuses with %v, Verify says %v", perr, err)
		}
		if err != nil {
			if Reason(err) == "unknown" {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		// Accepted: prove it was genuinely signed.
		sig, perr := ParseSignature(sigHeader)
		if perr != nil {
			t.Fatalf("accepted an unparseable signature header: %v", perr)
		}
		priv := privs[sig.KeyID]
		if priv == nil || res.KeyID != sig.KeyID {
			t.Fatalf("accepted keyId %q as %q", sig.KeyID, res.KeyID)
		}
		claimed, derr := ParseDigest(digest)
		actual := sha256.Sum256(body)
		if derr != nil || !bytes.Equal(claimed, actual[:]) {
			t.Fatal("accepted a digest that does not match the body")
		}
		if !sig.HasCreated || sig.Created < testNow-300 || sig.Created > testNow+300 {
			t.Fatalf("accepted created %d (has %v)", sig.Created, sig.HasCreated)
		}
		var msg strings.Builder
		for _, name := range sig.Headers {
			switch name {
			case "(request-target)":
				msg.WriteString("(request-target): post /hooks/mp-leads\n")
			case "(created)":
				msg.WriteString("(created): " + strconv.FormatInt(sig.Created, 10) + "\n")
			case "(expires)":
				msg.WriteString("(expires): " + strconv.FormatInt(sig.Expires, 10) + "\n")
			default:
				msg.WriteString(name + ": " + strings.Join(h.Values(name), ", ") + "\n")
			}
		}
		hashed := sha256.Sum256([]byte(msg.String()))
		genuine, serr := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, hashed[:])
		if serr != nil || !bytes.Equal(genuine, sig.Signature) {
			t.Fatalf("accepted a signature the key holder did not make over %q", msg.String())
		}
	})
}

func BenchmarkCavageVerify(b *testing.B) {
	k := loadCavageKeys(b)
	v := k.verifier()
	body := bytes.Repeat([]byte("x"), 1<<10)
	r := cavageReq{body: body}.build(b, k)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCavageReject measures what a flood of replayed (stale) requests costs: it must stay
// far below an RSA verification.
func BenchmarkCavageReject(b *testing.B) {
	k := loadCavageKeys(b)
	v := k.verifier()
	body := bytes.Repeat([]byte("x"), 1<<10)
	r := cavageReq{body: body, created: testNow - 3600}.build(b, k)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); !errors.Is(err, ErrClockSkew) {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSignature(b *testing.B) {
	k := loadCavageKeys(b)
	in := cavageReq{}.build(b, k).Header.Get("Signature")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSignature(in); err != nil {
			b.Fatal(err)
		}
	}
}
