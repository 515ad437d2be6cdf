// Package natskey keeps the values that become NATS subjects, KV keys and
// message ids within what NATS accepts.
//
// A KV key travels as a subject ($KV.<bucket>.<key>, and inside a direct
// get's API subject), and a subject travels in a protocol control line. A
// control line longer than nats-server's max_control_line (4096 bytes by
// default) makes the server close the connection, and nats.go then marks it
// CLOSED and never reconnects: one long id in an authentic webhook would
// take every service on that connection down, and its redelivery would do
// it again after each restart. So every id from a payload is bounded with
// ID before it becomes part of a key, and every key is checked with
// CheckKey before it is used (nats.go checks the characters, not the
// length).
package natskey

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/leadstream/leadstream/pkg/eventid"
)

// MaxKeyLen bounds a KV key. With the bucket's prefix, a direct get's API
// prefix and a reply inbox it stays far below nats-server's default
// max_control_line of 4096 bytes.
const MaxKeyLen = 1024

// maxSubjectLen bounds a subject leadstream publishes to, for the same
// reason as MaxKeyLen.
const maxSubjectLen = 1024

// MaxIDLen bounds an id kept as it is. It is the edge's bound for provider
// event ids (services/edge/extract).
const MaxIDLen = 128

// hashPrefix starts every hashed id; the rest is the lower-case hex
// SHA-256 of the original (the form of eventid.BodyID).
const hashPrefix = eventid.BodyIDPrefix

// hashLen is the length of a hashed id.
const hashLen = len(hashPrefix) + 64

// ErrInvalidKey means a KV key does not satisfy nats.go's key rule or is
// longer than MaxKeyLen.
var ErrInvalidKey = errors.New("invalid KV key")

// ErrInvalidSubject means a subject is empty, too long, has an empty token,
// a wildcard, white space or a control character.
var ErrInvalidSubject = errors.New("invalid subject")

// Hash returns hashPrefix and the hex SHA-256 of s.
func Hash(s string) string { return eventid.BodyID([]byte(s)) }

// ID returns id as it is when it is at most MaxIDLen bytes of valid UTF-8
// without control characters, else Hash(id). Ids that are fine stay
// readable and unchanged; the rest become hashLen bytes.
//
// A provider id that is itself spelled like a hash ("sha256:" and 64 hex
// digits) is kept too: the Lokalebasen body hashes are such ids. Within one
// source it would name the same aggregate as the long id it is the hash of,
// which only the provider could bring about, with its own ids.
func ID(id string) string {
	if fine(id) {
		return id
	}
	return Hash(id)
}

// fine reports whether id may be kept as it is.
func fine(id string) bool {
	if len(id) > MaxIDLen || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// CheckKey returns nil when key may be used as a KV key: nats.go's rule
// (only [-/_=.a-zA-Z0-9], no leading or trailing ".", no empty token) and at
// most MaxKeyLen bytes. Its error wraps ErrInvalidKey and says what is
// wrong without quoting the key, which may carry payload values.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidKey, len(key), MaxKeyLen)
	case key[0] == '.' || key[len(key)-1] == '.' || strings.Contains(key, ".."):
		return fmt.Errorf("%w: empty token", ErrInvalidKey)
	}
	for i := 0; i < len(key); i++ {
		if !keyByte(key[i]) {
			return fmt.Errorf("%w: byte %d is not one of [-/_=.a-zA-Z0-9]", ErrInvalidKey, i)
		}
	}
	return nil
}

func keyByte(c byte) bool {
	return c == '-' || c == '/' || c == '_' || c == '=' || c == '.' ||
		'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// CheckSubject returns nil when subject may be published to: at most
// maxSubjectLen bytes, no empty token, no wildcard token, no white space
// or control character. Its error wraps ErrInvalidSubject.
func CheckSubject(subject string) error {
	if subject == "" {
		return fmt.Errorf("%w: empty", ErrInvalidSubject)
	}
	if len(subject) > maxSubjectLen {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidSubject, len(subject), maxSubjectLen)
	}
	for i, tok := range strings.Split(subject, ".") {
		switch tok {
		case "":
			return fmt.Errorf("%w: token %d is empty", ErrInvalidSubject, i)
		case "*", ">":
			return fmt.Errorf("%w: token %d is a wildcard", ErrInvalidSubject, i)
		}
	}
	for i := 0; i < len(subject); i++ {
		if c := subject[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("%w: byte %d is white space or a control character", ErrInvalidSubject, i)
		}
	}
	return nil
}
