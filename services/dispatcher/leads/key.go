package leads

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/leadstream/leadstream/pkg/natskey"
)

// Key returns the KV key of an aggregate id. Keys are readable and
// injective: each "/"-separated segment becomes a "."-separated token, so
// "offerte/lead/12345" is "offerte.lead.12345" and keys can be matched token
// by token with NATS wildcards. Inside a segment the bytes [-_A-Za-z0-9]
// stay as they are and every other byte (".", "=", ":", space, non-ASCII,
// ...) is escaped as "=XX" in upper-case hex; an empty segment is a lone "="
// (keys may not have empty tokens).
//
// A key longer than natskey.MaxKeyLen would make nats-server close the
// connection, so such an aggregate is keyed with each segment longer than
// natskey.MaxIDLen replaced by its natskey.Hash first (as the normalizer
// spells a long id in the aggregates it builds), and if that is still too
// long, as "=h" and the hex SHA-256 of the whole aggregate, a token no
// escaping produces. Injectivity then holds up to SHA-256 collisions, and
// an over-long aggregate shares its key with the one that spells its long
// segments as their hashes. Keys within the bound are as they always were.
//
// The result always satisfies nats.go's key rule ([-/_=.A-Za-z0-9]+, no
// leading, trailing or double "."), natskey.CheckKey, and NATS subject
// rules (no spaces, "*" or ">"). It is injective within the bound because
// "." only ever separates tokens and a token, either "=" or a run of kept
// bytes and "=XX" escapes, decodes uniquely.
func Key(aggregate string) string {
	if k := encode(aggregate, false); len(k) <= natskey.MaxKeyLen {
		return k
	}
	if k := encode(aggregate, true); len(k) <= natskey.MaxKeyLen {
		return k
	}
	sum := sha256.Sum256([]byte(aggregate))
	return "=h" + hex.EncodeToString(sum[:])
}

// encode spells aggregate as a key, with segments longer than
// natskey.MaxIDLen hashed when hashLong is set.
func encode(aggregate string, hashLong bool) string {
	var b strings.Builder
	b.Grow(len(aggregate) + 8)
	for i, seg := range strings.Split(aggregate, "/") {
		if i > 0 {
			b.WriteByte('.')
		}
		if seg == "" {
			b.WriteByte('=')
			continue
		}
		if hashLong && len(seg) > natskey.MaxIDLen {
			seg = natskey.Hash(seg)
		}
		for j := 0; j < len(seg); j++ {
			c := seg[j]
			if keptByte(c) {
				b.WriteByte(c)
				continue
			}
			const hex = "0123456789ABCDEF"
			b.WriteByte('=')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0x0f])
		}
	}
	return b.String()
}

func keptByte(c byte) bool {
	return c == '-' || c == '_' ||
		'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
