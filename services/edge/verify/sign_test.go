package verify

import (
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"testing"
	"time"
)

// TestSignCavageReproducesVector: the simulate command must send exactly what Marktplaats sends.
// The vector was made with the openssl command line; PKCS#1 v1.5 is deterministic, so signing
// the same body with the same key at the same time must give the same headers byte for byte.
func TestSignCavageReproducesVector(t *testing.T) {
	vf := loadVectors(t)
	for _, tt := range []struct{ vector, key string }{
		{"lms-lead-ok", "leadDeliveryKey"},
		{"lms-chat-ok", "chatMessagePushKey"},
	} {
		t.Run(tt.vector, func(t *testing.T) {
			v := vectorNamed(t, vf, tt.vector)
			body, err := base64.StdEncoding.DecodeString(v.BodyBase64)
			if err != nil {
				t.Fatal(err)
			}
			digest, sig := SignCavage(loadPrivateKey(t, tt.key), tt.key, v.Method, v.Path, 1795600000, body)
			if digest != v.Headers["digest"] {
				t.Errorf("digest\n got %s\nwant %s", digest, v.Headers["digest"])
			}
			if sig != v.Headers["signature"] {
				t.Errorf("signature\n got %s\nwant %s", sig, v.Headers["signature"])
			}
		})
	}
}

// TestSignCavageRoundTrip: whatever SignCavage makes, NewCavage accepts, for any method case and
// path, and with the keyId it was made for.
func TestSignCavageRoundTrip(t *testing.T) {
	k := loadCavageKeys(t)
	v := k.verifier()
	for _, tt := range []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/hooks/mp-leads", []byte(`{"leadId":"L-1"}`)},
		{"post", "/hooks/mp-leads?x=1", nil},
		{"PUT", "/", []byte("\x00\xff")},
	} {
		digest, sig := SignCavage(k.chat, "chatMessagePushKey", tt.method, tt.path, testNow-10, tt.body)
		h := http.Header{"Digest": {digest}, "Signature": {sig}}
		res, err := v.Verify(&Request{Method: tt.method, Path: tt.path, Header: h, Body: tt.body})
		if err != nil || res.KeyID != "chatMessagePushKey" {
			t.Errorf("%s %s: got %q, %v", tt.method, tt.path, res.KeyID, err)
		}
		// The same headers at another time are a replay.
		late := NewCavage(map[string]*rsa.PublicKey{"chatMessagePushKey": &k.chat.PublicKey}, time.Minute,
			func() time.Time { return time.Unix(testNow+3600, 0) })
		if _, err := late.Verify(&Request{Method: tt.method, Path: tt.path, Header: h, Body: tt.body}); err == nil {
			t.Errorf("%s %s: replay an hour later accepted", tt.method, tt.path)
		}
	}
}

func TestHMACHex(t *testing.T) {
	// RFC 4231, test case 2.
	got := HMACHex([]byte("Jefe"), []byte("what do ya want for nothing?"))
	if want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
