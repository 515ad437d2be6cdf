// Package mapping turns one RAW webhook into a normalized leadstream.v1.Event.
//
// It is a pure function of its input: no NATS, no clock, no I/O. The same RAW
// message always gives the same event (same id, same content), so a
// redelivery, a crash-and-retry or a replay normalizes identically.
//
// Each provider has its own file with one field table: a struct mirroring the
// provider's payload, with json tags in the provider's spelling. The public
// specs are incomplete (see ../shared/seeds), so the tables accept unknown
// fields, both spellings where the docs disagree, and ids as strings or
// numbers; when a provider's full spec arrives, its table is the one place to
// correct.
package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/eventid"
	"github.com/leadstream/leadstream/pkg/natskey"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// Every error Map returns wraps exactly one of these; a normalizer
// dead-letters the message with Reason(err) as its label. Error texts name
// fields and types, never payload values: bodies carry personal data.
var (
	// ErrUnparseable means the body is not JSON of the expected shape: invalid
	// JSON, not an object, or a wrong JSON type where the structure depends on
	// it (eventData or payload not an object, a list that is an object, ...).
	ErrUnparseable = errors.New("unparseable payload")
	// ErrUnsupportedType means the body is a provider event type this version
	// does not map (e.g. the Marktplaats docs' placeholder "EventType"), the
	// edge classified it as kind "unknown", or its type does not match the
	// kind it was stored under.
	ErrUnsupportedType = errors.New("unsupported event type")
	// ErrMissingField means a field needed for the event's identity or
	// ordering is missing: a lead without lead id, a transaction without
	// transactionId, a chat message without conversationId, ...
	ErrMissingField = errors.New("missing field")
	// ErrKindMismatch means the payload is of another kind than the
	// credential that signed it says: a Marktplaats LMS lead signed with
	// the chat message key, or a chat message with the lead delivery key.
	// Mapped by the key, it would become an empty event of the wrong type.
	ErrKindMismatch = errors.New("payload kind does not match its signing key")
)

// Reason returns the dead-letter label of an error from Map:
// "unparseable", "unsupported_type", "missing_field", "kind_mismatch", or
// "unknown".
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrKindMismatch):
		return "kind_mismatch"
	case errors.Is(err, ErrUnparseable):
		return "unparseable"
	case errors.Is(err, ErrUnsupportedType):
		return "unsupported_type"
	case errors.Is(err, ErrMissingField):
		return "missing_field"
	default:
		return "unknown"
	}
}

// Kind splits an event type "<kind>.<action>" for subject building:
// "transaction.status_changed" gives ("transaction", "status_changed").
func Kind(eventType string) (kind, action string) {
	kind, action, _ = strings.Cut(eventType, ".")
	return kind, action
}

// mapper fills the provider part of ev (Type, OccurredAt, AggregateId, Data)
// from raw. The envelope part is already filled.
type mapper func(raw *envelope.Raw, ev *leadstreamv1.Event) error

// mappers holds one mapper per provider id.
var mappers = map[string]mapper{
	config.ProviderMarktplaatsLMS:  mapMarktplaatsLMS,
	config.ProviderMarktplaatsAPI:  mapMarktplaatsAPI,
	config.ProviderOfferteAdviseur: mapOfferteAdviseur,
	config.ProviderLokalebasen:     mapLokalebasen,
}

// Map normalizes one RAW webhook. ref locates it in the RAW stream and is
// stored in the event as is. The event's Payload shares raw.Body's bytes.
//
// The envelope comes from raw: Id is raw.EventID, or eventid.New(source,
// provider event id) when unset; a missing provider event id is the body's
// eventid.BodyID, as the edge would have chosen. The rest comes from the
// provider's payload. Errors wrap exactly one of ErrUnparseable,
// ErrUnsupportedType, ErrMissingField and ErrKindMismatch.
func Map(raw *envelope.Raw, ref *leadstreamv1.RawRef) (*leadstreamv1.Event, error) {
	if raw == nil {
		return nil, fmt.Errorf("%w: no RAW envelope", ErrUnparseable)
	}
	m, ok := mappers[raw.Provider]
	if !ok {
		return nil, fmt.Errorf("%w: unknown provider %s", ErrUnsupportedType, quote(raw.Provider))
	}
	ev := newEvent(raw, ref)
	if err := m(raw, ev); err != nil {
		return nil, err
	}
	// The edge stored the body under a kind; an event of another kind would
	// bypass the consumer that owns it. An empty kind (an envelope from
	// before kinds, a hand-built one) takes the body's word.
	if kind, _ := Kind(ev.Type); raw.Kind != "" && raw.Kind != kind {
		return nil, fmt.Errorf("%w: %s %s stored as kind %s", ErrUnsupportedType, raw.Provider, ev.Type, quote(raw.Kind))
	}
	return ev, nil
}

// newEvent fills the envelope from raw. Strings from outside the payload's
// JSON are made valid UTF-8: proto refuses to marshal anything else.
func newEvent(raw *envelope.Raw, ref *leadstreamv1.RawRef) *leadstreamv1.Event {
	source := clean(raw.Source)
	pid := clean(raw.ProviderEventID)
	if pid == "" {
		pid = eventid.BodyID(raw.Body)
	}
	id := clean(raw.EventID)
	if id == "" {
		id = eventid.New(source, pid)
	}
	ev := &leadstreamv1.Event{
		Id:                 id,
		Tenant:             clean(raw.Tenant),
		Source:             source,
		Provider:           clean(raw.Provider),
		ProviderEventId:    pid,
		RawRef:             cleanRef(ref),
		Payload:            raw.Body,
		PayloadContentType: clean(raw.ContentType),
	}
	if !raw.ReceivedAt.IsZero() {
		ev.ReceivedAt = timestamp(raw.ReceivedAt)
	}
	return ev
}

// aggregate builds an aggregate id "<source>/<type>/<id>". The id comes
// from the payload, and the aggregate becomes KV keys, a message id and a
// header downstream: natskey.ID keeps an id that is short and printable as
// it is and replaces any other by its "sha256:<hex>", as the edge does for
// provider event ids. A lead and the chat messages of one long
// conversation id still share their aggregate.
func aggregate(ev *leadstreamv1.Event, typ, id string) string {
	return ev.Source + "/" + typ + "/" + natskey.ID(id)
}

// clean makes s valid UTF-8.
func clean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// cleanRef returns ref, or a sanitized copy when its strings are not valid
// UTF-8 (a subject is built from envelope headers); the caller's value is
// never modified.
func cleanRef(ref *leadstreamv1.RawRef) *leadstreamv1.RawRef {
	if ref == nil || (utf8.ValidString(ref.Stream) && utf8.ValidString(ref.Subject)) {
		return ref
	}
	return &leadstreamv1.RawRef{Stream: clean(ref.Stream), Sequence: ref.Sequence, Subject: clean(ref.Subject)}
}

// maxQuoted bounds a type name quoted in an error message.
const maxQuoted = 64

// quote renders a non-personal value (an event type, a kind) for an error
// message: valid UTF-8, bounded, quoted.
func quote(s string) string {
	s = clean(s)
	if len(s) > maxQuoted {
		cut := maxQuoted
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return strconv.Quote(s)
}

// unsupported reports an event type this version does not map. typ is the
// provider's type discriminator, which is not personal data.
func unsupported(provider, field string, typ text) error {
	return fmt.Errorf("%w: %s %s %s", ErrUnsupportedType, provider, field, quote(string(typ)))
}

// missing reports a missing identity field by its JSON path.
func missing(provider, what, field string) error {
	return fmt.Errorf("%w: %s %s without %s", ErrMissingField, provider, what, field)
}

// decode reads body, which must be one JSON object, into the field table p.
// Its errors name the JSON path and the expected type, never a value: a
// json.SyntaxError's text quotes the offending character.
func decode(provider string, body []byte, p any) error {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: %s body is not a JSON object", ErrUnparseable, provider)
	}
	err := json.Unmarshal(body, p)
	if err == nil {
		return nil
	}
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("%w: %s body is invalid JSON at byte %d", ErrUnparseable, provider, syntaxErr.Offset)
	case errors.As(err, &typeErr):
		return fmt.Errorf("%w: %s field %s is not a JSON %s", ErrUnparseable, provider, typeErr.Field, jsonType(typeErr.Type))
	default:
		return fmt.Errorf("%w: %s body is invalid JSON", ErrUnparseable, provider)
	}
}

// jsonType names the JSON type a Go type decodes from.
func jsonType(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	default:
		return "number"
	}
}

// The scalar types below are what field tables use instead of string, int
// and bool. They never fail: a scalar of an unexpected JSON type reads as
// absent rather than dead-lettering the whole event over a secondary field.
// Fields an event cannot do without are checked by the mappers
// (ErrMissingField); structure (objects, arrays) is checked by
// encoding/json (ErrUnparseable).

// text is a scalar read as a string whatever JSON type it came as: providers
// send ids as strings or numbers (12345 reads as "12345"). null, objects and
// arrays read as "".
type text string

// UnmarshalJSON implements json.Unmarshaler.
func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		*t = ""
		return nil
	}
	switch b[0] {
	case '"':
		s, err := unquote(b)
		if err != nil {
			return err
		}
		*t = text(s)
	case '{', '[', 'n':
		*t = ""
	default: // a number, true or false: their JSON text
		*t = text(b)
	}
	return nil
}

// unquote decodes a JSON string literal; invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func unquote(b []byte) (string, error) {
	if len(b) >= 2 && bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
		return string(b[1 : len(b)-1]), nil
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// str returns t without surrounding white space.
func (t text) str() string { return strings.TrimSpace(string(t)) }

// first returns the first non-empty of ts, trimmed: where the docs spell
// one field two ways (bidId/id, lead_id/id).
func first(ts ...text) string {
	for _, t := range ts {
		if s := t.str(); s != "" {
			return s
		}
	}
	return ""
}

// number is an integer sent as a JSON number or a numeric string ("279").
// Anything else, including a fraction, reads as absent.
type number struct {
	n  int64
	ok bool
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *number) UnmarshalJSON(b []byte) error {
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	n.n, n.ok = parseInt(t.str())
	return nil
}

// parseInt reads an integer, also written as a float without fraction
// ("1100.0", "1.1e3").
func parseInt(s string) (int64, bool) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

// int32 returns n when it fits an int32, else 0.
func (n number) int32() int32 {
	if !n.ok || n.n < math.MinInt32 || n.n > math.MaxInt32 {
		return 0
	}
	return int32(n.n)
}

// boolean is a truth value sent as true/false, "true"/"false" or 1/0. Anything
// else reads as false.
type boolean bool

// UnmarshalJSON implements json.Unmarshaler.
func (f *boolean) UnmarshalJSON(b []byte) error {
	var t text
	if err := t.UnmarshalJSON(b); err != nil {
		return err
	}
	v, err := strconv.ParseBool(t.str())
	*f = boolean(err == nil && v)
	return nil
}

// list is an array of scalars; a single scalar reads as a list of one.
// Empty entries are dropped.
type list []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *list) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*l = nil
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '[':
		var ts []text
		if err := json.Unmarshal(b, &ts); err != nil {
			return err
		}
		for _, t := range ts {
			if s := t.str(); s != "" {
				*l = append(*l, s)
			}
		}
	case '{':
		return &json.UnmarshalTypeError{Value: "object", Type: reflect.TypeFor[[]string]()}
	default:
		var t text
		if err := t.UnmarshalJSON(b); err != nil {
			return err
		}
		if s := t.str(); s != "" {
			*l = list{s}
		}
	}
	return nil
}

// one is a HAL relation (_embedded, _links), which HAL lets a server send as
// one object or as an array of them: the first element is taken. null or an
// empty array leave it unset.
type one[T any] struct {
	v *T
}

// get returns the relation, or a zero T when there is none.
func (o one[T]) get() T {
	if o.v == nil {
		var zero T
		return zero
	}
	return *o.v
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *one[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	o.v = nil
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '{':
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
		o.v = v
	case '[':
		var vs []T
		if err := json.Unmarshal(b, &vs); err != nil {
			return err
		}
		if len(vs) > 0 {
			o.v = &vs[0]
		}
	case 'n':
	default:
		return &json.UnmarshalTypeError{Value: "scalar", Type: reflect.TypeFor[T]()}
	}
	return nil
}

// timeLayouts are the ISO 8601 variants providers send. time.Parse accepts a
// fraction of a second after the seconds in each of them.
var timeLayouts = []string{
	time.RFC3339,               // 2026-11-20T10:15:00Z, 2026-11-20T11:02:13.000Z, ...+01:00
	"2006-01-02T15:04:05Z0700", // 2026-11-20T12:01:02.000+0000 (Freespee, Java's SSSZ)
	"2006-01-02T15:04:05Z07",   // +01
	"2006-01-02T15:04:05",      // no zone: UTC (Freespee times are UTC)
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z0700",
	"2006-01-02 15:04:05",
	time.DateOnly,
}

// parseTime reads a provider time; nil when it is absent, in no known layout
// or outside the range a protobuf Timestamp holds.
func parseTime(t text) *timestamppb.Timestamp {
	s := t.str()
	if len(s) < len(time.DateOnly) {
		return nil
	}
	for _, layout := range timeLayouts {
		if at, err := time.Parse(layout, s); err == nil {
			return timestamp(at)
		}
	}
	return nil
}

// timestamp converts at; nil when a Timestamp cannot hold it.
func timestamp(at time.Time) *timestamppb.Timestamp {
	ts := timestamppb.New(at)
	if ts.CheckValid() != nil {
		return nil
	}
	return ts
}

// isoDate reads a date as YYYY-MM-DD; a full timestamp is cut to its date,
// anything else is kept as sent.
func isoDate(t text) string {
	s := t.str()
	if len(s) == len(time.DateOnly) {
		return s
	}
	if ts := parseTime(t); ts != nil {
		return ts.AsTime().Format(time.DateOnly)
	}
	return s
}

// money is an amount in cents; nil when none was sent. The currency is
// "EUR" where the provider does not say.
func money(cents number, currency text) *leadstreamv1.Money {
	if !cents.ok {
		return nil
	}
	cur := strings.ToUpper(currency.str())
	if cur == "" {
		cur = "EUR"
	}
	return &leadstreamv1.Money{AmountCents: cents.n, Currency: cur}
}

// nonEmpty returns m, or nil when no field of it is set, so that an absent
// object stays absent instead of becoming {}.
func nonEmpty[M interface {
	proto.Message
	comparable
}](m M) M {
	var zero M
	if m == zero || proto.Size(m) == 0 {
		return zero
	}
	return m
}

// hrefSegment returns the path segment after the segment named after in a
// HAL href: hrefSegment("/v1/advertisements/m123/transactions/9",
// "advertisements") is "m123".
func hrefSegment(href text, after string) string {
	path := href.str()
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	parts := strings.Split(path, "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == after && parts[i+1] != "" {
			return parts[i+1]
		}
	}
	return ""
}
