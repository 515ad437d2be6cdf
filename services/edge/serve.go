package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Serve answers webhooks on ln until ctx ends, then shuts down gracefully:
// it stops accepting, lets the requests in flight finish (each one answered
// after its PubAck), and stops the publisher. It returns nil after a clean
// shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	const headerTimeout = 10 * time.Second
	// A webhook's body has its own deadline (body_read_timeout, set by the
	// handler); these are the backstops for the whole exchange.
	body, publish := s.cfg.BodyReadTimeout.Duration, s.cfg.PublishTimeout.Duration
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       headerTimeout + body,
		WriteTimeout:      headerTimeout + body + publish + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("edge listening", zap.String("addr", ln.Addr().String()), zap.Int("sources", len(s.sources)))
	select {
	case err := <-errc:
		s.Close()
		return fmt.Errorf("edge: serving http: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("edge shutting down: draining requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.Duration)
	defer cancel()
	err := srv.Shutdown(sctx)
	s.Close()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("edge: shutdown: %w", err)
	}
	s.log.Info("edge stopped")
	return nil
}
