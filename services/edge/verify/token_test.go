package verify

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func TestTokenVerify(t *testing.T) {
	const tok = "lb_9c2e4a71d05b"
	allow := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	open := NewToken([]string{tok}, nil)
	fenced := NewToken([]string{tok}, allow)
	inside := netip.MustParseAddr("192.0.2.10")

	tests := []struct {
		name   string
		v      *Token
		token  string
		auth   string
		remote netip.Addr
		want   error
	}{
		{"path token", open, tok, "", netip.Addr{}, nil},
		{"bearer token", open, "", "Bearer " + tok, netip.Addr{}, nil},
		{"bearer scheme in lower case", open, "", "bearer " + tok, netip.Addr{}, nil},
		{"path token wins over a wrong bearer", open, tok, "Bearer nope", netip.Addr{}, nil},
		{"wrong path token is not rescued by a bearer", open, "nope", "Bearer " + tok, netip.Addr{}, ErrBadToken},
		{"wrong token", open, "not-the-token", "", netip.Addr{}, ErrBadToken},
		{"token prefix", open, tok[:len(tok)-1], "", netip.Addr{}, ErrBadToken},
		{"token with suffix", open, tok + "x", "", netip.Addr{}, ErrBadToken},
		{"token in other case", open, strings.ToUpper(tok), "", netip.Addr{}, ErrBadToken},
		{"no token", open, "", "", netip.Addr{}, ErrMissingSignature},
		{"basic auth is not a token", open, "", "Basic " + tok, netip.Addr{}, ErrMissingSignature},
		{"bearer without token", open, "", "Bearer ", netip.Addr{}, ErrMissingSignature},
		{"allowed IPv4", fenced, tok, "", inside, nil},
		{"allowed IPv4-mapped IPv6", fenced, tok, "", netip.MustParseAddr("::ffff:192.0.2.10"), nil},
		{"allowed IPv6", fenced, tok, "", netip.MustParseAddr("2001:db8::1"), nil},
		{"outside the allow-list", fenced, tok, "", netip.MustParseAddr("198.51.100.1"), ErrForbiddenIP},
		{"unknown address with an allow-list", fenced, tok, "", netip.Addr{}, ErrForbiddenIP},
		{"IP is checked before the token", fenced, "wrong", "", netip.MustParseAddr("198.51.100.1"), ErrForbiddenIP},
		{"wrong token from an allowed address", fenced, "wrong", "", inside, ErrBadToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.auth != "" {
				h.Set("Authorization", tt.auth)
			}
			res, err := tt.v.Verify(&Request{Method: "POST", Path: "/hooks/lokalebasen", Header: h, Token: tt.token, RemoteIP: tt.remote})
			if tt.want == nil {
				if err != nil || res.KeyID != "token#0" {
					t.Fatalf("want accepted as token#0, got %q, %v", res.KeyID, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("want %v, got %v", tt.want, err)
			}
			if strings.Contains(err.Error(), tok) || (tt.token != "" && strings.Contains(err.Error(), tt.token)) {
				t.Errorf("error %q reveals a token", err)
			}
		})
	}
}

// TestTokenEmpty: an empty configured token (an unset environment variable) must not accept
// requests, and the first of two equal tokens is the one reported.
func TestTokenEmpty(t *testing.T) {
	v := NewToken([]string{"", "t1", "t1"}, nil)
	if _, err := v.Verify(&Request{Header: http.Header{"Authorization": {"Bearer "}}}); !errors.Is(err, ErrMissingSignature) {
		t.Fatalf("want ErrMissingSignature, got %v", err)
	}
	res, err := v.Verify(&Request{Token: "t1"})
	if err != nil || res.KeyID != "token#1" {
		t.Fatalf("got %q, %v; want token#1", res.KeyID, err)
	}
	if _, err := NewToken([]string{""}, nil).Verify(&Request{Token: "x"}); !errors.Is(err, ErrBadToken) {
		t.Fatalf("want ErrBadToken, got %v", err)
	}
}

func BenchmarkTokenVerify(b *testing.B) {
	v := NewToken([]string{"lb_9c2e4a71d05b", "lb_next"}, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	r := &Request{Token: "lb_next", RemoteIP: netip.MustParseAddr("192.0.2.1")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r); err != nil {
			b.Fatal(err)
		}
	}
}
