package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/envelope"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
)

// maxBodyShown bounds the body a letter's page shows; maxLetters the
// letters the list shows (the newest).
const (
	maxBodyShown = 64 << 10
	maxLetters   = 500
)

// letterRow is a dead letter in the list.
type letterRow struct {
	Seq      uint64
	Stage    string
	Name     string
	Reason   string
	Error    string
	Attempts int
	Origin   string
	At       time.Time
	EventID  string
}

// rowOf is l as the list, its page and its confirmation show it.
func rowOf(l *dlq.Letter) letterRow {
	return letterRow{Seq: l.Seq, Stage: l.Stage, Name: l.Name, Reason: l.Reason, Error: l.Error, Attempts: l.Attempts,
		Origin: fmt.Sprintf("%s #%d", l.Subject, l.Sequence), At: l.At, EventID: eventIDOf(l)}
}

type dlqView struct {
	Rows   []letterRow
	Stage  string
	Name   string
	Stages []string
	Names  []string
	// Total is how many letters match; Rows holds the newest maxLetters.
	Total int
	// Done says what the last action did ("replayed", "dropped") to Seq.
	Done    string
	DoneSeq string
	DoneMsg string
}

// eventIDOf is the event id a letter is about: a normalizer's carries
// RAW's headers, a dispatcher's EVENTS'.
func eventIDOf(l *dlq.Letter) string {
	if id := l.Header.Get(envelope.HdrEventID); id != "" {
		return id
	}
	id, _ := envelope.HeaderValue(l.Header, envelope.HdrCEID)
	return id
}

func (s *Server) serveDLQ(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := pageContext(r)
	defer cancel()
	q := r.URL.Query()
	v := dlqView{Stage: q.Get("stage"), Name: q.Get("name"), Stages: []string{dlq.StageNormalize, dlq.StageDeliver},
		Done: q.Get("done"), DoneSeq: q.Get("seq")}
	if v.Stage != "" && !slices.Contains(v.Stages, v.Stage) {
		s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("stage %q: want normalize or deliver", v.Stage))
		return
	}
	if v.Name != "" && !tenantTok.MatchString(v.Name) {
		s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("name %q: want a kind or an adapter name", v.Name))
		return
	}
	if _, err := strconv.ParseUint(v.DoneSeq, 10, 64); err != nil {
		v.Done = ""
	}
	switch v.Done {
	case "replayed":
		v.DoneMsg = "Dead letter " + v.DoneSeq + " replayed and removed from DLQ."
	case "dropped":
		v.DoneMsg = "Dead letter " + v.DoneSeq + " dropped."
	}
	// Newest first: what went wrong last is what an operator looks for.
	letters, total, err := dlq.Newest(ctx, s.js, dlq.Filter{Stage: v.Stage, Name: v.Name}, maxLetters)
	if err != nil {
		s.failErr(w, r, "reading DLQ", err)
		return
	}
	names := map[string]bool{}
	v.Total = total
	for _, l := range letters {
		names[l.Name] = true
		v.Rows = append(v.Rows, rowOf(l))
	}
	for _, a := range s.cfg.Adapters {
		names[a.Name] = true
	}
	v.Names = slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	})
	s.render(w, r, http.StatusOK, "dlq", "Dead letters", "dlq", v)
}

// header is one header of a letter's original message.
type header struct{ Name, Value string }

type letterView struct {
	letterRow
	Subject  string
	Sequence uint64
	Log      []string
	Headers  []header
	// Body is the original message's body: JSON with its personal fields
	// masked, unless Revealed. BodyHidden: it could not be masked (not
	// JSON) and is not shown until revealed.
	Body       string
	BodySize   int
	BodyHidden bool
	BodyCut    bool
	// Payload is the provider's payload inside a deliver-stage letter's
	// event, shown as Body is.
	Payload       string
	PayloadHidden bool
	PayloadCut    bool
	Revealed      bool
	// MayAct: this request may replay, drop and reveal (else the buttons
	// lead to the sign-in).
	MayAct bool
}

func (s *Server) letter(ctx context.Context, w http.ResponseWriter, r *http.Request) (*dlq.Letter, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("no dead letter %q: want the number the DLQ list shows", r.PathValue("seq")))
		return nil, false
	}
	l, err := dlq.Get(ctx, s.js, seq)
	if errors.Is(err, dlq.ErrNotFound) {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("No dead letter %d: replayed or dropped already, or never there.", seq))
		return nil, false
	}
	if err != nil {
		s.failErr(w, r, "reading DLQ", err)
		return nil, false
	}
	return l, true
}

func (s *Server) serveLetter(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := pageContext(r)
	defer cancel()
	l, ok := s.letter(ctx, w, r)
	if !ok {
		return
	}
	s.renderLetter(w, r, l, false)
}

func (s *Server) renderLetter(w http.ResponseWriter, r *http.Request, l *dlq.Letter, reveal bool) {
	v := letterView{
		letterRow: rowOf(l),
		Subject:   l.Subject, Sequence: l.Sequence, Log: l.Log, BodySize: len(l.Body), Revealed: reveal,
	}
	_, v.MayAct = s.auth.mayAct(r)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range l.Header {
			if !yield(k) {
				return
			}
		}
	}) {
		val := l.Header.Get(k)
		if k == envelope.HdrPath {
			val = hookPath(val)
		}
		v.Headers = append(v.Headers, header{k, val})
	}
	body := l.Body
	if l.Stage == dlq.StageDeliver {
		// The event as protobuf: shown as its protojson, and the provider's
		// payload in it (bytes, which protojson would show as base64, past
		// any masking) as a document of its own.
		var ev leadstreamv1.Event
		if proto.Unmarshal(l.Body, &ev) == nil {
			payload := ev.GetPayload()
			ev.Payload = nil
			if b, err := protojson.Marshal(&ev); err == nil {
				body = b
				v.Payload, v.PayloadHidden, v.PayloadCut = shown(payload, reveal)
			}
		}
	}
	v.Body, v.BodyHidden, v.BodyCut = shown(body, reveal)
	s.render(w, r, http.StatusOK, "letter", fmt.Sprintf("Dead letter %d", l.Seq), "dlq", v)
}

// shown is a body as the letter's page shows it: JSON with its personal
// fields masked, or as it is when revealed; hidden when it cannot be
// masked (not JSON); cut at maxBodyShown.
func shown(body []byte, reveal bool) (text string, hidden, cut bool) {
	switch {
	case len(body) == 0:
		return "", false, false
	case reveal:
		text = indentJSON(body)
	default:
		var ok bool
		if text, ok = maskJSON(body); !ok {
			return "", true, false
		}
	}
	if len(text) > maxBodyShown {
		return strings.ToValidUTF8(text[:maxBodyShown], ""), false, true
	}
	return text, false, false
}

// hookPath is a webhook's path without what follows /hooks/<source>:
// RAW envelopes of versions before the edge stopped keeping it held a
// Lokalebasen token there.
func hookPath(p string) string {
	parts := strings.SplitN(p, "/", 4) // "", "hooks", source, rest
	if len(parts) == 4 {
		return strings.Join(parts[:3], "/") + "/…"
	}
	return p
}

// actions on a dead letter, and what their confirmation asks.
var actions = map[string]string{
	"replay": "Replay",
	"drop":   "Drop",
}

type confirmView struct {
	letterRow
	Action string
	Verb   string
	// What the action does, in words.
	Effect string
}

func (s *Server) confirmView(l *dlq.Letter, action string) confirmView {
	v := confirmView{letterRow: rowOf(l),
		Action: action, Verb: actions[action]}
	switch {
	case action == "drop":
		v.Effect = "The letter is deleted from DLQ for good; the event is not processed again."
	case l.Stage == dlq.StageDeliver:
		v.Effect = fmt.Sprintf("The event is delivered to %s again, with its original webhook-id; on success the letter leaves DLQ.", l.Name)
	default:
		v.Effect = "The webhook is normalized again from its RAW body; on success the letter leaves DLQ."
	}
	return v
}

// serveConfirm is the confirmation page of an action: a form that POSTs
// it, for browsers without JavaScript (htmx asks with a dialog instead).
func (s *Server) serveConfirm(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	if _, ok := actions[action]; !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("no action %q on a dead letter", action))
		return
	}
	ctx, cancel := pageContext(r)
	defer cancel()
	l, ok := s.letter(ctx, w, r)
	if !ok {
		return
	}
	s.render(w, r, http.StatusOK, "confirm", actions[action]+fmt.Sprintf(" dead letter %d", l.Seq), "dlq", s.confirmView(l, action))
}

// act replays, drops or reveals a dead letter: an operator's POST, after
// the confirmation (replay and drop).
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	action := r.PathValue("action")
	if _, ok := actions[action]; !ok && action != "reveal" {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("no action %q on a dead letter", action))
		return
	}
	who, ok := s.auth.mayAct(r)
	if !ok {
		s.log.Warn("console: action refused without credentials", zap.String("action", action), zap.String("seq", r.PathValue("seq")))
		s.unauthorized(w, r, "Refused: to "+action+" a dead letter, sign in first.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), actionTimeout)
	defer cancel()
	l, ok := s.letter(ctx, w, r)
	if !ok {
		return
	}
	log := s.log.With(zap.String("operator", who), zap.Uint64("seq", l.Seq), zap.String("stage", l.Stage), zap.String("name", l.Name), zap.String("event_id", eventIDOf(l)))
	if action == "reveal" {
		log.Info("console: dead letter's body revealed")
		s.renderLetter(w, r, l, true)
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		s.render(w, r, http.StatusBadRequest, "confirm", actions[action]+fmt.Sprintf(" dead letter %d", l.Seq), "dlq", s.confirmView(l, action))
		return
	}
	switch action {
	case "replay":
		msg, err := s.ops.Replay(ctx, l.Seq)
		if err != nil {
			log.Warn("console: dead letter replay failed", zap.Error(err))
			s.fail(w, r, http.StatusBadGateway, fmt.Sprintf("Dead letter %d was not replayed and stays in DLQ: %v", l.Seq, err))
			return
		}
		log.Info("console: dead letter replayed", zap.String("outcome", msg))
		s.done(w, r, "replayed", l.Seq)
	case "drop":
		if err := dlq.Drop(ctx, s.js, l.Seq); err != nil {
			log.Warn("console: dead letter drop failed", zap.Error(err))
			s.fail(w, r, http.StatusBadGateway, fmt.Sprintf("Dead letter %d was not dropped: %v", l.Seq, err))
			return
		}
		log.Info("console: dead letter dropped")
		s.done(w, r, "dropped", l.Seq)
	}
}

// done sends the browser to the DLQ list, which says what was done: a 303
// (a reload does not repeat the action), or for htmx its redirect header.
func (s *Server) done(w http.ResponseWriter, r *http.Request, what string, seq uint64) {
	to := fmt.Sprintf("/dlq?done=%s&seq=%d", what, seq)
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
