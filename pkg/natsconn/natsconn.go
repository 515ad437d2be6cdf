// Package natsconn connects leadstream's services to NATS the same way
// everywhere: reconnect forever, never buffer publishes while disconnected.
package natsconn

import (
	"fmt"
	neturl "net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Options configures a connection.
type Options struct {
	// Name is the client name the server shows.
	Name string
	// CredsFile is an optional NATS credentials file.
	CredsFile string
	// Logger receives connection events; nil is quiet.
	Logger *zap.Logger
	// Closed, when set, is called once when the connection is closed for
	// good, with the error that closed it (nil after Close or Drain). Past
	// that nothing on the connection works again: nats.go reconnects after
	// a lost connection, but never after the server closed it for a
	// protocol error (a control line over max_control_line, say) or a
	// repeated authorization failure, whatever MaxReconnects says. A
	// process that did not close its connection itself is then no longer
	// alive and should end, so that its supervisor restarts it.
	Closed func(err error)
}

// Connect connects to url and returns the connection and a JetStream context.
//
// Publishes are not buffered while disconnected (ReconnectBufSize -1): a
// buffered message could be stored after its caller was told 503, or lost
// with the process after the caller was told nothing. Failing at once is the
// honest answer, and providers retry.
func Connect(url string, o Options) (*nats.Conn, jetstream.JetStream, error) {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(10 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", zap.String("url", c.ConnectedUrlRedacted())) }),
	}
	if o.Closed != nil {
		closed := o.Closed
		opts = append(opts, nats.ClosedHandler(func(c *nats.Conn) { closed(c.LastError()) }))
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to nats at %s: %w", Redact(url), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// Redact returns servers, a comma-separated list of NATS URLs, with every
// password replaced by "xxxxx", so that an error or a log line never
// carries one.
func Redact(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		u, err := neturl.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			parts[i] = u.Redacted()
		} else if u.User.Username() != "" {
			// A lone user part may be a token.
			u.User = neturl.User("xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
