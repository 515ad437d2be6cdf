package verify

import (
	"crypto/rsa"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// subject adapts one Verifier implementation to the contract that every verifier keeps. Each
// subject has a pool of three credentials; tests configure some of them and sign with one.
type subject struct {
	name string
	// configure returns a verifier trusting the pool credentials creds, in that order.
	configure func(tb testing.TB, creds ...int) Verifier
	// request returns a valid request for body, carrying pool credential cred.
	request func(tb testing.TB, cred int, body []byte) *Request
	// strips remove the credential from a request, one entry per way it can be missing.
	strips map[string]func(r *Request)
	// keyID is the Result.KeyID expected when pool credential cred, configured at position pos, matched.
	keyID func(cred, pos int) string
	// rotatedOut is what a credential that is not configured is rejected with.
	rotatedOut error
	// bindsBody is false for verifiers that authenticate the sender but not the body.
	bindsBody bool
	// credentialInHeaders is true when the headers alone name the credential used (a keyId, a
	// token), so that Precheck can refuse one that is not configured.
	credentialInHeaders bool
	// secrets is text that must never appear in an error.
	secrets []string
}

func contractSubjects(tb testing.TB) []subject {
	now := time.Unix(1795600000, 0)
	clock := func() time.Time { return now }
	names := []string{"leadDeliveryKey", "chatMessagePushKey", "retiredKey"}
	privs := []*rsa.PrivateKey{
		loadPrivateKey(tb, "leadDeliveryKey"),
		loadPrivateKey(tb, "chatMessagePushKey"),
		loadPrivateKey(tb, "otherKey"),
	}
	cavage := subject{
		name: "cavage",
		configure: func(_ testing.TB, creds ...int) Verifier {
			keys := map[string]*rsa.PublicKey{}
			for _, c := range creds {
				keys[names[c]] = &privs[c].PublicKey
			}
			return NewCavage(keys, 5*time.Minute, clock)
		},
		request: func(_ testing.TB, cred int, body []byte) *Request {
			digest, sig := SignCavage(privs[cred], names[cred], "POST", "/hooks/mp-leads", now.Unix(), body)
			h := http.Header{}
			h.Set("Digest", digest)
			h.Set("Signature", sig)
			h.Set("Content-Type", "application/json")
			return &Request{Method: "POST", Path: "/hooks/mp-leads", Header: h, Body: body}
		},
		strips: map[string]func(*Request){
			"signature header": func(r *Request) { r.Header.Del("Signature") },
			"digest header":    func(r *Request) { r.Header.Del("Digest") },
		},
		keyID:               func(cred, _ int) string { return names[cred] },
		rotatedOut:          ErrUnknownKey,
		bindsBody:           true,
		credentialInHeaders: true,
	}

	hmacSubject := func(name, header string, secrets []string) subject {
		return subject{
			name: name,
			configure: func(_ testing.TB, creds ...int) Verifier {
				var s [][]byte
				for _, c := range creds {
					s = append(s, []byte(secrets[c]))
				}
				return NewHMAC(header, s)
			},
			request: func(_ testing.TB, cred int, body []byte) *Request {
				h := http.Header{}
				h.Set(header, HMACHex([]byte(secrets[cred]), body))
				return &Request{Method: "POST", Path: "/hooks/" + name, Header: h, Body: body}
			},
			strips: map[string]func(*Request){
				"header":       func(r *Request) { r.Header.Del(header) },
				"empty header": func(r *Request) { r.Header.Set(header, "") },
			},
			keyID:      func(_, pos int) string { return "secret#" + strconv.Itoa(pos) },
			rotatedOut: ErrBadSignature,
			bindsBody:  true,
			secrets:    secrets,
		}
	}

	tokens := []string{"lb_9c2e4a71d05b", "lb_rotated_7f3a", "lb_retired_0000"}
	tokenSubject := func(name string, put func(r *Request, tok string)) subject {
		return subject{
			name: name,
			configure: func(_ testing.TB, creds ...int) Verifier {
				var s []string
				for _, c := range creds {
					s = append(s, tokens[c])
				}
				return NewToken(s, nil)
			},
			request: func(_ testing.TB, cred int, body []byte) *Request {
				r := &Request{Method: "POST", Path: "/hooks/lokalebasen", Header: http.Header{}, Body: body}
				put(r, tokens[cred])
				return r
			},
			strips: map[string]func(*Request){
				"token": func(r *Request) { r.Token = ""; r.Header.Del("Authorization") },
			},
			keyID:               func(_, pos int) string { return "token#" + strconv.Itoa(pos) },
			rotatedOut:          ErrBadToken,
			bindsBody:           false,
			credentialInHeaders: true,
			secrets:             tokens,
		}
	}

	return []subject{
		cavage,
		hmacSubject("mp-api", "X-Ecg-Signature", []string{"s3cr3t", "s3cr3t-next", "s3cr3t-old"}),
		hmacSubject("offerte", "x-offerte-adviseur-signature", []string{"oa_test_secret_7f3b", "oa_next_1c9d", "oa_old_42aa"}),
		tokenSubject("token-path", func(r *Request, tok string) {
			r.Token = tok
			r.Path += "/" + tok
		}),
		tokenSubject("token-bearer", func(r *Request, tok string) { r.Header.Set("Authorization", "Bearer "+tok) }),
	}
}

// contractBody is distinctive so that an error echoing the body would be caught.
var contractBody = []byte(`{"id":"contract-7d1e","name":"Jan de Vries","phone":"+31612345678"}`)

func TestContract(t *testing.T) {
	for _, s := range contractSubjects(t) {
		t.Run(s.name, func(t *testing.T) { runContract(t, s) })
	}
}

func runContract(t *testing.T, s subject) {
	// rejected checks what every rejection must satisfy, besides failing.
	rejected := func(t *testing.T, err error, want error) {
		t.Helper()
		if err == nil {
			t.Fatal("accepted")
		}
		if want != nil && !errors.Is(err, want) {
			t.Errorf("want %v, got %v", want, err)
		}
		if Reason(err) == "unknown" {
			t.Errorf("error %q wraps no sentinel", err)
		}
		msg := err.Error()
		for _, leak := range append([]string{string(contractBody), "Jan de Vries"}, s.secrets...) {
			if strings.Contains(msg, leak) {
				t.Errorf("error %q reveals a secret or the body", msg)
			}
		}
	}

	t.Run("valid", func(t *testing.T) {
		res, err := s.configure(t, 0).Verify(s.request(t, 0, contractBody))
		if err != nil {
			t.Fatal(err)
		}
		if want := s.keyID(0, 0); res.KeyID != want {
			t.Errorf("key id %q, want %q", res.KeyID, want)
		}
	})

	t.Run("flipped body byte", func(t *testing.T) {
		if !s.bindsBody {
			t.Skip("this verifier authenticates the sender, not the body (TLS protects the body)")
		}
		v := s.configure(t, 0)
		for i := range contractBody {
			for _, mask := range []byte{0x01, 0x80} {
				r := s.request(t, 0, contractBody)
				r.Body = append([]byte(nil), contractBody...)
				r.Body[i] ^= mask
				_, err := v.Verify(r)
				if err == nil {
					t.Fatalf("accepted with byte %d ^ %#x", i, mask)
				}
				rejected(t, err, nil)
			}
		}
		r := s.request(t, 0, contractBody)
		r.Body = r.Body[:len(r.Body)-1]
		_, err := v.Verify(r)
		rejected(t, err, nil)
	})

	t.Run("missing credential", func(t *testing.T) {
		v := s.configure(t, 0)
		for name, strip := range s.strips {
			t.Run(name, func(t *testing.T) {
				r := s.request(t, 0, contractBody)
				strip(r)
				_, err := v.Verify(r)
				rejected(t, err, ErrMissingSignature)
			})
		}
	})

	t.Run("rotated-out credential", func(t *testing.T) {
		_, err := s.configure(t, 0, 1).Verify(s.request(t, 2, contractBody))
		rejected(t, err, s.rotatedOut)
	})

	t.Run("no credentials configured", func(t *testing.T) {
		_, err := s.configure(t).Verify(s.request(t, 0, contractBody))
		rejected(t, err, nil)
	})

	t.Run("rotation", func(t *testing.T) {
		for _, order := range [][]int{{0, 1}, {1, 0}} {
			v := s.configure(t, order...)
			for pos, cred := range order {
				res, err := v.Verify(s.request(t, cred, contractBody))
				if err != nil {
					t.Fatalf("configured %v, credential %d: %v", order, cred, err)
				}
				if want := s.keyID(cred, pos); res.KeyID != want {
					t.Errorf("configured %v, credential %d: key id %q, want %q", order, cred, res.KeyID, want)
				}
			}
		}
	})

	// Precheck sees no body. It must pass what Verify would accept, and what it refuses Verify
	// must refuse with the same reason, so the edge may answer a Precheck error before reading.
	t.Run("precheck agrees with verify", func(t *testing.T) {
		v := s.configure(t, 0, 1)
		type probe struct {
			name string
			r    *Request
		}
		probes := []probe{
			{"valid", s.request(t, 0, contractBody)},
			{"second credential", s.request(t, 1, contractBody)},
			{"rotated-out credential", s.request(t, 2, contractBody)},
		}
		for name, strip := range s.strips {
			r := s.request(t, 0, contractBody)
			strip(r)
			probes = append(probes, probe{"without " + name, r})
		}
		flipped := s.request(t, 0, contractBody)
		flipped.Body = append([]byte(nil), contractBody...)
		flipped.Body[3] ^= 0x01
		probes = append(probes, probe{"flipped body byte", flipped})
		for _, p := range probes {
			perr := v.Precheck(&Request{Method: p.r.Method, Path: p.r.Path, Header: p.r.Header, RemoteIP: p.r.RemoteIP, Token: p.r.Token})
			_, verr := v.Verify(p.r)
			switch {
			case verr == nil && perr != nil:
				t.Errorf("%s: Verify accepts, Precheck refuses: %v", p.name, perr)
			case perr != nil:
				rejected(t, perr, nil)
				if Reason(perr) != Reason(verr) {
					t.Errorf("%s: Precheck reason %s, Verify reason %s", p.name, Reason(perr), Reason(verr))
				}
			}
		}
		for _, strip := range s.strips {
			r := s.request(t, 0, nil)
			strip(r)
			rejected(t, v.Precheck(r), ErrMissingSignature)
		}
		if err := v.Precheck(s.request(t, 2, nil)); s.credentialInHeaders && err == nil {
			t.Error("Precheck accepts a credential that is not configured, though headers alone tell")
		}
		if err := v.Precheck(s.request(t, 0, nil)); err != nil {
			t.Errorf("valid headers without a body: %v", err)
		}
	})

	t.Run("concurrent use", func(t *testing.T) {
		v := s.configure(t, 0, 1)
		reqs := []*Request{s.request(t, 0, contractBody), s.request(t, 1, contractBody), s.request(t, 2, contractBody)}
		var wg sync.WaitGroup
		errs := make(chan error, 8*30)
		for g := range 8 {
			wg.Go(func() {
				for i := range 30 {
					k := (g + i) % len(reqs)
					_, err := v.Verify(reqs[k])
					if (k == 2) != (err != nil) {
						errs <- errors.New("outcome differs under concurrency")
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}
