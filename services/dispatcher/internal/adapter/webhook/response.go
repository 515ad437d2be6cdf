package webhook

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxRetryAfter caps an LMS's Retry-After: a broken or hostile header must
// not hold back an aggregate's events for days. Longer outages are the
// circuit breaker's and the dead-letter queue's business.
const maxRetryAfter = time.Hour

// maxSnippet is how much of an error answer's body goes into the error: enough
// for "invalid field leadId", too little to echo the event back into logs.
const maxSnippet = 200

// StatusError is an LMS's answer other than 2xx. The dispatcher may record
// Status per attempt (errors.As).
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Snippet is the start of the answer's body as one printable line of at
	// most about 200 bytes; empty when the body was.
	Snippet string
}

// Error says what the LMS answered, on one line.
// Error names the status only: errors are logged, and an LMS's answer may
// echo the payload (personal data). Detail adds the answer's start.
func (e *StatusError) Error() string {
	return fmt.Sprintf("LMS answered %d %s", e.Status, http.StatusText(e.Status))
}

// Detail is Error with the start of the LMS's answer, for the dead letter's
// attempt log (which holds the event itself anyway), never for logs.
func (e *StatusError) Detail() string {
	msg := e.Error()
	if e.Snippet != "" {
		msg += ": " + strconv.Quote(e.Snippet)
	}
	return msg
}

// retryable reports whether an LMS answering status may take the same event
// later: it timed out (408), throttled us (429) or failed on its side (5xx).
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// parseRetryAfter reads a Retry-After header, delay-seconds or an
// HTTP-date, as a duration from now, capped at maxRetryAfter. It reports
// false for a missing, malformed or past value: no hint.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	} else {
		return 0, false
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// snippet reads the start of an error answer's body and makes it one safe
// line: control characters (terminal escapes, newlines that would split a
// log line) and invalid UTF-8 become spaces, runs of spaces one.
func snippet(body io.Reader) string {
	buf, _ := io.ReadAll(io.LimitReader(body, maxSnippet+1))
	var b strings.Builder
	space := false
	// Ranging over a string yields utf8.RuneError for invalid bytes, and for
	// a rune the read limit cut in two.
	for _, r := range string(buf) {
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	s := b.String()
	if len(buf) <= maxSnippet {
		return s
	}
	for len(s) > maxSnippet {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s + "..."
}
