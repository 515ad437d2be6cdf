package verify

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/leadstream/leadstream/pkg/testvectors"
	"time"
)

// The shared vectors (made with openssl) and test keys; CI has them next to the repository.
type (
	vectorFile = testvectors.File
	vector     = testvectors.Vector
)

func loadVectors(tb testing.TB) *vectorFile {
	tb.Helper()
	vf := testvectors.Load(tb)
	if len(vf.Vectors) == 0 {
		tb.Fatal("vectors.json has no vectors")
	}
	return vf
}

func loadPEM(tb testing.TB, rel string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(testvectors.Dir(tb), rel))
	if err != nil {
		tb.Fatalf("read key: %v", err)
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		tb.Fatalf("%s: no PEM block", rel)
	}
	return blk.Bytes
}

func loadPublicKey(tb testing.TB, rel string) *rsa.PublicKey {
	tb.Helper()
	k, err := x509.ParsePKIXPublicKey(loadPEM(tb, rel))
	if err != nil {
		tb.Fatalf("%s: %v", rel, err)
	}
	pub, ok := k.(*rsa.PublicKey)
	if !ok {
		tb.Fatalf("%s: not an RSA key", rel)
	}
	return pub
}

func loadPrivateKey(tb testing.TB, name string) *rsa.PrivateKey {
	tb.Helper()
	rel := "keys/" + name + ".pem"
	k, err := x509.ParsePKCS8PrivateKey(loadPEM(tb, rel))
	if err != nil {
		tb.Fatalf("%s: %v", rel, err)
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok {
		tb.Fatalf("%s: not an RSA key", rel)
	}
	return priv
}

// verifierFor configures a verifier the way the edge configures the vector's source.
func verifierFor(tb testing.TB, vf *vectorFile, v vector) Verifier {
	tb.Helper()
	switch v.Source {
	case "mp-leads":
		keys := map[string]*rsa.PublicKey{}
		for id, rel := range vf.PublicKeys {
			keys[id] = loadPublicKey(tb, rel)
		}
		now := time.Unix(v.Now, 0)
		return NewCavage(keys, time.Duration(vf.MaxClockSkewSeconds)*time.Second, func() time.Time { return now })
	case "mp-api":
		return NewHMAC("X-Ecg-Signature", [][]byte{[]byte(vf.Secrets.MPAPI)})
	case "offerte":
		return NewHMAC("x-offerte-adviseur-signature", [][]byte{[]byte(vf.Secrets.Offerte)})
	case "lokalebasen":
		return NewToken([]string{vf.Secrets.LokalebasenToken}, nil)
	}
	tb.Fatalf("vector %s: unknown source %q", v.Name, v.Source)
	return nil
}

// requestFor builds the request as the edge would see it arrive at /hooks/<source>[/<token>].
func requestFor(tb testing.TB, v vector) *Request {
	tb.Helper()
	body, err := base64.StdEncoding.DecodeString(v.BodyBase64)
	if err != nil {
		tb.Fatalf("vector %s: body: %v", v.Name, err)
	}
	h := http.Header{}
	for k, val := range v.Headers {
		h.Add(k, val)
	}
	r := &Request{Method: v.Method, Path: v.Path, Header: h, Body: body}
	if tok, ok := strings.CutPrefix(v.Path, "/hooks/"+v.Source+"/"); ok {
		r.Token = tok
	}
	if v.Source == "mp-leads" {
		// A vector's path is the path it was signed for; every mp-leads vector arrives at the
		// mp-leads endpoint, which is what makes lms-lead-other-path a replay to another endpoint.
		r.Path = "/hooks/mp-leads"
	}
	return r
}

// vectorReasons pins why each rejected vector is rejected, so a vector that fails for the wrong
// reason (a digest bug hiding a signature bug) is noticed. Vectors added later without an entry
// are still required to fail.
var vectorReasons = map[string]error{
	"lms-lead-wrong-key":                ErrBadSignature,
	"lms-lead-unknown-keyid":            ErrUnknownKey,
	"lms-lead-stale":                    ErrClockSkew,
	"lms-lead-future":                   ErrClockSkew,
	"lms-lead-other-path":               ErrBadSignature,
	"lms-lead-bad-digest":               ErrDigestMismatch,
	"lms-lead-tampered-body":            ErrDigestMismatch,
	"mpapi-bid-placed-wrong-secret":     ErrBadSignature,
	"mpapi-bid-placed-missing-sig":      ErrMissingSignature,
	"offerte-lead-created-wrong-secret": ErrBadSignature,
	"lokalebasen-wrong-token":           ErrBadToken,
	"lokalebasen-no-token":              ErrMissingSignature,
}

// headerReasons are the reasons Precheck finds without the body.
var headerReasons = map[error]bool{ErrUnknownKey: true, ErrClockSkew: true, ErrMissingSignature: true, ErrBadToken: true}

func TestVectors(t *testing.T) {
	vf := loadVectors(t)
	var accepted, rejected int
	for _, v := range vf.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			verifier, req := verifierFor(t, vf, v), requestFor(t, v)
			res, err := verifier.Verify(req)
			headersOnly := *req
			headersOnly.Body = nil
			perr := verifier.Precheck(&headersOnly)
			if perr != nil && Reason(perr) != Reason(err) {
				t.Errorf("Precheck refuses with %v, Verify with %v", perr, err)
			}
			if want := vectorReasons[v.Name]; perr == nil && headerReasons[want] {
				t.Errorf("Precheck passes what headers alone refuse (%v)", want)
			}
			switch v.WantStatus {
			case http.StatusAccepted:
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				if res.KeyID == "" {
					t.Error("accepted without a key id")
				}
				accepted++
			case http.StatusUnauthorized:
				if err == nil {
					t.Fatalf("want rejected, got accepted with %q", res.KeyID)
				}
				if want, ok := vectorReasons[v.Name]; ok && !errors.Is(err, want) {
					t.Errorf("want %v, got %v", want, err)
				}
				if Reason(err) == "unknown" {
					t.Errorf("error %v wraps no sentinel", err)
				}
				rejected++
			default:
				t.Fatalf("want_status %d is not about authenticity", v.WantStatus)
			}
		})
	}
	t.Logf("%d vectors: %d accepted, %d rejected", len(vf.Vectors), accepted, rejected)
}

// TestVectorKeyIDs checks that Result.KeyID names the credential that actually signed.
func TestVectorKeyIDs(t *testing.T) {
	vf := loadVectors(t)
	want := map[string]string{
		"lms-lead-ok":                    "leadDeliveryKey",
		"lms-chat-ok":                    "chatMessagePushKey",
		"mpapi-bid-placed-ok":            "secret#0",
		"offerte-lead-created-ok":        "secret#0",
		"lokalebasen-enquiry-created-ok": "token#0",
	}
	for _, v := range vf.Vectors {
		id, ok := want[v.Name]
		if !ok {
			continue
		}
		delete(want, v.Name)
		res, err := verifierFor(t, vf, v).Verify(requestFor(t, v))
		if err != nil || res.KeyID != id {
			t.Errorf("%s: got %q, %v; want %q", v.Name, res.KeyID, err, id)
		}
	}
	for name := range want {
		t.Errorf("vector %s not found", name)
	}
}

var sigParam = regexp.MustCompile(`signature="([0-9a-f]+)"`)

// TestVectorBase64Signature: the draft encodes signatures in base64 while Marktplaats sends hex;
// the same signature must verify in either encoding.
func TestVectorBase64Signature(t *testing.T) {
	vf := loadVectors(t)
	v := vectorNamed(t, vf, "lms-lead-ok")
	m := sigParam.FindStringSubmatch(v.Headers["signature"])
	if m == nil {
		t.Fatal("lms-lead-ok has no hex signature parameter")
	}
	raw, err := hex.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	v.Headers = map[string]string{
		"digest":    v.Headers["digest"],
		"signature": strings.Replace(v.Headers["signature"], m[1], b64, 1),
	}
	res, err := verifierFor(t, vf, v).Verify(requestFor(t, v))
	if err != nil {
		t.Fatalf("base64 signature rejected: %v", err)
	}
	if res.KeyID != "leadDeliveryKey" {
		t.Errorf("key id %q", res.KeyID)
	}
}

func vectorNamed(tb testing.TB, vf *vectorFile, name string) vector {
	tb.Helper()
	for _, v := range vf.Vectors {
		if v.Name == name {
			return v
		}
	}
	tb.Fatalf("vector %s not found", name)
	return vector{}
}
