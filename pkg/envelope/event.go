package envelope

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// EVENTS header names: the CloudEvents NATS protocol binding in binary mode
// maps every context attribute, extensions included, to "ce-<attribute>".
// Values are percent-encoded (HeaderEncode); read them with HeaderValue or
// FromEventMsg, never with a bare Header.Get, or a value with a space or a
// non-ASCII character comes out encoded.
const (
	HdrCESpecVersion     = "ce-specversion"
	HdrCEID              = "ce-id"
	HdrCEType            = "ce-type"
	HdrCESource          = "ce-source"
	HdrCETime            = "ce-time"
	HdrCESubject         = "ce-subject"
	HdrCEDataContentType = "ce-datacontenttype"
	// HdrCETenant carries the extension attribute leadstreamtenant, as the
	// webhook adapter names it.
	HdrCETenant = "ce-leadstreamtenant"
	// HdrCEProvider carries the extension attribute leadstreamprovider.
	HdrCEProvider = "ce-leadstreamprovider"
)

// ceSpecVersion is the CloudEvents version of every EVENTS message.
const ceSpecVersion = "1.0"

// EventContentType is the datacontenttype of an EVENTS message: its data is
// a protobuf leadstream.v1.Event. It is written without the optional space
// and quotes of a media-type parameter, so that it needs no percent-encoding
// and reads the same in a client that does not decode ce-* headers (the Go
// CloudEvents SDK's NATS reader, the nats CLI).
const EventContentType = "application/protobuf;messageType=leadstream.v1.Event"

// CESource is the CloudEvents source of an event that arrived at the webhook
// source named source: "/leadstream/sources/<source>", a URI-reference as the
// webhook adapter writes it, so that an LMS sees one source on NATS and on
// its webhook.
func CESource(source string) string {
	return "/leadstream/sources/" + url.PathEscape(source)
}

// EventMessage is an EVENTS message decoded: its CloudEvents context
// attributes and its data, the protobuf encoding of a leadstream.v1.Event.
type EventMessage struct {
	SpecVersion     string
	ID              string
	Type            string
	Source          string
	Subject         string    // the aggregate, Event.aggregate_id
	Time            time.Time // zero when the message has no ce-time
	DataContentType string
	Tenant          string // extension leadstreamtenant
	Provider        string // extension leadstreamprovider
	Data            []byte
}

// EventMsg is the EVENTS message of ev on subject: data (the protobuf
// encoding of ev) as its body, ev's CloudEvents attributes as ce-* headers,
// and Nats-Msg-Id = the event id, so that JetStream drops a second publish
// of the same event within EVENTS' duplicate window.
func EventMsg(subject string, ev *leadstreamv1.Event, data []byte) *nats.Msg {
	h := make(nats.Header, 10)
	set := func(k, v string) {
		if v != "" {
			h[k] = []string{HeaderEncode(v)}
		}
	}
	h[nats.MsgIdHdr] = []string{ev.GetId()}
	set(HdrCESpecVersion, ceSpecVersion)
	set(HdrCEID, ev.GetId())
	set(HdrCEType, ev.GetType())
	set(HdrCESource, CESource(ev.GetSource()))
	// The provider's time when it gave one, else the edge's; ce-time is
	// optional, so an event with neither goes without.
	switch {
	case ev.GetOccurredAt().IsValid():
		set(HdrCETime, ev.GetOccurredAt().AsTime().UTC().Format(time.RFC3339Nano))
	case ev.GetReceivedAt().IsValid():
		set(HdrCETime, ev.GetReceivedAt().AsTime().UTC().Format(time.RFC3339Nano))
	}
	set(HdrCESubject, ev.GetAggregateId())
	set(HdrCEDataContentType, EventContentType)
	set(HdrCETenant, ev.GetTenant())
	set(HdrCEProvider, ev.GetProvider())
	return &nats.Msg{Subject: subject, Header: h, Data: data}
}

// FromEventMsg decodes the CloudEvents attributes of an EVENTS message. It
// fails when a ce-* value is not validly encoded, when one of the attributes
// CloudEvents requires (specversion, id, type, source) is missing, or when
// ce-time is not RFC 3339.
func FromEventMsg(m *nats.Msg) (*EventMessage, error) {
	var errs []error
	get := func(k string) string {
		v, err := HeaderValue(m.Header, k)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	e := &EventMessage{
		SpecVersion:     get(HdrCESpecVersion),
		ID:              get(HdrCEID),
		Type:            get(HdrCEType),
		Source:          get(HdrCESource),
		Subject:         get(HdrCESubject),
		DataContentType: get(HdrCEDataContentType),
		Tenant:          get(HdrCETenant),
		Provider:        get(HdrCEProvider),
		Data:            m.Data,
	}
	if t := get(HdrCETime); t != "" {
		at, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", HdrCETime, err))
		}
		e.Time = at
	}
	for _, req := range []struct{ name, v string }{
		{HdrCESpecVersion, e.SpecVersion}, {HdrCEID, e.ID}, {HdrCEType, e.Type}, {HdrCESource, e.Source},
	} {
		if req.v == "" {
			errs = append(errs, fmt.Errorf("%s missing", req.name))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("decoding the EVENTS message on %s: %w", m.Subject, errors.Join(errs...))
	}
	return e, nil
}

// HeaderValue is the decoded value of the ce-* header name in h, "" when h
// has none. The dispatcher reads ce-subject with it without decoding the
// whole message.
func HeaderValue(h nats.Header, name string) (string, error) {
	raw := h.Get(name)
	if raw == "" {
		// NATS header names are case-insensitive, nats.Header is not: a
		// sender other than EventMsg may have written Ce-Id.
		for k, vs := range h {
			if len(vs) > 0 && strings.EqualFold(k, name) {
				raw = vs[0]
				break
			}
		}
	}
	if raw == "" {
		return "", nil
	}
	v, err := HeaderDecode(raw)
	if err != nil {
		return "", fmt.Errorf("header %s: %w", name, err)
	}
	return v, nil
}

// ErrHeaderEncoding is returned by HeaderDecode for a value that is not
// validly encoded.
var ErrHeaderEncoding = errors.New("invalid CloudEvents header encoding")

// HeaderEncode percent-encodes s as the CloudEvents NATS binding requires of
// a header value: space, double quote, percent and every character outside
// U+0021-U+007E, control characters included, become %XY of each of their
// UTF-8 bytes, upper-case. A byte of s that is not UTF-8 is encoded as
// itself, so that HeaderDecode rejects it rather than pass it on changed.
func HeaderEncode(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if mustEncode(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if mustEncode(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// mustEncode works on bytes: every byte of a multi-byte UTF-8 character is
// 0x80 or above, so encoding byte by byte is encoding the character's UTF-8.
func mustEncode(c byte) bool {
	return c <= ' ' || c >= 0x7f || c == '"' || c == '%'
}

// HeaderDecode reverses HeaderEncode as the binding says a receiver must:
// first a value sent as an RFC 7230 quoted-string (as older versions of the
// binding allowed) is unquoted, then one round of percent-decoding is done,
// accepting lower-case hex and needlessly encoded characters, and the result
// must be UTF-8 (an overlong form such as %C0%A0 is rejected). Errors wrap
// ErrHeaderEncoding.
func HeaderDecode(v string) (string, error) {
	if strings.HasPrefix(v, `"`) {
		u, err := unquote(v)
		if err != nil {
			return "", err
		}
		v = u
	}
	if !strings.Contains(v, "%") {
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("%w: not UTF-8", ErrHeaderEncoding)
		}
		return v, nil
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b = append(b, v[i])
			continue
		}
		if i+2 >= len(v) {
			return "", fmt.Errorf("%w: %q at offset %d is cut short", ErrHeaderEncoding, v[i:], i)
		}
		hi, ok1 := unhex(v[i+1])
		lo, ok2 := unhex(v[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("%w: %q at offset %d is not %%XY", ErrHeaderEncoding, v[i:i+3], i)
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: decodes to bytes that are not UTF-8", ErrHeaderEncoding)
	}
	return string(b), nil
}

// unquote decodes an RFC 7230 quoted-string that is the whole of v:
// backslash escapes the next character.
func unquote(v string) (string, error) {
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			if i+1 >= len(v) {
				return "", fmt.Errorf("%w: quoted value ends in a backslash", ErrHeaderEncoding)
			}
			i++
			b.WriteByte(v[i])
		case '"':
			if i != len(v)-1 {
				return "", fmt.Errorf("%w: text after the closing quote", ErrHeaderEncoding)
			}
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("%w: quoted value without a closing quote", ErrHeaderEncoding)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
