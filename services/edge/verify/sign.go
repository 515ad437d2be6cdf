package verify

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
)

// standardHeaders is what Marktplaats LMS always signs, in its order.
var standardHeaders = []string{pseudoRequestTarget, pseudoCreated, "digest"}

// SignCavage signs a request exactly as Marktplaats LMS does, so that the simulate command and
// tests produce what the edge will meet in production: digest is "SHA-256=<lowercase hex>" and
// signature is keyId="..",algorithm="RSA",created=..,headers="(request-target) (created) digest",
// signature="<lowercase hex>". RSA PKCS#1 v1.5 is deterministic, so the same inputs always give
// the same headers. keyID must not contain a double quote. It panics if key cannot sign a SHA-256
// digest (a key under 1024 bits), which is a programming error, not an input error.
func SignCavage(key *rsa.PrivateKey, keyID, method, path string, created int64, body []byte) (digest, signature string) {
	sum := sha256.Sum256(body)
	digest = "SHA-256=" + hex.EncodeToString(sum[:])
	sig := Signature{KeyID: keyID, Algorithm: "RSA", Created: created, HasCreated: true, Headers: standardHeaders}
	msg, err := signingString(&sig, method, path, http.Header{"Digest": {digest}})
	if err != nil {
		panic("verify: SignCavage: " + err.Error()) // unreachable: every standard header is present
	}
	hashed := sha256.Sum256(msg)
	raw, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, hashed[:])
	if err != nil {
		panic("verify: SignCavage: " + err.Error())
	}
	signature = `keyId="` + keyID + `",algorithm="RSA",created=` + strconv.FormatInt(created, 10) +
		`,headers="(request-target) (created) digest",signature="` + hex.EncodeToString(raw) + `"`
	return digest, signature
}

// HMACHex returns the lowercase hex HMAC-SHA256 of body under secret: the X-Ecg-Signature and
// x-offerte-adviseur-signature header value a provider would send.
func HMACHex(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}
