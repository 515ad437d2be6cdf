package benchkit

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/embedded"
	"github.com/leadstream/leadstream/pkg/natsconn"
)

// JetStream is a JetStream server in this process for one measurement, as
// production runs it (file streams, fsync before every ack), with a client
// connection.
type JetStream struct {
	// URL is the server's client URL, on 127.0.0.1.
	URL string
	// Dir is the store, removed by Close.
	Dir string
	// Conn and JS are the client connection.
	Conn *nats.Conn
	JS   jetstream.JetStream

	ns *server.Server
}

// StartJetStream starts a server on 127.0.0.1 at a free port, with its
// store in a new directory under o.StoreDir named after name, and connects
// to it. The store is always fresh: a reused one could hold an interrupted
// run's backlog, which the next run would measure as its own.
func StartJetStream(o *Options, name string) (*JetStream, error) {
	dir, err := os.MkdirTemp(o.StoreDir, "leadstream-bench-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("bench: store dir: %w", err)
	}
	o.Step("%s: starting JetStream (file store %s, fsync before every ack)", name, dir)
	ns, err := embedded.Start(embedded.Options{Listen: "127.0.0.1:0", StoreDir: dir, Logger: o.Logger})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: %w", err)
	}
	nc, js, err := natsconn.Connect(ns.ClientURL(), natsconn.Options{Name: "leadstream-bench-" + name, Logger: o.Logger})
	if err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: %w", err)
	}
	return &JetStream{URL: ns.ClientURL(), Dir: dir, Conn: nc, JS: js, ns: ns}, nil
}

// Close closes the connection, stops the server and removes its store.
func (j *JetStream) Close() {
	j.Conn.Close()
	j.ns.Shutdown()
	j.ns.WaitForShutdown()
	os.RemoveAll(j.Dir)
}

// StreamState is the state of stream name: its messages, sequences and
// the time of its last message.
func StreamState(ctx context.Context, js jetstream.JetStream, name string) (jetstream.StreamState, error) {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("bench: stream %s: %w", name, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("bench: stream %s: %w", name, err)
	}
	return info.State, nil
}

// fillChunk bounds the asynchronous publishes in flight while a stream is
// filled: nats.go refuses more than its limit of pending acks, and every
// message waits for its own fsync.
const fillChunk = 512

// Fill stores n messages before the clock starts, msg(i) the i-th, with
// asynchronous publishes in chunks. A message taken as a duplicate is an
// error: the load would not be what it claims.
func Fill(ctx context.Context, js jetstream.JetStream, n int, msg func(i int) (*nats.Msg, error)) error {
	futures := make([]jetstream.PubAckFuture, 0, fillChunk)
	for i := 0; i < n; {
		futures = futures[:0]
		for ; i < n && len(futures) < fillChunk; i++ {
			m, err := msg(i)
			if err != nil {
				return err
			}
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				return fmt.Errorf("bench: storing %s: %w", m.Subject, err)
			}
			futures = append(futures, f)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, f := range futures {
			select {
			case ack := <-f.Ok():
				if ack.Duplicate {
					return fmt.Errorf("bench: %s took %s as a duplicate: the load is not unique", ack.Stream, f.Msg().Header.Get(jetstream.MsgIDHeader))
				}
			case err := <-f.Err():
				return fmt.Errorf("bench: storing %s: %w", f.Msg().Subject, err)
			}
		}
	}
	return nil
}
