package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/dlq"
	"github.com/leadstream/leadstream/pkg/natsconn"
	"github.com/leadstream/leadstream/services/dispatcher"
	"github.com/leadstream/leadstream/services/normalizer"
)

// opsConn loads the config at path and connects an operator command to its
// NATS: nats.url, or the dev mode's embedded server at nats.listen (which
// must be running).
func opsConn(path string) (*config.Config, *nats.Conn, jetstream.JetStream, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, nil, err
	}
	url := cfg.NATS.URL
	if url == "" {
		url = "nats://" + cfg.NATS.Listen
	}
	nc, js, err := natsconn.Connect(url, natsconn.Options{Name: "leadstream-ops", CredsFile: cfg.NATS.CredsFile})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w (is the pipeline running? `make run` starts it)", err)
	}
	return cfg, nc, js, nil
}

func cmdReplay(args []string) error {
	fs := flag.NewFlagSet("replay", flag.ExitOnError)
	path := configFlag(fs)
	since := fs.String("since", "", "where to start in RAW: a stream sequence (e.g. 1) or an RFC 3339 time (e.g. 2026-11-26T00:00:00Z)")
	kinds := fs.String("kinds", "", "comma-separated kinds to replay; empty: all")
	if err := wantArgs("replay", parseArgs(fs, args), 0); err != nil {
		return err
	}
	from, err := parseSince(*since)
	if err != nil {
		return err
	}
	cfg, nc, js, err := opsConn(*path)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx := context.Background()
	n, err := normalizer.New(ctx, normalizer.Options{Config: cfg, JetStream: js, Logger: zap.NewNop(), Kinds: splitList(*kinds)})
	if err != nil {
		return err
	}
	defer n.Close()
	rep, err := n.Replay(ctx, from, splitList(*kinds))
	if rep != nil {
		fmt.Printf("read %d RAW messages: %d events published, %d already in EVENTS, %d not mappable (see `leadstream dlq ls`)\n",
			rep.Read, rep.Published, rep.Present, rep.Failed)
	}
	return err
}

func parseSince(s string) (normalizer.ReplayFrom, error) {
	if s == "" {
		return normalizer.ReplayFrom{}, errors.New("--since is required: a RAW sequence or an RFC 3339 time")
	}
	if seq, err := strconv.ParseUint(s, 10, 64); err == nil {
		return normalizer.ReplayFrom{Seq: max(seq, 1)}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return normalizer.ReplayFrom{}, fmt.Errorf("--since %q: want a sequence number or an RFC 3339 time", s)
	}
	return normalizer.ReplayFrom{Time: t}, nil
}

const dlqUsage = `usage: leadstream dlq <ls|show|replay|drop> [flags] [seq|--all]
  ls [--stage normalize|deliver] [--name kind|adapter]   list dead letters
  show <seq>                                              print one, with its body
  replay <seq>|--all [--stage ...]                        process again; removed from DLQ on success
  drop <seq>|--all [--stage ...]                          delete`

func cmdDLQ(args []string) error {
	if len(args) == 0 {
		return errors.New(dlqUsage)
	}
	verb := args[0]
	fs := flag.NewFlagSet("dlq "+verb, flag.ExitOnError)
	path := configFlag(fs)
	stage := fs.String("stage", "", "only this stage: normalize or deliver")
	name := fs.String("name", "", "only this kind (normalize) or adapter (deliver)")
	all := fs.Bool("all", false, "replay or drop every matching dead letter")
	pos := parseArgs(fs, args[1:])
	cfg, nc, js, err := opsConn(*path)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx := context.Background()
	filter := dlq.Filter{Stage: *stage, Name: *name}

	targets := func() ([]uint64, error) {
		if *all {
			letters, err := dlq.List(ctx, js, filter)
			var seqs []uint64
			for _, l := range letters {
				seqs = append(seqs, l.Seq)
			}
			return seqs, err
		}
		if len(pos) == 0 {
			return nil, errors.New(dlqUsage)
		}
		if err := wantArgs("dlq "+verb, pos, 1); err != nil {
			return nil, err
		}
		seq, err := strconv.ParseUint(pos[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dead letter sequence %q: want the SEQ that `dlq ls` prints", pos[0])
		}
		return []uint64{seq}, nil
	}

	switch verb {
	case "ls":
		if err := wantArgs("dlq ls", pos, 0); err != nil {
			return err
		}
		letters, err := dlq.List(ctx, js, filter)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tSTAGE\tNAME\tREASON\tATTEMPTS\tORIGIN\tAT\tERROR")
		for _, l := range letters {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s#%d\t%s\t%s\n", l.Seq, l.Stage, l.Name, l.Reason, l.Attempts, l.Subject, l.Sequence, l.At.Format(time.RFC3339), l.Error)
		}
		return tw.Flush()
	case "show":
		seqs, err := targets()
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			l, err := dlq.Get(ctx, js, seq)
			if err != nil {
				return err
			}
			fmt.Printf("seq:      %d\nstage:    %s\nname:     %s\nreason:   %s\nerror:    %s\norigin:   %s #%d\nattempts: %d\nat:       %s\n",
				l.Seq, l.Stage, l.Name, l.Reason, l.Error, l.Subject, l.Sequence, l.Attempts, l.At.Format(time.RFC3339Nano))
			for k, v := range l.Header {
				fmt.Printf("header:   %s: %s\n", k, v[0])
			}
			fmt.Printf("body:\n%s\n", l.Body)
		}
		return nil
	case "replay":
		seqs, err := targets()
		if err != nil {
			return err
		}
		r := newReplayer(cfg, js, zap.NewNop())
		defer r.Close()
		failed := 0
		for _, seq := range seqs {
			done, err := r.Replay(ctx, seq)
			if err != nil {
				failed++
				fmt.Printf("%d: %v\n", seq, err)
				continue
			}
			fmt.Printf("%d: %s\n", seq, done)
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d dead letters not replayed", failed, len(seqs))
		}
		return nil
	case "drop":
		seqs, err := targets()
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			if err := dlq.Drop(ctx, js, seq); err != nil {
				return err
			}
			fmt.Printf("%d: dropped\n", seq)
		}
		return nil
	}
	return errors.New(dlqUsage)
}

// replayer processes dead letters again, as `leadstream dlq replay` and the
// console do: a normalize-stage letter is normalized again, a
// deliver-stage one delivered to its adapter with its original
// webhook-id; each is removed from DLQ on success. The normalizer and the
// dispatchers it needs are made at the first letter that needs them and
// kept until Close.
type replayer struct {
	cfg *config.Config
	js  jetstream.JetStream
	log *zap.Logger

	mu          sync.Mutex // one replay at a time
	normalizer  *normalizer.Service
	dispatchers map[string]*dispatcher.Service
}

func newReplayer(cfg *config.Config, js jetstream.JetStream, log *zap.Logger) *replayer {
	return &replayer{cfg: cfg, js: js, log: log, dispatchers: map[string]*dispatcher.Service{}}
}

// Replay processes the dead letter at seq again and says what became of it.
func (r *replayer) Replay(ctx context.Context, seq uint64) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, err := dlq.Get(ctx, r.js, seq)
	if err != nil {
		return "", err
	}
	switch l.Stage {
	case dlq.StageNormalize:
		if r.normalizer == nil {
			n, err := normalizer.New(ctx, normalizer.Options{Config: r.cfg, JetStream: r.js, Logger: r.log, Kinds: []string{"unknown"}})
			if err != nil {
				return "", err
			}
			r.normalizer = n
		}
		if _, err := r.normalizer.ReplayDeadLetter(ctx, seq); err != nil {
			return "", err
		}
		return "normalized, removed from DLQ", nil
	case dlq.StageDeliver:
		d, ok := r.dispatchers[l.Name]
		if !ok {
			if d, err = dispatcher.New(ctx, dispatcher.Options{Config: r.cfg, JetStream: r.js, Logger: r.log, Adapters: []string{l.Name}}); err != nil {
				return "", err
			}
			r.dispatchers[l.Name] = d
		}
		if err := d.ReplayDeadLetter(ctx, seq); err != nil {
			return "", err
		}
		return "delivered to " + l.Name + " with its original webhook-id, removed from DLQ", nil
	}
	return "", fmt.Errorf("stage %q cannot be replayed by this version", l.Stage)
}

// Close closes what the replays made.
func (r *replayer) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.normalizer != nil {
		r.normalizer.Close()
	}
	for _, d := range r.dispatchers {
		d.Close()
	}
}
