package webhook

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{in: "120", want: 2 * time.Minute, wantOK: true},
		{in: " 7 ", want: 7 * time.Second, wantOK: true},
		{in: "1", want: time.Second, wantOK: true},
		{in: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second, wantOK: true},
		{in: "Sat, 14 Mar 2026 12:00:30 GMT", want: 30 * time.Second, wantOK: true},
		{in: "Saturday, 14-Mar-26 12:00:30 GMT", want: 30 * time.Second, wantOK: true}, // RFC 850, still legal
		{in: "999999999999", want: maxRetryAfter, wantOK: true},
		{in: now.Add(48 * time.Hour).Format(http.TimeFormat), want: maxRetryAfter, wantOK: true},
		{in: ""},
		{in: "0"},
		{in: "-5"},
		{in: "1.5"},
		{in: "soon"},
		{in: now.Add(-time.Minute).Format(http.TimeFormat)},
		{in: "99999999999999999999999"}, // overflows uint64
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "Sat, 14 Mar 2026 12:00:30 GMT", "-1", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if ok && (d <= 0 || d > maxRetryAfter) {
			t.Errorf("parseRetryAfter(%q) = %s, true: want within (0, %s]", s, d, maxRetryAfter)
		}
		if !ok && d != 0 {
			t.Errorf("parseRetryAfter(%q) = %s, false: want 0 with no hint", s, d)
		}
	})
}

func TestSnippet(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "plain", in: `{"error":"invalid leadId"}`, want: `{"error":"invalid leadId"}`},
		{name: "one line", in: "line one\r\nline two\n\n", want: "line one line two"},
		{name: "terminal escapes", in: "\x1b[2Jgone\x07", want: "[2Jgone"},
		{name: "invalid utf-8", in: "bad \xff\xfe byte", want: "bad byte"},
		{name: "exactly the limit", in: strings.Repeat("a", maxSnippet), want: strings.Repeat("a", maxSnippet)},
		{name: "cut", in: strings.Repeat("a", maxSnippet+50), want: strings.Repeat("a", maxSnippet) + "..."},
		{name: "cut inside a rune", in: "a" + strings.Repeat("é", maxSnippet), want: "a" + strings.Repeat("é", (maxSnippet-1)/2) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := snippet(strings.NewReader(tt.in)); got != tt.want {
				t.Errorf("snippet = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzSnippet(f *testing.F) {
	f.Add("hello\nworld")
	f.Add(strings.Repeat("é", 300))
	f.Fuzz(func(t *testing.T, s string) {
		got := snippet(strings.NewReader(s))
		if len(got) > maxSnippet+len("...") || !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n\x1b\x00") {
			t.Errorf("snippet(%q) = %q: want at most %d valid, printable bytes on one line", s, got, maxSnippet+3)
		}
	})
}

// TestStatusErrorKeepsAnswerOutOfLogs: the LMS's answer, which may echo the
// payload, is in Detail (for the dead letter) and never in Error (logged).
func TestStatusErrorKeepsAnswerOutOfLogs(t *testing.T) {
	err := adapter.Terminal(&StatusError{Status: 422, Snippet: `{"error":"bad email jan@example.nl"}`})
	if strings.Contains(err.Error(), "jan@") {
		t.Fatalf("Error() carries the answer: %s", err)
	}
	if d := adapter.Detail(err); !strings.Contains(d, "jan@") || !strings.Contains(d, "422") {
		t.Fatalf("Detail lacks the answer: %s", d)
	}
}
