package config

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// envRef matches ${NAME} and ${NAME:-default}. A bare $NAME is left alone so
// that a literal dollar in a secret survives.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces ${NAME} with the environment's value, outside YAML
// comments (a commented-out line may name a variable nobody sets). An unset
// variable without a default is an error naming it, so a missing secret is
// not silently "". The value is inserted as text: quote a value that may
// hold YAML syntax ("${SECRET}").
func expandEnv(data []byte) ([]byte, error) {
	var missing []string
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, line := range lines {
		code, comment := splitComment(line)
		expanded := envRef.ReplaceAllFunc(code, func(m []byte) []byte {
			sub := envRef.FindSubmatch(m)
			name := string(sub[1])
			if v, ok := os.LookupEnv(name); ok && v != "" {
				return []byte(v)
			}
			if len(sub[2]) > 0 {
				return sub[3]
			}
			if !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
			return nil
		})
		lines[i] = append(expanded, comment...)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment variables not set (referenced as ${NAME}, without a :-default): %s", strings.Join(missing, ", "))
	}
	return bytes.Join(lines, nil), nil
}

// splitComment splits a YAML line before its comment: a # at the start or
// after white space, outside quotes.
func splitComment(line []byte) (code, comment []byte) {
	var quote byte
	for i, c := range line {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i], line[i:]
		}
	}
	return line, nil
}
