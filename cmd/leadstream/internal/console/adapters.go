package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/dispatcher"
)

type adapterRow struct {
	Name, Type string
	// Target is where it delivers, without credentials: the webhook's
	// scheme and host, or the nats adapter's stream.
	Target string
	// Backlog is the events waiting in the adapter's consumer group stream
	// to be taken by a dispatcher: its lag. Known false when the group
	// stream is not there (not provisioned).
	Backlog      uint64
	BacklogKnown bool
	// Members are the dispatcher processes in its consumer group.
	Members int
	// DeadLetters waiting in dlq.deliver.<adapter>.
	DeadLetters uint64
	// In process only (the dispatcher's gauges and counters).
	Parked       float64
	OldestParked time.Duration
	Retrying     float64
	Breaker      string
	Delivered    float64
	Retries      float64
	DeadLettered float64
}

type adaptersView struct {
	Rows      []adapterRow
	InProcess bool
	Since     time.Time
	Warnings  []string
}

// breakerStates are the values of leadstream_dispatcher_breaker_state.
var breakerStates = map[float64]string{0: "closed", 1: "half-open", 2: "open"}

func (s *Server) serveAdapters(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := pageContext(r)
	defer cancel()
	v := adaptersView{}
	letters, err := deadLettersBySubject(ctx, s.js)
	if err != nil {
		v.Warnings = append(v.Warnings, "DLQ: "+err.Error())
	}
	var delta map[series]float64
	var gauges map[string]map[string]float64
	if s.rates != nil {
		if delta, v.Since, gauges, err = s.rates.lastHour(); err != nil {
			v.Warnings = append(v.Warnings, err.Error())
		}
		_, v.InProcess = gauges[mBreaker]
		if hourAgo := s.now().Add(-window); v.Since.Before(hourAgo) {
			v.Since = hourAgo
		}
	}
	for i := range s.cfg.Adapters {
		a := &s.cfg.Adapters[i]
		row := adapterRow{Name: a.Name, Type: a.Type, Target: target(a), DeadLetters: letters[streams.DLQSubject(dlq.StageDeliver, a.Name)]}
		if st, err := s.js.Stream(ctx, dispatcher.GroupStream(a.Name)); err == nil {
			row.Backlog, row.BacklogKnown = st.CachedInfo().State.Msgs, true
		}
		if members, err := dispatcher.Members(ctx, s.js, a.Name); err == nil {
			row.Members = len(members)
		}
		if v.InProcess {
			row.Parked = gauges[mParked][a.Name]
			row.OldestParked = time.Duration(gauges[mOldestParked][a.Name] * float64(time.Second)).Round(time.Second)
			row.Retrying = gauges[mRetrying][a.Name]
			row.Breaker = breakerStates[gauges[mBreaker][a.Name]]
			row.Delivered = delta[series{mDeliveries, a.Name, "delivered"}] + delta[series{mDeliveries, a.Name, "delivered_orphan"}]
			row.Retries = delta[series{mDeliveries, a.Name, "retry"}]
			row.DeadLettered = delta[series{mDeliveries, a.Name, "dead_lettered"}]
		}
		v.Rows = append(v.Rows, row)
	}
	s.render(w, r, http.StatusOK, "adapters", "Adapters", "adapters", v)
}

// target names where a delivers, never with a user or password in it.
func target(a *config.Adapter) string {
	if a.Type == "nats" {
		if a.Stream != "" {
			return "stream " + a.Stream
		}
		return "stream ORDERED_" + strings.ToUpper(strings.ReplaceAll(a.Name, "-", "_"))
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// deadLettersBySubject counts the letters in DLQ per subject
// (dlq.<stage>.<name>).
func deadLettersBySubject(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	st, err := js.Stream(ctx, streams.DLQ)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("dlq.>"))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", streams.DLQ, err)
	}
	return info.State.Subjects, nil
}
