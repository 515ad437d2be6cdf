package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What a field holds, as far as masking goes.
type personal int

const (
	notPersonal personal = iota
	// personName: names, and what else names a person or their home
	// (street, house number, postal code, licence plate).
	personName
	personEmail
	personPhone
	// freeText: messages people type, which carry names and numbers at will.
	freeText
)

// classify says what a field of the lead state or a JSON body holds, from
// its name alone: the last segment of a path ("lead.buyer.email"), in any
// spelling (phone_number, PhoneNumber, e-mail). It errs on the side of
// masking: a field it is unsure of is masked.
func classify(field string) personal {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		field = field[i+1:]
	}
	k := strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(field))
	switch {
	case strings.Contains(k, "mail"):
		return personEmail
	case strings.Contains(k, "phone") || strings.Contains(k, "mobile") || k == "tel" || k == "gsm" || k == "msisdn" ||
		k == "fromnumber" || k == "tonumber" || k == "endnumber" || k == "callernumber" || k == "number":
		return personPhone
	case strings.Contains(k, "name") || strings.Contains(k, "street") || strings.Contains(k, "housenumber") ||
		strings.Contains(k, "postalcode") || strings.Contains(k, "postcode") || strings.Contains(k, "zip") ||
		strings.Contains(k, "licenseplate") || strings.Contains(k, "salesagent") || k == "address":
		return personName
	case k == "message" || k == "text" || k == "comment" || k == "comments" || k == "description" || k == "body" ||
		k == "question" || k == "remarks" || k == "notes" || k == "note":
		return freeText
	}
	return notPersonal
}

// mask returns v as shown to an operator who has not asked to reveal it:
// "j***@e***.nl", "J*** d*** V***", "+31*******78", "[hidden: 61 characters]".
func mask(kind personal, v string) string {
	if v == "" {
		return v
	}
	switch kind {
	case personEmail:
		return maskEmail(v)
	case personPhone:
		return maskPhone(v)
	case personName:
		return maskWords(v)
	case freeText:
		return fmt.Sprintf("[hidden: %d characters]", utf8.RuneCountInString(v))
	}
	return v
}

// maskField masks v when field names something personal.
func maskField(field, v string) string { return mask(classify(field), v) }

// firstAndStars keeps the first letter of s.
func firstAndStars(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return ""
	}
	return string(r) + "***"
}

func maskWords(v string) string {
	words := strings.Fields(v)
	for i, w := range words {
		words[i] = firstAndStars(w)
	}
	return strings.Join(words, " ")
}

// maskEmail keeps the first letter of the local part and of each domain
// label but the last (the top-level domain).
func maskEmail(v string) string {
	local, domain, ok := strings.Cut(v, "@")
	if !ok {
		return maskWords(v)
	}
	labels := strings.Split(domain, ".")
	for i := range len(labels) - 1 {
		labels[i] = firstAndStars(labels[i])
	}
	if len(labels) == 1 {
		labels[0] = firstAndStars(labels[0])
	}
	return firstAndStars(local) + "@" + strings.Join(labels, ".")
}

// maskPhone keeps a leading "+" with the two digits after it (the country
// code, mostly) and the last two digits; every other digit becomes '*',
// separators stay. A number too short to hide much that way is all stars.
func maskPhone(v string) string {
	digits := 0
	for _, r := range v {
		if unicode.IsDigit(r) {
			digits++
		}
	}
	keepHead := 0
	if strings.HasPrefix(strings.TrimSpace(v), "+") {
		keepHead = 2
	}
	if digits < keepHead+6 {
		return strings.Repeat("*", utf8.RuneCountInString(v))
	}
	var b strings.Builder
	seen := 0
	for _, r := range v {
		if !unicode.IsDigit(r) {
			b.WriteRune(r)
			continue
		}
		seen++
		if seen <= keepHead || seen > digits-2 {
			b.WriteRune(r)
		} else {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// maskJSON is body, a JSON document, indented, with the values of personal
// fields masked (every string under such a key, in objects and arrays). A
// body that is not JSON is not shown at all: it cannot be masked field by
// field.
func maskJSON(body []byte) (string, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	v = maskValue(notPersonal, v)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return "", false
	}
	return strings.TrimSuffix(out.String(), "\n"), true
}

func maskValue(kind personal, v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			ek := classify(k)
			if ek == notPersonal {
				ek = kind // what is under a personal key stays personal
			}
			x[k] = maskValue(ek, e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = maskValue(kind, e)
		}
		return x
	case string:
		return mask(kind, x)
	case json.Number:
		if kind != notPersonal {
			return mask(kind, x.String())
		}
	}
	return v
}

// indentJSON is body indented, unmasked (an operator asked to reveal it),
// or the body as text when it is not JSON.
func indentJSON(body []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, body, "", "  ") == nil {
		return out.String()
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}
