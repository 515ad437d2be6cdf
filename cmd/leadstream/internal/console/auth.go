package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
)

// Session cookie: a signed expiry, set by the sign-in form so that a browser
// without JavaScript can act with a bearer token (it cannot send one).
const (
	sessionCookie = "leadstream_console"
	sessionTTL    = 12 * time.Hour
	realm         = "leadstream console"
)

// auth decides who is an operator. Credentials are compared as SHA-256
// digests with subtle.ConstantTimeCompare: equal lengths, so neither the
// length nor a common prefix of a guess shows in the time taken.
type auth struct {
	// configured: a token or basic auth is set; every action needs it.
	configured bool
	// public: not on loopback; every page needs it too.
	public bool
	token  *[32]byte
	user   *[32]byte
	pass   *[32]byte
	basic  bool
	// sessionKey signs session cookies: random per process, so a restart
	// signs every operator out, and a cookie tells nothing of the token.
	sessionKey [32]byte
	now        func() time.Time
}

func newAuth(c *config.Console, now func() time.Time) (*auth, error) {
	a := &auth{configured: c.AuthConfigured(), public: c.Enabled() && !c.Loopback(), now: now}
	if a.public && !a.configured {
		// The config refuses this; a console built by hand must not slip through.
		return nil, fmt.Errorf("console: %q is not a loopback address and no console.token or console.basic_auth is set", c.Listen)
	}
	if c.Token != "" {
		h := sha256.Sum256([]byte(c.Token))
		a.token = &h
	}
	if c.BasicAuth.User != "" {
		u, p := sha256.Sum256([]byte(c.BasicAuth.User)), sha256.Sum256([]byte(c.BasicAuth.Password))
		a.user, a.pass, a.basic = &u, &p, true
	}
	if _, err := rand.Read(a.sessionKey[:]); err != nil {
		return nil, fmt.Errorf("console: session key: %w", err)
	}
	return a, nil
}

func equal(want *[32]byte, got string) bool {
	if want == nil {
		return false
	}
	h := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], h[:]) == 1
}

// checkToken reports whether token is the configured one.
func (a *auth) checkToken(token string) bool { return equal(a.token, token) }

// checkBasic reports whether user and password are the configured ones.
// Both are compared, whatever the first gives.
func (a *auth) checkBasic(user, password string) bool {
	u, p := equal(a.user, user), equal(a.pass, password)
	return a.basic && u && p
}

// operator names who sent r, for the log ("token", "user ops",
// "session"), and whether r carries a valid credential.
func (a *auth) operator(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, _ := strings.Cut(h, " ")
		switch {
		case strings.EqualFold(scheme, "Bearer") && a.checkToken(strings.TrimSpace(value)):
			return "token", true
		case strings.EqualFold(scheme, "Basic"):
			if u, p, ok := r.BasicAuth(); ok && a.checkBasic(u, p) {
				return "user " + u, true
			}
		}
	}
	if c, err := r.Cookie(sessionCookie); err == nil && a.validSession(c.Value) {
		return "session", true
	}
	return "", false
}

// mayAct reports whether r may replay, drop or reveal: with credentials
// configured, when it carries one; without (loopback only), always.
func (a *auth) mayAct(r *http.Request) (string, bool) {
	if !a.configured {
		return "loopback", true
	}
	return a.operator(r)
}

// session is a cookie value: <expiry unix>.<hex HMAC-SHA256 of it>.
func (a *auth) session() string {
	exp := strconv.FormatInt(a.now().Add(sessionTTL).Unix(), 10)
	return exp + "." + a.mac(exp)
}

func (a *auth) mac(s string) string {
	m := hmac.New(sha256.New, a.sessionKey[:])
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

func (a *auth) validSession(v string) bool {
	exp, mac, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(a.mac(exp))) {
		return false
	}
	t, err := strconv.ParseInt(exp, 10, 64)
	return err == nil && a.now().Before(time.Unix(t, 0))
}

// challenge sets WWW-Authenticate on a 401: browsers ask for basic auth
// themselves; a bearer token goes into the sign-in form on the page.
func (a *auth) challenge(w http.ResponseWriter) {
	if a.basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`", charset="UTF-8"`)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`"`)
}

// readGate refuses every page but the sign-in and the assets to a request
// without credentials when the console is off loopback.
func (a *auth) readGate(s *Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.public && !strings.HasPrefix(r.URL.Path, "/static/") && r.URL.Path != "/login" {
			if _, ok := a.operator(r); !ok {
				s.unauthorized(w, r, "Sign in to use the console.")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostCheck refuses, on loopback, a request whose Host is not a loopback
// name: a page of another site that rebinds its name to 127.0.0.1 could
// otherwise read the console and act as the same origin.
func (a *auth) hostCheck(s *Server, next http.Handler) http.Handler {
	if a.public {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			s.log.Warn("console: request for a host that is not loopback refused", zap.String("path", r.URL.Path))
			http.Error(w, "the console answers only to 127.0.0.1, [::1] or localhost", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// loginView is the sign-in form.
type loginView struct {
	Message string
	Next    string
	Basic   bool
	Token   bool
}

// unauthorized answers 401 with the sign-in form, which comes back to the
// page the request was for.
func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, msg string) {
	s.auth.challenge(w)
	// Back to the page the request came from: htmx names it, a form's
	// browser sends it as the referrer (same origin only).
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet {
		next = "/"
		for _, h := range []string{"HX-Current-URL", "Referer"} {
			if u, err := url.Parse(r.Header.Get(h)); err == nil && u.Path != "" {
				next = u.RequestURI()
				break
			}
		}
	}
	s.render(w, r, http.StatusUnauthorized, "login", "Sign in", "", loginView{Message: msg, Next: localPath(next), Basic: s.auth.basic, Token: s.auth.token != nil})
}

// localPath keeps p when it is a path of this console, else "/": a sign-in
// never sends the browser elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	return p
}

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if !s.auth.configured {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login", "Sign in", "", loginView{Next: localPath(r.URL.Query().Get("next")), Basic: s.auth.basic, Token: s.auth.token != nil})
}

// login checks the form's token or user and password and sets the session
// cookie.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.auth.configured {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	next := localPath(r.PostFormValue("next"))
	ok := false
	who := ""
	if t := r.PostFormValue("token"); t != "" {
		ok, who = s.auth.checkToken(t), "token"
	} else if u := r.PostFormValue("user"); u != "" {
		ok, who = s.auth.checkBasic(u, r.PostFormValue("password")), "user "+u
	}
	if !ok {
		s.log.Warn("console: sign-in refused")
		s.auth.challenge(w)
		s.render(w, r, http.StatusUnauthorized, "login", "Sign in", "", loginView{Message: "Wrong token, user or password.", Next: next, Basic: s.auth.basic, Token: s.auth.token != nil})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.auth.session(), Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	s.log.Info("console: operator signed in", zap.String("operator", who))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
