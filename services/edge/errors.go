package edge

import (
	"context"
	"errors"
	"net"
	"net/http"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/leadstream/leadstream/pkg/jsbatch"
	"github.com/leadstream/leadstream/services/edge/verify"
)

// Why the edge refuses a webhook, besides the verifiers' sentinels (package
// verify) and the publisher's (jsbatch.ErrUnavailable, jsbatch.ErrTooLarge).
// Each refusal is an error wrapping one of them; refusalFor maps it to the
// answer.
var (
	// errUnknownSource means no source has the name in the path, or a token
	// came in the path of a source that takes none.
	errUnknownSource = errors.New("unknown source")

	// errURITooLong means the request target is over maxRequestURI.
	errURITooLong = errors.New("request target too long")

	// errTooLarge means the body is over max_body_bytes, by its
	// Content-Length. A body that turns out longer while it is read ends in
	// an *http.MaxBytesError instead.
	errTooLarge = errors.New("body over max_body_bytes")

	// errReadingOverloaded means the bodies being read already reserve
	// max_reading_bytes.
	errReadingOverloaded = errors.New("reading budget taken")

	// errReadingBody means the body could not be read: cut short, or not in
	// within body_read_timeout (then it also wraps a timeout net.Error).
	errReadingBody = errors.New("reading body")

	// errOverloaded means every in-flight slot (max_in_flight) is taken.
	errOverloaded = errors.New("in-flight limit reached")
)

// refusal is how the edge answers, counts and logs a webhook it does not
// store.
type refusal struct {
	status int
	// outcome is the label of leadstream_edge_requests_total.
	outcome string
	// msg and reason are the JSON body's "error" and "reason" (reason only
	// for a failed verification: a verify.Reason, never from the input).
	msg, reason string
	// retryAfter, when set, is the Retry-After in seconds.
	retryAfter string
	// level and logMsg are the log line.
	level  zapcore.Level
	logMsg string
	// sampled: anyone can send such requests by the thousand, so their lines
	// are sampled (the counters still count every one).
	sampled bool
}

// refusalFor is the one place that maps an error to the edge's answer. ctx
// is the request's: a request its client cancelled is nobody's error.
func refusalFor(ctx context.Context, err error) refusal {
	rejected := func(status int, outcome, msg string) refusal {
		return refusal{status: status, outcome: outcome, msg: msg, level: zapcore.InfoLevel, logMsg: "webhook rejected", sampled: true}
	}
	// Nothing was acknowledged, so the provider must retry.
	unavailable := refusal{status: http.StatusServiceUnavailable, outcome: outcomeUnavailable, msg: "jetstream unavailable", retryAfter: "5",
		level: zapcore.ErrorLevel, logMsg: "webhook not stored"}
	text := http.StatusText
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// The client went away before the PubAck: nobody's failure. The
		// answer reaches no one, and the count is unavailable's, as there
		// is no outcome of its own.
		r := unavailable
		r.level, r.logMsg = zapcore.DebugLevel, "webhook cancelled by the client"
		return r
	case errors.Is(err, errUnknownSource):
		return rejected(http.StatusNotFound, outcomeNotFound, "unknown source")
	case verify.Reason(err) != "unknown": // a verifier's sentinel
		status := http.StatusUnauthorized
		if errors.Is(err, verify.ErrForbiddenIP) {
			status = http.StatusForbidden
		}
		return refusal{status: status, outcome: outcomeUnauthorized, msg: "unauthorized", reason: verify.Reason(err),
			level: zapcore.WarnLevel, logMsg: "webhook not authentic", sampled: true}
	case errors.Is(err, errURITooLong):
		return rejected(http.StatusRequestURITooLong, outcomeURITooLong, text(http.StatusRequestURITooLong))
	case errors.Is(err, jsbatch.ErrTooLarge):
		// Only a server whose max_payload shrank since the edge started
		// (checked then) gets here. A retry cannot succeed: 413, not 503.
		return refusal{status: http.StatusRequestEntityTooLarge, outcome: outcomeTooLarge, msg: text(http.StatusRequestEntityTooLarge),
			level: zapcore.ErrorLevel, logMsg: "webhook too large for the NATS server"}
	case errors.Is(err, errTooLarge), errors.As(err, &tooLarge):
		return rejected(http.StatusRequestEntityTooLarge, outcomeTooLarge, text(http.StatusRequestEntityTooLarge))
	case errors.Is(err, errOverloaded):
		r := rejected(http.StatusTooManyRequests, outcomeOverloaded, "overloaded")
		r.retryAfter = "1"
		return r
	case errors.Is(err, errReadingOverloaded):
		r := rejected(http.StatusTooManyRequests, outcomeReadingOverloaded, text(http.StatusTooManyRequests))
		r.retryAfter = "1"
		return r
	case errors.Is(err, errReadingBody) && errors.As(err, &netErr) && netErr.Timeout():
		return rejected(http.StatusRequestTimeout, outcomeReadTimeout, text(http.StatusRequestTimeout))
	case errors.Is(err, errReadingBody):
		return rejected(http.StatusBadRequest, outcomeBadRequest, text(http.StatusBadRequest))
	default: // jsbatch.ErrUnavailable, or anything unforeseen
		return unavailable
	}
}

// refuse answers a webhook the edge does not store because of err, counts it
// and logs it; fields (an event id) go into the log line.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, name string, err error, fields ...zap.Field) {
	f := refusalFor(r.Context(), err)
	if f.outcome == outcomeNotFound {
		name = "" // an unknown name is not a label value: anyone can make up names
	}
	s.metrics.requests.WithLabelValues(name, f.outcome).Inc()
	log := s.log
	if f.sampled {
		log = s.rejectLog
	}
	if f.reason != "" {
		s.metrics.verifyFails.WithLabelValues(name, f.reason).Inc()
		fields = append(fields, zap.String("reason", f.reason))
	} else {
		fields = append(fields, zap.Error(err))
	}
	if ce := log.Check(f.level, f.logMsg); ce != nil {
		ce.Write(append(fields, zap.String("source", name), zap.String("outcome", f.outcome))...)
	}
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	writeError(w, f.status, f.msg, f.reason)
}
