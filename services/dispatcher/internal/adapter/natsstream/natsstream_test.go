package natsstream_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/leadstream/leadstream/pkg/envelope"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/pkg/natstest"
	leadstreamv1 "github.com/leadstream/leadstream/proto/leadstream/v1"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/adaptertest"
	"github.com/leadstream/leadstream/services/dispatcher/internal/adapter/natsstream"
)

// bound is how long a test waits for anything that should happen.
const bound = 10 * time.Second

// TestContract runs the adapter contract. The suite scripts an LMS in HTTP
// outcomes, so the adapter talks to a front NATS server (no JetStream of its
// own) where the shim sits, and behind it is a real embedded JetStream:
//
//   - the JetStream API ($JS.API.>: the adapter creating and updating its
//     stream in Connect) is forwarded to the real server unchanged, both
//     ways;
//   - a publish to the ordered stream's subjects is an attempt at the LMS:
//     on Accept the shim publishes the message as it arrived (headers, so
//     Nats-Msg-Id and Nats-Expected-Stream, included) to the real server,
//     which stores it in the real stream and answers, and the shim hands
//     that PubAck back byte for byte; on a failure status it answers a
//     JetStream API error of that code, as JetStream answers when it fails;
//     Disconnect is a no-responders status, what the adapter gets when no
//     stream takes the subject; Hang answers nothing.
//
// So this is not a mock of JetStream: the stream, its configuration, its
// duplicate window and the messages in it are the real server's, and every
// PubAck the adapter accepts came from it. Only the failures are made up,
// because a healthy JetStream cannot be made to answer 429 or 503 on cue.
// JetStream has no Retry-After, hence NoRetryAfter.
func TestContract(t *testing.T) {
	store := natstest.RunServer(t)
	storeNC, _ := natstest.Connect(t, store)
	front, frontNC := runFront(t)

	var proxied sync.WaitGroup
	api, err := frontNC.Subscribe("$JS.API.>", func(m *nats.Msg) {
		proxied.Go(func() {
			resp, err := storeNC.RequestMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, bound)
			if err != nil {
				return // the adapter's request times out, as it would
			}
			_ = m.RespondMsg(&nats.Msg{Header: resp.Header, Data: resp.Data})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last to first: this one after every subtest's.
	t.Cleanup(func() { _ = api.Unsubscribe(); proxied.Wait() })

	var n atomic.Int32
	adaptertest.RunWith(t, func(t *testing.T, lms *adaptertest.LMS) adapter.Adapter {
		// One adapter, so one stream and one subject prefix, per test case.
		name := fmt.Sprintf("contract-%d", n.Add(1))
		a, err := natsstream.New(natsstream.Config{Name: name, URL: front.ClientURL()}, nil)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		shim(t, frontNC, storeNC, lms, "ordered."+name+".>")
		return a
	}, adaptertest.Options{NoRetryAfter: true})
}

// runFront starts a NATS server without JetStream, where only the shim
// answers, and connects to it.
func runFront(t *testing.T) (*server.Server, *nats.Conn) {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(bound) {
		t.Fatal("front nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, _, err := natsconn.Connect(s.ClientURL(), natsconn.Options{Name: "shim"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return s, nc
}

// shim answers the adapter's publishes on subjects as the LMS says. Each
// publish is handled in its own goroutine: a held answer must not hold up
// the others (the contract delivers in parallel).
func shim(t *testing.T, front, store *nats.Conn, lms *adaptertest.LMS, subjects string) {
	t.Helper()
	var handlers sync.WaitGroup
	sub, err := front.Subscribe(subjects, func(m *nats.Msg) {
		handlers.Go(func() { handle(t, store, lms, m) })
	})
	if err != nil {
		t.Fatal(err)
	}
	// Registered before the suite's own cleanup, so it runs after it: the
	// LMS is closed by then, which releases every held answer.
	t.Cleanup(func() { _ = sub.Unsubscribe(); handlers.Wait() })
}

func handle(t *testing.T, store *nats.Conn, lms *adaptertest.LMS, m *nats.Msg) {
	ce, err := envelope.FromEventMsg(m)
	if err != nil {
		t.Errorf("shim: not an EVENTS-style message: %v", err)
	}
	var ev leadstreamv1.Event
	if err := proto.Unmarshal(m.Data, &ev); err != nil {
		t.Errorf("shim: body is not a leadstream.v1.Event: %v", err)
	}
	if id := m.Header.Get(nats.MsgIdHdr); ce == nil || id != ce.ID || id != ev.GetId() {
		t.Errorf("shim: Nats-Msg-Id %q, ce-id %v, event id %q: want them equal", id, ce, ev.GetId())
	}
	attempt, _ := strconv.Atoi(m.Header.Get(natsstream.HeaderAttempt))
	missing, err := envelope.HeaderValue(m.Header, natsstream.HeaderMissing)
	if err != nil {
		t.Errorf("shim: %v", err)
	}
	r := adaptertest.Received{
		EventID: m.Header.Get(nats.MsgIdHdr),
		Attempt: attempt,
		Orphan:  m.Header.Get(natsstream.HeaderOrphan) == "true",
		Body:    m.Data,
	}
	if ce != nil {
		r.Type = ce.Type
	}
	if missing != "" {
		r.Missing = strings.Split(missing, ",")
	}
	o := lms.Receive(context.Background(), r)

	status := o.StatusCode()
	switch {
	case o.Disconnect:
		_ = m.RespondMsg(&nats.Msg{Header: nats.Header{"Status": []string{"503"}}})
	case status/100 == 2:
		ack, err := store.RequestMsg(&nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data}, bound)
		if err != nil {
			t.Errorf("shim: storing in the real stream: %v", err)
			return
		}
		_ = m.RespondMsg(&nats.Msg{Header: ack.Header, Data: ack.Data})
	default:
		_ = m.Respond(fmt.Appendf(nil, `{"type":"io.nats.jetstream.api.v1.pub_ack_response","error":{"code":%d,"err_code":10999,"description":"shim: the LMS answered %d %s"}}`,
			status, status, http.StatusText(status)))
	}
}
