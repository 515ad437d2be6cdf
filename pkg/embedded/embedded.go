// Package embedded runs a NATS server with JetStream inside the process: the
// dev mode behind `make run`, and the server every test runs against.
package embedded

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"
)

// Options configures an embedded server.
type Options struct {
	// Listen is the client address, host:port. Port 0 picks a free port.
	Listen string
	// StoreDir is JetStream's file store.
	StoreDir string
	// NoSync turns off fsync before every acknowledgement. Only tests that do
	// not restart the server may set it; leadstream itself never does.
	NoSync bool
	// Logger receives the server's log lines; nil keeps it quiet.
	Logger *zap.Logger
	// MaxPayload is the largest message (headers and body) the server
	// takes. Default 8 MiB, as the shipped NATS configs set it; tests set
	// less to play a server configured otherwise.
	MaxPayload int32
}

// defaultMaxPayload is the embedded server's max_payload, and the shipped
// NATS configs': a 1 MiB body and its RAW envelope do not fit nats-server's
// own default of 1 MiB.
const defaultMaxPayload = 8 << 20

// Start starts the server and waits until it accepts clients.
//
// JetStream syncs every write to disk before it acknowledges (SyncAlways): a
// 2xx from the edge promises the request survives a power failure, and the
// server's default (fsync every 2 minutes) would break that promise.
func Start(o Options) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = defaultMaxPayload
	}
	opts := &server.Options{
		ServerName:         "leadstream-embedded",
		Host:               host,
		Port:               port,
		JetStream:          true,
		StoreDir:           o.StoreDir,
		SyncAlways:         !o.NoSync,
		NoSigs:             true,
		MaxPayload:         o.MaxPayload,
		JetStreamMaxMemory: 256 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(&logger{o.Logger.Named("nats").Sugar()}, false, false, false)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 30s (address %s, store %s)", o.Listen, o.StoreDir)
	}
	return s, nil
}

// logger adapts zap to nats-server's Logger.
type logger struct{ s *zap.SugaredLogger }

func (l *logger) Noticef(format string, v ...any) { l.s.Debugf(format, v...) }
func (l *logger) Warnf(format string, v ...any)   { l.s.Warnf(format, v...) }
func (l *logger) Fatalf(format string, v ...any)  { l.s.Errorf(format, v...) }
func (l *logger) Errorf(format string, v ...any)  { l.s.Errorf(format, v...) }
func (l *logger) Debugf(format string, v ...any)  { l.s.Debugf(format, v...) }
func (l *logger) Tracef(format string, v ...any)  {}
