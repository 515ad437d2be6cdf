package config

import (
	"strings"
	"testing"
)

// TestConsoleListen: the console listens on loopback unless told
// otherwise, "off" or an empty listen turns it off, and only an address the
// config did not name counts as the default.
func TestConsoleListen(t *testing.T) {
	tests := []struct {
		name, yaml   string
		listen       string
		defaulted    bool
		enabled      bool
		loopback     bool
		authRequired bool
	}{
		{"absent", "", DefaultConsoleListen, true, true, true, false},
		{"section without listen", "console: {token: 0123456789abcdef}\n", DefaultConsoleListen, true, true, true, false},
		{"empty section", "console:\n", DefaultConsoleListen, true, true, true, false},
		{"off", "console: {listen: \"off\"}\n", "", false, false, false, false},
		{"empty", "console: {listen: \"\"}\n", "", false, false, false, false},
		{"explicit loopback", "console: {listen: \"127.0.0.1:9999\"}\n", "127.0.0.1:9999", false, true, true, false},
		{"localhost", "console: {listen: \"localhost:0\"}\n", "localhost:0", false, true, true, false},
		{"ipv6 loopback", "console: {listen: \"[::1]:8081\"}\n", "[::1]:8081", false, true, true, false},
		{"every interface with a token", "console: {listen: \":8081\", token: 0123456789abcdef}\n", ":8081", false, true, false, true},
		{"every interface with basic auth", "console: {listen: \"0.0.0.0:8081\", basic_auth: {user: ops, password: correct-horse}}\n", "0.0.0.0:8081", false, true, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, minimalWith(tc.yaml)).Console
			if c.Listen != tc.listen || c.DefaultListen != tc.defaulted || c.Enabled() != tc.enabled || (c.Enabled() && c.Loopback() != tc.loopback) {
				t.Errorf("listen %q default %v enabled %v loopback %v; want %q %v %v %v", c.Listen, c.DefaultListen, c.Enabled(), c.Loopback(), tc.listen, tc.defaulted, tc.enabled, tc.loopback)
			}
			if tc.authRequired && !c.AuthConfigured() {
				t.Error("no auth configured")
			}
		})
	}
}

// TestConsoleValidation: a console reachable from elsewhere needs a
// credential; weak or half-given credentials are refused; each error names
// its field and never the credential.
func TestConsoleValidation(t *testing.T) {
	tests := []struct {
		name, yaml, field, secret string
	}{
		{"every interface without auth", "console: {listen: \":8081\"}\n", "console.listen", ""},
		{"public IP without auth", "console: {listen: \"192.0.2.10:8081\"}\n", "console.listen", ""},
		{"host name without auth", "console: {listen: \"ops.example.com:8081\"}\n", "console.listen", ""},
		{"no port", "console: {listen: \"127.0.0.1\"}\n", "console.listen", ""},
		{"bad port", "console: {listen: \"127.0.0.1:http-ish\"}\n", "console.listen", ""},
		{"short token", "console: {token: short-Secret9}\n", "console.token", "short-Secret9"},
		{"token with a space", "console: {token: \"0123456789 abcdefgh\"}\n", "console.token", "0123456789 abcdefgh"},
		{"user without password", "console: {basic_auth: {user: ops}}\n", "console.basic_auth.password", ""},
		{"password without user", "console: {basic_auth: {password: correct-horse-9}}\n", "console.basic_auth.user", "correct-horse-9"},
		{"short password", "console: {basic_auth: {user: ops, password: Pw-short1}}\n", "console.basic_auth.password", "Pw-short1"},
		{"colon in user", "console: {basic_auth: {user: \"o:ps\", password: correct-horse-9}}\n", "console.basic_auth.user", "correct-horse-9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, minimalWith(tc.yaml))
			if err == nil {
				t.Fatalf("no error for %s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.field+": ") {
				t.Errorf("error does not name %s:\n%v", tc.field, err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !fieldLine.MatchString(line) {
					t.Errorf("error line does not start with a field: %q", line)
				}
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error quotes the credential: %v", err)
			}
		})
	}
}

// TestConsoleUnknownField: the console section is decoded as strictly as
// the rest of the file.
func TestConsoleUnknownField(t *testing.T) {
	_, err := parse(t, minimalWith("console: {listen: \"127.0.0.1:8081\", tokn: x}\n"))
	if err == nil || !strings.Contains(err.Error(), "field tokn not found") || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("error %v, want the unknown field tokn named with its line", err)
	}
}

// TestConsoleSetListen: `leadstream console --listen` is checked as the
// config is.
func TestConsoleSetListen(t *testing.T) {
	c := mustParse(t, minimal).Console
	if err := c.SetListen("0.0.0.0:8081"); err == nil || !strings.Contains(err.Error(), "console.listen") {
		t.Errorf("SetListen to every interface without auth: %v", err)
	}
	if err := c.SetListen("127.0.0.1:0"); err != nil || c.Listen != "127.0.0.1:0" || c.DefaultListen {
		t.Errorf("SetListen(127.0.0.1:0): %v, listen %q default %v", err, c.Listen, c.DefaultListen)
	}
}

// TestConsoleSecretsFromEnv: the console's credentials come from the
// environment like every other secret.
func TestConsoleSecretsFromEnv(t *testing.T) {
	t.Setenv("CONSOLE_TOKEN", "tok-0123456789abcdef")
	t.Setenv("CONSOLE_PASSWORD", "correct-horse-battery")
	c := mustParse(t, minimalWith("console:\n  listen: \":8081\"\n  token: \"${CONSOLE_TOKEN}\"\n  basic_auth: {user: ops, password: \"${CONSOLE_PASSWORD}\"}\n")).Console
	if c.Token != "tok-0123456789abcdef" || c.BasicAuth.Password != "correct-horse-battery" {
		t.Errorf("token %q, password %q: not from the environment", c.Token, c.BasicAuth.Password)
	}
}
