package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// layout is what every page's frame shows around its content.
type layout struct {
	Title string
	// Nav is the menu entry to highlight.
	Nav string
	// Operator is who is signed in ("" for nobody); AuthConfigured says
	// whether signing in means anything.
	Operator       string
	AuthConfigured bool
	// Standalone: no edge or dispatcher in this process.
	Standalone bool
	Now        time.Time
	Page       any
}

var funcs = template.FuncMap{
	// ts is a time as operators read it: UTC, to the second; "-" for none.
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	// ago is how long before now t was: "3m20s ago".
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := now.Sub(t)
		if d < 0 {
			return "in " + (-d).Round(time.Second).String()
		}
		return d.Round(time.Second).String() + " ago"
	},
	// n is a count without decimals.
	"n": func(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) },
	// path escapes an id for a URL path, keeping the slashes of an
	// aggregate id.
	"path": escapePath,
	// short cuts a long id for a table, keeping its start.
	"short": func(s string) string {
		if len(s) <= 13 {
			return s
		}
		return s[:8] + "…"
	},
	"join": strings.Join,
}

// parsePages parses each page with the layout around it.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, fmt.Errorf("console: templates: %w", err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes page with data inside the layout. It renders into a
// buffer first, so that a template error is a 500, not half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page, title, nav string, data any) {
	t, ok := s.pages[page]
	if !ok {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	l := layout{Title: title, Nav: nav, AuthConfigured: s.auth.configured, Standalone: s.rates == nil, Now: s.now(), Page: data}
	if s.auth.configured {
		l.Operator, _ = s.auth.operator(r)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", l); err != nil {
		s.log.Error("console: rendering a page failed", zap.String("page", page), zap.Error(err))
		http.Error(w, "rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
