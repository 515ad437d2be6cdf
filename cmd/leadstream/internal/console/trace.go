package console

import (
	"net/http"
	"time"

	"github.com/leadstream/leadstream/services/dispatcher"
	"github.com/leadstream/leadstream/services/dispatcher/leads"
)

// Trace is the life of one webhook, as `leadstream trace` tells it:
// received into RAW, normalized into EVENTS or dead-lettered, what became
// of it at each adapter, and the state of its lead.
type Trace struct {
	EventID         string
	Source          string
	ProviderEventID string
	Found           bool
	Received        *TraceReceived
	Normalized      *TraceNormalized
	DeadLetters     []TraceLetter
	Adapters        []dispatcher.AdapterTrace
	Lead            *leads.State
}

// TraceReceived is the webhook's RAW message.
type TraceReceived struct {
	Sequence   uint64
	Subject    string
	Provider   string
	Kind       string
	KeyID      string
	ReceivedAt time.Time
}

// TraceNormalized is the webhook's EVENTS message.
type TraceNormalized struct {
	Sequence   uint64
	Subject    string
	Type       string
	Aggregate  string
	Tenant     string
	OccurredAt time.Time
}

// TraceLetter is a dead letter of the webhook, of either stage.
type TraceLetter struct {
	Seq      uint64
	Stage    string
	Name     string
	Reason   string
	Error    string
	Attempts int
	At       time.Time
}

type traceView struct {
	ID    string
	Trace *Trace
	// Status is the lead's status, nothing personal.
	Status string
}

func (s *Server) serveTrace(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := pageContext(r)
	defer cancel()
	id := r.PathValue("id")
	tr, err := s.ops.Trace(ctx, id)
	if err != nil {
		s.failErr(w, r, "tracing "+id, err)
		return
	}
	v := traceView{ID: id, Trace: tr}
	if tr.Lead != nil {
		v.Status = tr.Lead.Status.Value
	}
	status := http.StatusOK
	if !tr.Found {
		status = http.StatusNotFound
	}
	s.render(w, r, status, "trace", "Trace "+id, "events", v)
}
