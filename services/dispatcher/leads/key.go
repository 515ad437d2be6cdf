package leads

import "strings"

// Key returns the KV key of an aggregate id. Keys are readable and
// injective: each "/"-separated segment becomes a "."-separated token, so
// "offerte/lead/12345" is "offerte.lead.12345" and keys can be matched token
// by token with NATS wildcards. Inside a segment the bytes [-_A-Za-z0-9]
// stay as they are and every other byte (".", "=", ":", space, non-ASCII,
// ...) is escaped as "=XX" in upper-case hex; an empty segment is a lone "="
// (keys may not have empty tokens).
//
// The result always satisfies nats.go's key rule ([-/_=.A-Za-z0-9]+, no
// leading, trailing or double ".") and NATS subject rules (no spaces, "*"
// or ">"). It is injective because "." only ever separates tokens and a
// token, either "=" or a run of kept bytes and "=XX" escapes, decodes
// uniquely.
func Key(aggregate string) string {
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
