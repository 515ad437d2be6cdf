// Package eventid derives leadstream's deterministic event ids, so that the
// edge, a re-normalization and a replay all name one provider event the same.
package eventid

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/google/uuid"
)

// namespace is the UUIDv5 namespace of leadstream event ids. Never change it:
// every stored id derives from it.
var namespace = uuid.MustParse("6f1c2b8e-1d7a-5c3e-9b0f-4a2d8e7c6b51")

// New returns the event id of a provider event: a UUIDv5 of source and the
// provider's own event id. The same inputs always give the same id.
func New(source, providerEventID string) string {
	return uuid.NewSHA1(namespace, []byte(source+"\x00"+providerEventID)).String()
}

// BodyIDPrefix starts every BodyID.
const BodyIDPrefix = "sha256:"

// BodyID is the provider event id used when a provider sends none: the hex
// SHA-256 of the body, prefixed so it cannot collide with a provider's id.
func BodyID(body []byte) string {
	sum := sha256.Sum256(body)
	return BodyIDPrefix + hex.EncodeToString(sum[:])
}
