package envelope_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natstest"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// TestHeaderEncode: the characters the CloudEvents NATS binding says must be
// percent-encoded are, as the UTF-8 of the character, upper-case; nothing
// else is.
func TestHeaderEncode(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"printable ASCII stays", "mp-leads/conversation/c2b7e4d0-1", "mp-leads/conversation/c2b7e4d0-1"},
		{"every printable but space, quote, percent", "!#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", "!#$&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"},
		{"empty", "", ""},
		{"space", "a b", "a%20b"},
		{"double quote", `say "hi"`, "say%20%22hi%22"},
		{"percent", "100%", "100%25"},
		{"already encoded text is encoded again", "a%20b", "a%2520b"},
		{"the binding's example", "Euro \u20ac \U0001F600", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
		{"latin-1 range", "caf\u00e9", "caf%C3%A9"},
		{"C0 controls", "a\tb\r\nc\x00", "a%09b%0D%0Ac%00"},
		{"DEL and C1 controls", "\x7f\u0085", "%7F%C2%85"},
		{"a lone invalid byte as itself", "a\xffb", "a%FFb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := envelope.HeaderEncode(tc.in); got != tc.want {
				t.Errorf("HeaderEncode(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestHeaderDecode: what a receiver must accept (lower-case hex, needless
// encoding, the quoted form of older senders) and must reject (invalid
// UTF-8, overlong forms, broken escapes).
func TestHeaderDecode(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "lead.created", "lead.created"},
		{"upper-case hex", "Euro%20%E2%82%AC%20%F0%9F%98%80", "Euro \u20ac \U0001F600"},
		{"lower-case hex", "caf%c3%a9%20%e2%82%ac", "caf\u00e9 \u20ac"},
		{"needlessly encoded", "%6C%65%61%64", "lead"},
		{"one round only", "a%2520b", "a%20b"},
		{"quoted-string of an older sender", `"say \"hi\" now"`, `say "hi" now`},
		{"quoted then percent-decoded", `"a%20b"`, "a b"},
		{"quote inside a value is kept", `a"b`, `a"b`},
		{"raw UTF-8 of an older sender", "caf\u00e9", "caf\u00e9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := envelope.HeaderDecode(tc.in)
			if err != nil || got != tc.want {
				t.Errorf("HeaderDecode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, in string }{
		{"overlong space", "%C0%A0"},
		{"lone continuation byte", "%80"},
		{"invalid byte", "a%FFb"},
		{"truncated sequence", "%E2%82"},
		{"encoded surrogate half", "%ED%A0%80"},
		{"percent at the end", "abc%"},
		{"one hex digit", "abc%4"},
		{"not hex", "%G0"},
		{"raw invalid UTF-8", "a\xffb"},
		{"unterminated quote", `"abc`},
		{"text after the closing quote", `"abc"d`},
		{"quote ending in a backslash", `"abc\`},
	} {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			got, err := envelope.HeaderDecode(tc.in)
			if !errors.Is(err, envelope.ErrHeaderEncoding) {
				t.Errorf("HeaderDecode(%q) = %q, %v; want ErrHeaderEncoding", tc.in, got, err)
			}
		})
	}
}

// TestHeaderRoundTrip: every valid UTF-8 string survives, and its encoding
// is printable ASCII without space, quote or a percent that is not an escape.
func TestHeaderRoundTrip(t *testing.T) {
	for _, s := range []string{
		"", "plain", "a b", `"quoted"`, "100% sure", "%41", "\x00\x1f\x7f", "tab\there",
		"Zoë's Ökonomie – 10 €", "日本語のリード", "emoji \U0001F600\U0001F44D", "\uFEFFbom", "\U0010FFFF",
	} {
		checkRoundTrip(t, s)
	}
}

func checkRoundTrip(t *testing.T, s string) {
	t.Helper()
	enc := envelope.HeaderEncode(s)
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; c < 0x21 || c > 0x7e || c == '"' {
			t.Fatalf("HeaderEncode(%q) = %q holds byte %#x", s, enc, c)
		}
	}
	dec, err := envelope.HeaderDecode(enc)
	if err != nil || dec != s {
		t.Fatalf("HeaderDecode(HeaderEncode(%q)) = %q, %v", s, dec, err)
	}
}

// FuzzHeaderDecode: a ce-* header is untrusted input. Decoding never
// panics, accepts only UTF-8, and what it accepts encodes back to a value
// that decodes to the same.
func FuzzHeaderDecode(f *testing.F) {
	for _, s := range []string{"lead.created", "Euro%20%E2%82%AC", "%C0%A0", `"a\"b"`, "%", "%zz", "caf\u00e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		dec, err := envelope.HeaderDecode(v)
		if err != nil {
			if !errors.Is(err, envelope.ErrHeaderEncoding) {
				t.Fatalf("HeaderDecode(%q): error %v does not wrap ErrHeaderEncoding", v, err)
			}
			return
		}
		if !utf8.ValidString(dec) {
			t.Fatalf("HeaderDecode(%q) = %q, not UTF-8", v, dec)
		}
		checkRoundTrip(t, dec)
	})
}

func sampleEvent() *leadstreamv1.Event {
	at := time.Date(2026, 11, 20, 10, 15, 0, 123000000, time.UTC)
	return &leadstreamv1.Event{
		Id:          "626de9e6-4f4c-5b0e-9d6a-3c1f2e7a8b90",
		Type:        "chat.message",
		Tenant:      "Zoë's garage",
		Source:      "mp-leads",
		Provider:    "marktplaats-lms",
		OccurredAt:  timestamppb.New(at),
		ReceivedAt:  timestamppb.New(at.Add(time.Second)),
		AggregateId: "mp-leads/conversation/c2b7e4d0 \"ü\" 100%",
		Data:        &leadstreamv1.Event_ChatMessage{ChatMessage: &leadstreamv1.ChatMessage{MessageId: "m-1"}},
	}
}

// TestEventMsg: the headers EventMsg writes, encoded, and FromEventMsg
// giving back ev's attributes after a real JetStream round trip.
func TestEventMsg(t *testing.T) {
	ev := sampleEvent()
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := envelope.EventMsg("events.chat.message.demo-dealer", ev, data)
	want := map[string]string{
		nats.MsgIdHdr:                 ev.Id,
		envelope.HdrCESpecVersion:     "1.0",
		envelope.HdrCEID:              ev.Id,
		envelope.HdrCEType:            "chat.message",
		envelope.HdrCESource:          "/leadstream/sources/mp-leads",
		envelope.HdrCETime:            "2026-11-20T10:15:00.123Z",
		envelope.HdrCESubject:         "mp-leads/conversation/c2b7e4d0%20%22%C3%BC%22%20100%25",
		envelope.HdrCEDataContentType: "application/protobuf;messageType=leadstream.v1.Event",
		envelope.HdrCETenant:          "Zo%C3%AB's%20garage",
		envelope.HdrCEProvider:        "marktplaats-lms",
	}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if len(m.Header) != len(want) {
		t.Errorf("headers %v, want exactly %v", m.Header, want)
	}
	if _, ok := m.Header["content-type"]; ok {
		t.Error("datacontenttype is in content-type; the binding puts it in ce-datacontenttype")
	}

	ns := natstest.RunServer(t)
	_, js := natstest.Connect(t, ns)
	ctx := context.Background()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	got, err := envelope.FromEventMsg(&nats.Msg{Subject: stored.Subject, Header: stored.Header, Data: stored.Data})
	if err != nil {
		t.Fatal(err)
	}
	if got.SpecVersion != "1.0" || got.ID != ev.Id || got.Type != ev.Type || got.Source != "/leadstream/sources/mp-leads" ||
		got.Subject != ev.AggregateId || !got.Time.Equal(ev.OccurredAt.AsTime()) ||
		got.DataContentType != envelope.EventContentType || got.Tenant != ev.Tenant || got.Provider != ev.Provider ||
		!bytes.Equal(got.Data, data) {
		t.Errorf("FromEventMsg = %+v, want the attributes of %v", got, ev)
	}
	if sub, err := envelope.HeaderValue(stored.Header, envelope.HdrCESubject); err != nil || sub != ev.AggregateId {
		t.Errorf("HeaderValue(ce-subject) = %q, %v; want %q", sub, err, ev.AggregateId)
	}
}

// TestEventMsgTime: ce-time is the provider's time, else the edge's, else
// absent (it is optional); never the zero time of an unset timestamp.
func TestEventMsgTime(t *testing.T) {
	ev := sampleEvent()
	ev.OccurredAt = nil
	if got := envelope.EventMsg("s", ev, nil).Header.Get(envelope.HdrCETime); got != "2026-11-20T10:15:01.123Z" {
		t.Errorf("without occurred_at: ce-time %q, want received_at", got)
	}
	ev.ReceivedAt = nil
	if h := envelope.EventMsg("s", ev, nil).Header; h.Get(envelope.HdrCETime) != "" {
		t.Errorf("without either time: ce-time %q, want none", h.Get(envelope.HdrCETime))
	}
}

// TestFromEventMsgRejects: a message that is not a CloudEvent, or whose
// headers are badly encoded, is an error naming the header.
func TestFromEventMsgRejects(t *testing.T) {
	ev := sampleEvent()
	for _, tc := range []struct {
		name, header, value, want string
	}{
		{"no id", envelope.HdrCEID, "", "ce-id missing"},
		{"no source", envelope.HdrCESource, "", "ce-source missing"},
		{"no specversion", envelope.HdrCESpecVersion, "", "ce-specversion missing"},
		{"overlong subject", envelope.HdrCESubject, "a%C0%A0", "ce-subject"},
		{"bad escape in type", envelope.HdrCEType, "lead%2", "ce-type"},
		{"time not RFC 3339", envelope.HdrCETime, "20 Nov 2026", "ce-time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := envelope.EventMsg("events.chat.message.x", ev, nil)
			if tc.value == "" {
				m.Header.Del(tc.header)
			} else {
				m.Header.Set(tc.header, tc.value)
			}
			got, err := envelope.FromEventMsg(m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FromEventMsg = %+v, %v; want an error naming %q", got, err, tc.want)
			}
		})
	}
}

// TestHeaderValueCaseInsensitive: NATS header names are case-insensitive,
// so a Ce-Subject written by another sender is found.
func TestHeaderValueCaseInsensitive(t *testing.T) {
	h := nats.Header{"Ce-Subject": []string{"a%20b"}}
	if got, err := envelope.HeaderValue(h, envelope.HdrCESubject); err != nil || got != "a b" {
		t.Errorf("HeaderValue = %q, %v; want %q", got, err, "a b")
	}
	if got, err := envelope.HeaderValue(h, envelope.HdrCEID); err != nil || got != "" {
		t.Errorf("HeaderValue of an absent header = %q, %v", got, err)
	}
}
