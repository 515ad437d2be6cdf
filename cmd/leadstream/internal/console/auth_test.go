package console

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// TestActionsNeedCredentials: with a token and basic auth configured, a
// replay, a drop or a reveal without them, or with wrong ones, is refused
// with 401 and changes nothing; with either credential it is done. Reading
// on loopback needs none.
func TestActionsNeedCredentials(t *testing.T) {
	f := newFixture(t, "console: {listen: \"127.0.0.1:0\", token: "+testToken+", basic_auth: {user: "+testUser+", password: "+testPassword+"}}\n", nil)
	ev := f.ingest("offerte", "offerte-adviseur", "lead", "offerte-adviseur/lead-created.json", "a056V7R7NmNRjl70")
	confirm := url.Values{"confirm": {"yes"}}
	refusals := []struct {
		name   string
		header []string
	}{
		{"no credentials", nil},
		{"wrong token", []string{"Authorization", "Bearer " + testToken + "x"}},
		{"token prefix", []string{"Authorization", "Bearer " + testToken[:10]}},
		{"wrong password", []string{"Authorization", basic(testUser, testPassword+"x")}},
		{"wrong user", []string{"Authorization", basic("root", testPassword)}},
		{"forged session", []string{"Cookie", sessionCookie + "=99999999999.00"}},
	}
	for _, action := range []string{"replay", "drop", "reveal"} {
		seq := f.deadLetter(ev)
		path := "/dlq/" + strconv.FormatUint(seq, 10) + "/" + action
		for _, r := range refusals {
			status, body, h := f.request(http.MethodPost, path, confirm, r.header...)
			if status != http.StatusUnauthorized || !strings.Contains(body, "Refused") || h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s with %s: %d, WWW-Authenticate %q, want 401 saying refused", action, r.name, status, h.Get("WWW-Authenticate"))
			}
			if strings.Contains(body, "Jansen") {
				t.Errorf("%s with %s: the refusal shows a personal field", action, r.name)
			}
		}
		if !f.letterExists(seq) || len(f.ops.replayed()) != 0 {
			t.Fatalf("%s: refused requests changed DLQ (letter there: %v) or replayed %v", action, f.letterExists(seq), f.ops.replayed())
		}
	}
	// Reading needs nothing on loopback.
	if status, _, _ := f.request(http.MethodGet, "/dlq", nil); status != http.StatusOK {
		t.Errorf("GET /dlq without credentials on loopback: %d", status)
	}

	// With the token: replay; with basic auth: drop; both: reveal.
	seq := f.deadLetter(ev)
	status, _, h := f.request(http.MethodPost, "/dlq/"+strconv.FormatUint(seq, 10)+"/replay", confirm, "Authorization", "Bearer "+testToken)
	if status != http.StatusSeeOther || h.Get("Location") != "/dlq?done=replayed&seq="+strconv.FormatUint(seq, 10) || f.letterExists(seq) {
		t.Errorf("replay with the token: %d to %q, letter there %v", status, h.Get("Location"), f.letterExists(seq))
	}
	if got := f.ops.replayed(); len(got) != 1 || got[0] != seq {
		t.Errorf("replayed %v, want [%d]", got, seq)
	}
	seq = f.deadLetter(ev)
	status, _, _ = f.request(http.MethodPost, "/dlq/"+strconv.FormatUint(seq, 10)+"/drop", confirm, "Authorization", basic(testUser, testPassword))
	if status != http.StatusSeeOther || f.letterExists(seq) {
		t.Errorf("drop with basic auth: %d, letter there %v", status, f.letterExists(seq))
	}
	seq = f.deadLetter(ev)
	status, body, _ := f.request(http.MethodPost, "/dlq/"+strconv.FormatUint(seq, 10)+"/reveal", url.Values{}, "Authorization", "Bearer "+testToken)
	if status != http.StatusOK || !strings.Contains(body, "Jansen") {
		t.Errorf("reveal with the token: %d, revealed %v", status, strings.Contains(body, "Jansen"))
	}
	status, body, _ = f.request(http.MethodPost, "/leads/reveal", url.Values{"id": {ev.GetAggregateId()}}, "Authorization", basic(testUser, testPassword))
	if status != http.StatusOK || !strings.Contains(body, "Sanne") {
		t.Errorf("lead reveal with basic auth: %d, revealed %v", status, strings.Contains(body, "Sanne"))
	}
	if status, _, _ := f.request(http.MethodPost, "/leads/reveal", url.Values{"id": {ev.GetAggregateId()}}); status != http.StatusUnauthorized {
		t.Errorf("lead reveal without credentials: %d, want 401", status)
	}
	if logs := f.logText(); strings.Contains(logs, testToken) || strings.Contains(logs, testPassword) || strings.Contains(logs, "Sanne") || strings.Contains(logs, "Jansen") {
		t.Errorf("the log carries a credential or a personal field:\n%s", logs)
	}
	if logs := f.logText(); !strings.Contains(logs, "dead letter replayed") || !strings.Contains(logs, "operator=token") || !strings.Contains(logs, "revealed") {
		t.Errorf("the actions are not in the log:\n%s", logs)
	}
}

// TestSignInSession: a browser signs in with the token through the form
// (it cannot send a bearer token) and then acts with the session cookie; a
// wrong token gets no cookie; signing out ends it.
func TestSignInSession(t *testing.T) {
	f := newFixture(t, "console: {listen: \"127.0.0.1:0\", token: "+testToken+"}\n", nil)
	ev := f.ingest("offerte", "offerte-adviseur", "lead", "offerte-adviseur/lead-created.json", "a056V7R7NmNRjl70")
	seq := f.deadLetter(ev)

	status, _, h := f.request(http.MethodPost, "/login", url.Values{"token": {"nope-nope-nope-nope"}, "next": {"/dlq"}})
	if status != http.StatusUnauthorized || h.Get("Set-Cookie") != "" {
		t.Fatalf("sign-in with a wrong token: %d, cookie %q", status, h.Get("Set-Cookie"))
	}
	status, _, h = f.request(http.MethodPost, "/login", url.Values{"token": {testToken}, "next": {"//evil.example/x"}})
	cookie := h.Get("Set-Cookie")
	if status != http.StatusSeeOther || h.Get("Location") != "/" || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Fatalf("sign-in: %d to %q, cookie %q; want 303 to / (never elsewhere), an HttpOnly SameSite=Strict cookie", status, h.Get("Location"), cookie)
	}
	if strings.Contains(cookie, testToken) {
		t.Fatal("the session cookie holds the token")
	}
	session := strings.SplitN(cookie, ";", 2)[0]
	status, _, _ = f.request(http.MethodPost, "/dlq/"+strconv.FormatUint(seq, 10)+"/drop", url.Values{"confirm": {"yes"}}, "Cookie", session)
	if status != http.StatusSeeOther || f.letterExists(seq) {
		t.Errorf("drop with the session: %d, letter there %v", status, f.letterExists(seq))
	}
	// An expired session is refused.
	f.now = f.now.Add(sessionTTL + 1)
	seq = f.deadLetter(ev)
	if status, _, _ := f.request(http.MethodPost, "/dlq/"+strconv.FormatUint(seq, 10)+"/drop", url.Values{"confirm": {"yes"}}, "Cookie", session); status != http.StatusUnauthorized {
		t.Errorf("drop with an expired session: %d, want 401", status)
	}
}

// TestReadsOffLoopbackNeedCredentials: a console bound to every interface
// (the config demands a credential then) shows no page without it, but
// the sign-in form and its assets.
func TestReadsOffLoopbackNeedCredentials(t *testing.T) {
	f := newFixture(t, "console: {listen: \":0\", token: "+testToken+"}\n", nil)
	for _, path := range []string{"/sources", "/events", "/adapters", "/dlq", "/leads", "/trace/x"} {
		if status, body, _ := f.request(http.MethodGet, path, nil); status != http.StatusUnauthorized || !strings.Contains(body, `name="token"`) {
			t.Errorf("GET %s without the token: %d, want 401 with the sign-in form", path, status)
		}
		if status, _, _ := f.request(http.MethodGet, path, nil, "Authorization", "Bearer "+testToken); status == http.StatusUnauthorized {
			t.Errorf("GET %s with the token: 401", path)
		}
	}
	for _, path := range []string{"/login", "/static/console.css", "/static/htmx.min.js"} {
		if status, _, _ := f.request(http.MethodGet, path, nil); status != http.StatusOK {
			t.Errorf("GET %s without the token: %d, want 200", path, status)
		}
	}
	// Off loopback any host name is fine: the credential is the guard.
	if status, _, _ := f.request(http.MethodGet, "/sources", nil, "Host", "ops.example.com", "Authorization", "Bearer "+testToken); status != http.StatusOK {
		t.Errorf("GET /sources for host ops.example.com with the token: %d", status)
	}
}

// TestCrossOriginRefused: a form of another site posting to the console
// (CSRF) is refused whatever credentials the browser adds, and so is a
// page of another site whose name points at 127.0.0.1 (DNS rebinding).
func TestCrossOriginRefused(t *testing.T) {
	f := newFixture(t, "console: {listen: \"127.0.0.1:0\", token: "+testToken+"}\n", nil)
	ev := f.ingest("offerte", "offerte-adviseur", "lead", "offerte-adviseur/lead-created.json", "a056V7R7NmNRjl70")
	seq := f.deadLetter(ev)
	auth := []string{"Authorization", "Bearer " + testToken}
	for _, tc := range []struct {
		name   string
		header []string
		want   int
	}{
		{"Sec-Fetch-Site cross-site", append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), http.StatusForbidden},
		{"Sec-Fetch-Site same-site", append([]string{"Sec-Fetch-Site", "same-site"}, auth...), http.StatusForbidden},
		{"Origin of another site", append([]string{"Origin", "http://evil.example"}, auth...), http.StatusForbidden},
		{"rebound host name", append([]string{"Host", "evil.example:8081"}, auth...), http.StatusMisdirectedRequest},
	} {
		status, _, _ := f.request(http.MethodPost, "/dlq/"+strconv.FormatUint(seq, 10)+"/drop", url.Values{"confirm": {"yes"}}, tc.header...)
		if status != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, status, tc.want)
		}
	}
	if !f.letterExists(seq) {
		t.Fatal("a refused cross-origin request dropped the letter")
	}
	if status, _, _ := f.request(http.MethodGet, "/sources", nil, "Host", "evil.example"); status != http.StatusMisdirectedRequest {
		t.Errorf("a page for a rebound host name: %d, want 421", status)
	}
	// The console's own form: same origin.
	status, _, _ := f.request(http.MethodPost, "/dlq/"+strconv.FormatUint(seq, 10)+"/drop", url.Values{"confirm": {"yes"}},
		append([]string{"Sec-Fetch-Site", "same-origin", "Origin", f.http.URL}, auth...)...)
	if status != http.StatusSeeOther || f.letterExists(seq) {
		t.Errorf("same-origin drop: %d, letter there %v", status, f.letterExists(seq))
	}
}

// TestActionsNeedConfirmation: the buttons lead to a confirmation page
// that posts the action; a POST without its confirmation does nothing but
// show that page.
func TestActionsNeedConfirmation(t *testing.T) {
	f := newFixture(t, "", nil) // default: loopback, no credentials
	ev := f.ingest("offerte", "offerte-adviseur", "lead", "offerte-adviseur/lead-created.json", "a056V7R7NmNRjl70")
	seq := f.deadLetter(ev)
	path := "/dlq/" + strconv.FormatUint(seq, 10)
	for _, action := range []string{"replay", "drop"} {
		status, body, _ := f.request(http.MethodGet, path+"/"+action, nil)
		if status != http.StatusOK || !strings.Contains(body, `action="`+path+"/"+action+`"`) || !strings.Contains(body, `name="confirm" value="yes"`) {
			t.Errorf("GET %s/%s: %d, want the confirmation form", path, action, status)
		}
		status, body, _ = f.request(http.MethodPost, path+"/"+action, url.Values{})
		if status != http.StatusBadRequest || !strings.Contains(body, `name="confirm" value="yes"`) || !f.letterExists(seq) {
			t.Errorf("POST %s/%s unconfirmed: %d, letter there %v; want 400 with the confirmation", path, action, status, f.letterExists(seq))
		}
	}
	// Loopback without credentials configured: a confirmed action is done
	// and logged as the loopback operator's.
	status, _, h := f.request(http.MethodPost, path+"/drop", url.Values{"confirm": {"yes"}}, "HX-Request", "true")
	if status != http.StatusOK || h.Get("HX-Redirect") != "/dlq?done=dropped&seq="+strconv.FormatUint(seq, 10) || f.letterExists(seq) {
		t.Errorf("htmx drop: %d, HX-Redirect %q, letter there %v", status, h.Get("HX-Redirect"), f.letterExists(seq))
	}
	if _, body, _ := f.request(http.MethodGet, "/dlq?done=dropped&seq="+strconv.FormatUint(seq, 10), nil); !strings.Contains(body, "dropped") {
		t.Error("the DLQ page does not say the letter was dropped")
	}
	if !strings.Contains(f.logText(), "operator=loopback") {
		t.Errorf("the drop is not logged as the loopback operator's:\n%s", f.logText())
	}
}
