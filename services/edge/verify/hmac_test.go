package verify

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestHMACVerify(t *testing.T) {
	body := []byte(`{"id":"e-1","eventType":"BidPlacedEvent"}`)
	secret := []byte("s3cr3t")
	mac := HMACHex(secret, body)
	v := NewHMAC("X-Ecg-Signature", [][]byte{secret})

	tests := []struct {
		name   string
		values []string // header lines; nil: no header
		want   error
	}{
		{"lower-case hex", []string{mac}, nil},
		{"upper-case hex", []string{strings.ToUpper(mac)}, nil},
		{"mixed-case hex", []string{strings.ToUpper(mac[:10]) + mac[10:]}, nil},
		{"surrounding whitespace", []string{" " + mac + "\t"}, nil},
		{"absent", nil, ErrMissingSignature},
		{"empty", []string{""}, ErrMissingSignature},
		{"blank", []string{"  "}, ErrMissingSignature},
		{"repeated", []string{mac, mac}, ErrMalformed},
		{"not hex", []string{strings.Repeat("zz", 32)}, ErrMalformed},
		{"too short", []string{mac[:62]}, ErrMalformed},
		{"too long", []string{mac + "00"}, ErrMalformed},
		{"with algorithm prefix", []string{"sha256=" + mac}, ErrMalformed},
		{"base64 instead of hex", []string{base64.StdEncoding.EncodeToString([]byte(mac[:32]))}, ErrMalformed},
		{"MAC under another secret", []string{HMACHex([]byte("not-the-secret"), body)}, ErrBadSignature},
		{"MAC of another body", []string{HMACHex(secret, append(body, ' '))}, ErrBadSignature},
		{"plain SHA-256 of the body", []string{HMACHex(nil, body)}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, val := range tt.values {
				h.Add("x-ecg-signature", val)
			}
			res, err := v.Verify(&Request{Method: "POST", Path: "/hooks/mp-api", Header: h, Body: body})
			if tt.want == nil {
				if err != nil || res.KeyID != "secret#0" {
					t.Fatalf("want accepted as secret#0, got %q, %v", res.KeyID, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("want %v, got %v", tt.want, err)
			}
			if strings.Contains(err.Error(), string(secret)) || strings.Contains(err.Error(), mac) {
				t.Errorf("error %q reveals the secret or MAC", err)
			}
		})
	}
}

// TestHMACEmptySecret: a MAC under an empty key can be computed by anyone, so a misconfigured
// empty secret must not turn into "accept whoever knows the body".
func TestHMACEmptySecret(t *testing.T) {
	body := []byte(`{"id":"e-1"}`)
	v := NewHMAC("X-Ecg-Signature", [][]byte{nil, []byte("s3cr3t")})
	h := http.Header{"X-Ecg-Signature": {HMACHex(nil, body)}}
	if _, err := v.Verify(&Request{Header: h, Body: body}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("empty secret: want ErrBadSignature, got %v", err)
	}
	h.Set("X-Ecg-Signature", HMACHex([]byte("s3cr3t"), body))
	if res, err := v.Verify(&Request{Header: h, Body: body}); err != nil || res.KeyID != "secret#1" {
		t.Fatalf("got %q, %v; want secret#1 (index into the configuration)", res.KeyID, err)
	}
}

// TestHMACFirstMatchReported: a secret listed twice (old and new equal during a botched rotation)
// is reported by its first position, so KeyID is stable.
func TestHMACFirstMatchReported(t *testing.T) {
	body := []byte(`{}`)
	v := NewHMAC("X-Ecg-Signature", [][]byte{[]byte("a"), []byte("b"), []byte("b")})
	res, err := v.Verify(&Request{Header: http.Header{"X-Ecg-Signature": {HMACHex([]byte("b"), body)}}, Body: body})
	if err != nil || res.KeyID != "secret#1" {
		t.Fatalf("got %q, %v; want secret#1", res.KeyID, err)
	}
}

// TestNewHMACCopiesSecrets: the configuration may be reloaded or zeroed by its owner; a built
// verifier must not change with it.
func TestNewHMACCopiesSecrets(t *testing.T) {
	body := []byte(`{}`)
	secret := []byte("s3cr3t")
	v := NewHMAC("X-Ecg-Signature", [][]byte{secret})
	mac := HMACHex(secret, body)
	copy(secret, "xxxxxx")
	if _, err := v.Verify(&Request{Header: http.Header{"X-Ecg-Signature": {mac}}, Body: body}); err != nil {
		t.Fatal(err)
	}
}

// FuzzHMACVerify: a header value is accepted exactly when it is the body's MAC (in any letter
// case, around optional blanks); nothing else, however close, gets in.
func FuzzHMACVerify(f *testing.F) {
	vf := loadVectors(f)
	secret := []byte(vf.Secrets.MPAPI)
	for _, v := range vf.Vectors {
		if v.Source != "mp-api" {
			continue
		}
		body, _ := base64.StdEncoding.DecodeString(v.BodyBase64)
		f.Add(v.Headers["X-Ecg-Signature"], body)
	}
	f.Add(strings.Repeat("0", 64), []byte{})
	v := NewHMAC("X-Ecg-Signature", [][]byte{secret})
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		h := http.Header{}
		if header != "" {
			h.Set("X-Ecg-Signature", header)
		}
		_, err := v.Verify(&Request{Method: "POST", Path: "/hooks/mp-api", Header: h, Body: body})
		if perr := v.Precheck(&Request{Method: "POST", Path: "/hooks/mp-api", Header: h}); perr != nil && (err == nil || Reason(perr) != Reason(err)) {
			t.Fatalf("Precheck refuses with %v, Verify says %v", perr, err)
		}
		correct := strings.EqualFold(strings.Trim(header, " \t"), HMACHex(secret, body))
		switch {
		case err == nil && !correct:
			t.Fatalf("accepted %q, which is not the MAC of the body", header)
		case err != nil && correct:
			t.Fatalf("rejected the correct MAC: %v", err)
		case err != nil && Reason(err) == "unknown":
			t.Fatalf("error %v wraps no sentinel", err)
		}
	})
}

func BenchmarkHMACVerify(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<10)
	secret := []byte("s3cr3t")
	v := NewHMAC("X-Ecg-Signature", [][]byte{secret})
	r := &Request{Method: "POST", Path: "/hooks/mp-api", Header: http.Header{"X-Ecg-Signature": {HMACHex(secret, body)}}, Body: body}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHMACVerifyRotation: during a rotation every request pays for both secrets.
func BenchmarkHMACVerifyRotation(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1<<10)
	v := NewHMAC("X-Ecg-Signature", [][]byte{[]byte("old"), []byte("new")})
	r := &Request{Method: "POST", Path: "/hooks/mp-api", Header: http.Header{"X-Ecg-Signature": {HMACHex([]byte("new"), body)}}, Body: body}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
