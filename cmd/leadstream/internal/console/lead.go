package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/leadstream/leadstream/services/dispatcher/leads"
)

// leadField is one field of a lead's state, masked unless revealed.
type leadField struct {
	Name     string
	Value    string
	Personal bool
	At       time.Time
	Event    string
}

type leadView struct {
	ID       string
	State    *leads.State
	Fields   []leadField
	Personal int // how many fields are masked (or were, when Revealed)
	Revealed bool
	MayAct   bool
}

// searchForm sends a search box's id to its page, prefix+id; without an
// id it renders page with its empty view.
func (s *Server) searchForm(page, title, nav string, empty any, prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimSpace(r.URL.Query().Get("id"))
		if id == "" {
			s.render(w, r, http.StatusOK, page, title, nav, empty)
			return
		}
		http.Redirect(w, r, prefix+escapePath(id), http.StatusSeeOther)
	}
}

// escapePath escapes each segment of an aggregate id ("offerte/lead/12345"),
// keeping its slashes.
func escapePath(id string) string {
	parts := strings.Split(id, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func (s *Server) serveLead(w http.ResponseWriter, r *http.Request) {
	s.renderLead(w, r, r.PathValue("id"), false)
}

// revealLead shows a lead's personal fields to an operator who may act.
func (s *Server) revealLead(w http.ResponseWriter, r *http.Request) {
	id := r.PostFormValue("id")
	who, ok := s.auth.mayAct(r)
	if !ok {
		s.log.Warn("console: reveal refused without credentials")
		s.unauthorized(w, r, "Refused: to reveal personal fields, sign in first.")
		return
	}
	s.log.Info("console: lead's personal fields revealed", zap.String("operator", who), zap.String("lead", leadKey(id)))
	s.renderLead(w, r, id, true)
}

// leadKey is how the log names a lead: its key in the leads bucket, which
// is ids only (a bare id typed into the search could be anything).
func leadKey(id string) string {
	if strings.Contains(id, "/") {
		return leads.Key(id)
	}
	return "(lookup)"
}

func (s *Server) renderLead(w http.ResponseWriter, r *http.Request, id string, reveal bool) {
	ctx, cancel := pageContext(r)
	defer cancel()
	st, err := s.leadState(ctx, id)
	switch {
	case errors.Is(err, leads.ErrNotFound):
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("No lead, conversation or transaction %q in the leads projection.", id))
		return
	case err != nil:
		s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("Looking up %q: %v", id, err))
		return
	}
	v := leadView{ID: id, State: st, Revealed: reveal}
	_, v.MayAct = s.auth.mayAct(r)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range st.Fields {
			if !yield(k) {
				return
			}
		}
	}) {
		reg := st.Fields[name]
		f := leadField{Name: name, Value: reg.Value, At: reg.At, Event: reg.Event}
		if kind := classify(name); kind != notPersonal {
			f.Personal = true
			v.Personal++
			if !reveal {
				f.Value = mask(kind, reg.Value)
			}
		}
		v.Fields = append(v.Fields, f)
	}
	s.render(w, r, http.StatusOK, "lead", "Lead "+st.Aggregate, "leads", v)
}

func (s *Server) leadState(ctx context.Context, id string) (*leads.State, error) {
	kv, err := s.js.KeyValue(ctx, leads.Bucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w (is the dispatcher's projection running?)", leads.Bucket, err)
	}
	return leads.NewStore(kv).Get(ctx, id)
}
