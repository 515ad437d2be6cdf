package edge

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/leadstream/leadstream/pkg/jsbatch"
	"github.com/leadstream/leadstream/services/edge/verify"
)

// TestRefusals: every error the edge refuses a webhook for, wrapped as the
// code wraps it, gets its status, exact body, Retry-After, outcome and log
// level; a publish that timed out is not a slow body (408), and only a
// request whose own context was cancelled is logged below error level.
func TestRefusals(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	const unavailable = `{"error":"jetstream unavailable"}`
	for _, c := range []struct {
		name       string
		ctx        context.Context
		err        error
		status     int
		body       string
		retryAfter string
		outcome    string
		level      zapcore.Level
	}{
		{"unknown source", live, errUnknownSource, 404, `{"error":"unknown source"}`, "", outcomeNotFound, zapcore.InfoLevel},
		{"target too long", live, fmt.Errorf("%w: 2000 bytes", errURITooLong), 414, `{"error":"Request URI Too Long"}`, "", outcomeURITooLong, zapcore.InfoLevel},
		{"content length", live, fmt.Errorf("%w: 5000", errTooLarge), 413, `{"error":"Request Entity Too Large"}`, "", outcomeTooLarge, zapcore.InfoLevel},
		{"body longer than allowed", live, fmt.Errorf("%w: %w", errReadingBody, &http.MaxBytesError{Limit: 4096}), 413, `{"error":"Request Entity Too Large"}`, "", outcomeTooLarge, zapcore.InfoLevel},
		{"body too slow", live, fmt.Errorf("%w: %w", errReadingBody, timeout), 408, `{"error":"Request Timeout"}`, "", outcomeReadTimeout, zapcore.InfoLevel},
		{"body cut short", live, fmt.Errorf("%w: %w", errReadingBody, io.ErrUnexpectedEOF), 400, `{"error":"Bad Request"}`, "", outcomeBadRequest, zapcore.InfoLevel},
		{"reading budget", live, fmt.Errorf("%w: 8192", errReadingOverloaded), 429, `{"error":"Too Many Requests"}`, "1", outcomeReadingOverloaded, zapcore.InfoLevel},
		{"in-flight slots", live, errOverloaded, 429, `{"error":"overloaded"}`, "1", outcomeOverloaded, zapcore.InfoLevel},
		{"bad signature", live, fmt.Errorf("hmac: %w", verify.ErrBadSignature), 401, `{"error":"unauthorized","reason":"bad_signature"}`, "", outcomeUnauthorized, zapcore.WarnLevel},
		{"bad token", live, verify.ErrBadToken, 401, `{"error":"unauthorized","reason":"bad_token"}`, "", outcomeUnauthorized, zapcore.WarnLevel},
		{"address not allowed", live, fmt.Errorf("token: %w", verify.ErrForbiddenIP), 403, `{"error":"unauthorized","reason":"forbidden_ip"}`, "", outcomeUnauthorized, zapcore.WarnLevel},
		{"over max_payload", live, fmt.Errorf("%w: 9000 bytes", jsbatch.ErrTooLarge), 413, `{"error":"Request Entity Too Large"}`, "", outcomeTooLarge, zapcore.ErrorLevel},
		{"no PubAck in time", live, fmt.Errorf("%w: %w", jsbatch.ErrUnavailable, context.DeadlineExceeded), 503, unavailable, "5", outcomeUnavailable, zapcore.ErrorLevel},
		{"publisher closed", live, fmt.Errorf("%w: publisher closed", jsbatch.ErrUnavailable), 503, unavailable, "5", outcomeUnavailable, zapcore.ErrorLevel},
		{"cancelled, request live", live, fmt.Errorf("%w: %w", jsbatch.ErrUnavailable, context.Canceled), 503, unavailable, "5", outcomeUnavailable, zapcore.ErrorLevel},
		{"client gone", gone, fmt.Errorf("%w: %w", jsbatch.ErrUnavailable, context.Canceled), 503, unavailable, "5", outcomeUnavailable, zapcore.DebugLevel},
	} {
		t.Run(c.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			s := &Server{log: zap.New(core), rejectLog: zap.New(core)}
			s.metrics = newMetrics(prometheus.NewRegistry(), &s.inFlight, &s.readers, &s.readingBytes)
			w := httptest.NewRecorder()
			s.refuse(w, httptest.NewRequest(http.MethodPost, "/hooks/mp-api", nil).WithContext(c.ctx), "mp-api", c.err)

			if w.Code != c.status || w.Body.String() != c.body+"\n" || w.Header().Get("Retry-After") != c.retryAfter {
				t.Errorf("answer %d %q Retry-After %q, want %d %q Retry-After %q",
					w.Code, w.Body.String(), w.Header().Get("Retry-After"), c.status, c.body+"\n", c.retryAfter)
			}
			source := "mp-api"
			if c.outcome == outcomeNotFound {
				source = ""
			}
			if got := testutil.ToFloat64(s.metrics.requests.WithLabelValues(source, c.outcome)); got != 1 {
				t.Errorf("requests_total{source=%q,outcome=%q} = %v, want 1", source, c.outcome, got)
			}
			if reason := verify.Reason(c.err); c.outcome == outcomeUnauthorized && testutil.ToFloat64(s.metrics.verifyFails.WithLabelValues("mp-api", reason)) != 1 {
				t.Errorf("verify_failures_total{reason=%q} not counted", reason)
			}
			if entries := logs.All(); len(entries) != 1 || entries[0].Level != c.level {
				t.Errorf("log lines %v, want one at %s", entries, c.level)
			}
		})
	}
}
