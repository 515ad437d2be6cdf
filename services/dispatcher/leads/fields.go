package leads

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// flatten maps every populated field of ev's typed data to its value as a
// string, keyed by its protojson path: "lead.buyer.name",
// "transaction.newStatus", "chatMessage.text". Paths start with the data
// case's JSON name, so field names of different event types never collide,
// and a field the model gains later lands in the state without code here.
//
// Values follow protojson: enums by name, 64-bit integers in decimal,
// timestamps in RFC 3339 (UTC), bytes in base64; a repeated field or map is
// its JSON encoding (a JSON array of the element strings; an object with
// sorted keys). Unset (zero) proto3 fields are absent, so an event that
// omits a field never erases the value another event gave it.
//
// It walks the message with protoreflect instead of parsing protojson's
// output, because protojson fails on invalid timestamps and strings where
// this must not, and deliberately varies its whitespace.
func flatten(ev *leadstreamv1.Event) map[string]string {
	m := ev.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("data"))
	if fd == nil || fd.Message() == nil {
		return nil
	}
	out := make(map[string]string)
	flattenMessage(fd.JSONName(), m.Get(fd).Message(), out)
	return out
}

func flattenMessage(path string, m protoreflect.Message, out map[string]string) {
	if s, ok := wellKnown(m); ok {
		out[path] = s
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + fd.JSONName()
		switch {
		case fd.IsList() || fd.IsMap():
			out[p] = mustJSON(jsonValue(fd, v))
		case fd.Message() != nil:
			flattenMessage(p, v.Message(), out)
		default:
			out[p] = scalar(fd, v)
		}
		return true
	})
}

// jsonValue is v (a list, map, message or scalar field value of fd) as a
// value encoding/json encodes deterministically: strings, string slices and
// string-keyed maps only.
func jsonValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch {
	case fd.IsList():
		l := v.List()
		out := make([]any, l.Len())
		for i := range out {
			out[i] = elemValue(fd, l.Get(i))
		}
		return out
	case fd.IsMap():
		out := make(map[string]any, v.Map().Len())
		v.Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			out[validUTF8(k.String())] = elemValue(fd.MapValue(), v)
			return true
		})
		return out
	}
	return elemValue(fd, v)
}

// elemValue is one element (of a list, or a map's value): a message as the
// object of its flattened fields, anything else as its string.
func elemValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	if fd.Message() == nil {
		return scalar(fd, v)
	}
	fields := make(map[string]string)
	flattenMessage("", v.Message(), fields)
	if s, ok := fields[""]; ok && len(fields) == 1 {
		return s // a well-known type, e.g. a Timestamp
	}
	out := make(map[string]string, len(fields))
	for k, s := range fields {
		out[k[1:]] = s // drop the leading "."
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable: v holds only strings, slices and string-keyed maps.
		panic(fmt.Sprintf("leads: encoding a repeated field: %v", err))
	}
	return string(b)
}

func scalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return validUTF8(v.String())
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.FormatInt(v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.FloatKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 32)
	case protoreflect.DoubleKind:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	}
	return validUTF8(v.String())
}

// wellKnown renders the well-known types the model uses as protojson does.
func wellKnown(m protoreflect.Message) (string, bool) {
	if m.Descriptor().FullName() != "google.protobuf.Timestamp" {
		return "", false
	}
	fields := m.Descriptor().Fields()
	ts := &timestamppb.Timestamp{
		Seconds: m.Get(fields.ByName("seconds")).Int(),
		Nanos:   int32(m.Get(fields.ByName("nanos")).Int()),
	}
	if ts.CheckValid() != nil {
		// protojson refuses these; keep the raw value rather than lose it.
		return fmt.Sprintf("invalid timestamp %ds %dns", ts.Seconds, ts.Nanos), true
	}
	return ts.AsTime().Format(time.RFC3339Nano), true
}
