package streams_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/leadstream/leadstream/pkg/natstest"
	"github.com/leadstream/leadstream/pkg/streams"
)

// TestRead reads a stream of more messages than one batch holds: to its
// end as it was when the reading started, in order, filtered, stopped
// early, and headers only.
func TestRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.RunServer(t)
	_, js := natstest.Connect(t, srv)
	for _, name := range []string{"S", "EMPTY"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}}); err != nil {
			t.Fatal(err)
		}
	}
	const total = 600 // more than one batch
	for i := range total {
		subject := "S.even"
		if i%2 == 1 {
			subject = "S.odd"
		}
		msg := &nats.Msg{Subject: subject, Header: nats.Header{"N": {fmt.Sprint(i)}}, Data: []byte(fmt.Sprint(i))}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	errBroken := errors.New("broken")
	for _, c := range []struct {
		name   string
		stream string
		cfg    jetstream.OrderedConsumerConfig
		// stop, when > 0, makes f return err at the stop-th message.
		stop int
		err  error
		// publish makes f publish one more message at the first: Read must
		// not read on into it.
		publish bool
		want    []int
		wantErr error
	}{
		{name: "all", stream: "S", want: seq(0, total, 1)},
		{name: "filtered", stream: "S", cfg: jetstream.OrderedConsumerConfig{FilterSubjects: []string{"S.odd"}}, want: seq(1, total, 2)},
		{name: "filter without messages", stream: "S", cfg: jetstream.OrderedConsumerConfig{FilterSubjects: []string{"S.none"}}},
		{name: "from a sequence", stream: "S", cfg: jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: total - 2}, want: seq(total-3, total, 1)},
		{name: "headers only", stream: "S", cfg: jetstream.OrderedConsumerConfig{HeadersOnly: true, FilterSubjects: []string{"S.even"}}, want: seq(0, total, 2)},
		{name: "stopped", stream: "S", stop: 300, err: streams.ErrStop, want: seq(0, 300, 1)},
		{name: "failed", stream: "S", stop: 3, err: errBroken, want: seq(0, 3, 1), wantErr: errBroken},
		{name: "not on into new messages", stream: "S", cfg: jetstream.OrderedConsumerConfig{FilterSubjects: []string{"S.even"}}, publish: true, want: seq(0, total, 2)},
		{name: "empty stream", stream: "EMPTY"},
		{name: "no such stream", stream: "NONE", wantErr: jetstream.ErrStreamNotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []int
			err := streams.Read(ctx, js, c.stream, c.cfg, func(m jetstream.Msg, md *jetstream.MsgMetadata) error {
				var n int
				if _, err := fmt.Sscan(m.Headers().Get("N"), &n); err != nil {
					return err
				}
				if c.cfg.HeadersOnly != (len(m.Data()) == 0) {
					return fmt.Errorf("message %d: %d body bytes, headers only %v", n, len(m.Data()), c.cfg.HeadersOnly)
				}
				if md.Sequence.Stream != uint64(n+1) {
					return fmt.Errorf("message %d at sequence %d", n, md.Sequence.Stream)
				}
				got = append(got, n)
				if c.publish && len(got) == 1 {
					if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "S.even", Header: nats.Header{"N": {"-1"}}}); err != nil {
						return err
					}
				}
				if len(got) == c.stop {
					return c.err
				}
				return nil
			})
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Read: %v, want %v", err, c.wantErr)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("read %d messages %v...; want %d %v...", len(got), head(got), len(c.want), head(c.want))
			}
		})
	}
}

// seq is from, from+step, ... below to.
func seq(from, to, step int) []int {
	var s []int
	for i := from; i < to; i += step {
		s = append(s, i)
	}
	return s
}

func head(s []int) []int { return s[:min(len(s), 5)] }
