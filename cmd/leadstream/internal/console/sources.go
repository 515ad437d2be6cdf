package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/streams"
)

// Edge outcomes and verification failure reasons, in the order the page
// shows them (services/edge/metrics.go and verify name them).
var (
	outcomeOrder = []string{"accepted", "duplicate", "unauthorized", "too_large", "bad_request", "unavailable", "overloaded",
		"reading_overloaded", "read_timeout", "uri_too_long"}
	reasonOrder = []string{"missing_signature", "malformed", "digest_mismatch", "unknown_key", "bad_signature", "clock_skew",
		"bad_token", "forbidden_ip"}
)

// count is a labelled number on a page.
type count struct {
	Label string
	N     float64
}

type sourceRow struct {
	Name, Provider, Tenant string
	// LastAccepted is the time of the source's last message in RAW; zero
	// when RAW holds none.
	LastAccepted time.Time
	// Stored is how many of its requests RAW stored in the last hour
	// (accepted, duplicates within RAW's window not counted).
	Stored uint64
	// Outcomes and Failures: the edge's counters over the last hour, in
	// process only.
	Outcomes []count
	Failures []count
}

type sourcesView struct {
	Rows []sourceRow
	// InProcess: the edge runs in this process and its counters are read.
	InProcess bool
	// Since is when the counters' last hour starts (the process's start when
	// it is younger).
	Since time.Time
	// Outcomes are the columns of the outcome table: accepted, duplicate,
	// unauthorized, and every other outcome some source had.
	Outcomes []string
	// UnknownSource is the requests for a source that is not configured (404).
	UnknownSource float64
	Warnings      []string
}

func (s *Server) serveSources(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := pageContext(r)
	defer cancel()
	v := sourcesView{}
	hourAgo := s.now().Add(-window)
	var delta map[series]float64
	if s.rates != nil {
		var err error
		if delta, v.Since, _, err = s.rates.lastHour(); err != nil {
			v.Warnings = append(v.Warnings, err.Error())
		}
		for k := range delta {
			if k.family == mRequests { // the edge runs in this process
				v.InProcess = true
				break
			}
		}
		if v.Since.Before(hourAgo) {
			v.Since = hourAgo
		}
	}
	shown := map[string]bool{"accepted": true, "duplicate": true, "unauthorized": true}
	for _, src := range s.cfg.Sources {
		row := sourceRow{Name: src.Name, Provider: src.Provider, Tenant: src.Tenant}
		filter := "raw.*.*." + src.Name
		last, err := lastMessageTime(ctx, s.js, streams.RAW, filter)
		if err != nil {
			v.Warnings = append(v.Warnings, fmt.Sprintf("%s: last accepted: %v", src.Name, err))
		}
		row.LastAccepted = last
		if row.Stored, err = countSince(ctx, s.js, streams.RAW, filter, hourAgo); err != nil {
			v.Warnings = append(v.Warnings, fmt.Sprintf("%s: stored in the last hour: %v", src.Name, err))
		}
		if v.InProcess {
			for _, o := range outcomeOrder {
				n := delta[series{mRequests, src.Name, o}]
				row.Outcomes = append(row.Outcomes, count{o, n})
				if n > 0 {
					shown[o] = true
				}
			}
			for _, reason := range reasonOrder {
				if n := delta[series{mVerifyFails, src.Name, reason}]; n > 0 {
					row.Failures = append(row.Failures, count{reason, n})
				}
			}
		}
		v.Rows = append(v.Rows, row)
	}
	if v.InProcess {
		v.UnknownSource = delta[series{mRequests, "", "not_found"}]
		for _, o := range outcomeOrder {
			if shown[o] {
				v.Outcomes = append(v.Outcomes, o)
			}
		}
		for i := range v.Rows {
			v.Rows[i].Outcomes = slices.DeleteFunc(v.Rows[i].Outcomes, func(c count) bool { return !shown[c.Label] })
		}
	}
	s.render(w, r, http.StatusOK, "sources", "Sources", "sources", v)
}

// lastMessageTime is the time of the last message of stream on filter (a
// subject with wildcards); zero when there is none.
func lastMessageTime(ctx context.Context, js jetstream.JetStream, stream, filter string) (time.Time, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return time.Time{}, err
	}
	m, err := st.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return m.Time, nil
}

// countSince is how many messages of stream on filter were stored at or
// after since: the pending count of a consumer that would start there,
// which the server works out from its index without sending a message.
func countSince(ctx context.Context, js jetstream.JetStream, stream, filter string, since time.Time) (uint64, error) {
	c, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
		OptStartTime:      &since,
		FilterSubject:     filter,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return 0, err
	}
	n := c.CachedInfo().NumPending
	_ = js.DeleteConsumer(ctx, stream, c.CachedInfo().Name)
	return n, nil
}
