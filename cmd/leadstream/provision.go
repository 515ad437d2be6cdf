package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/leadstream/leadstream/pkg/config"
	"github.com/leadstream/leadstream/pkg/streams"
	"github.com/leadstream/leadstream/services/dispatcher"
	"github.com/leadstream/leadstream/services/normalizer"
)

// cmdProvision creates or updates the whole topology the config describes
// (streams, buckets, consumers, the adapters' consumer groups, ordered
// streams), prints what it created or changed, and exits: the one-shot a
// deployment runs before the services start (compose's `provision`
// service, Kubernetes' provision Job). JetStream refuses a change it cannot
// apply in place (a stream's storage, a work queue's retention, ...);
// provision stops there and names the object.
func cmdProvision(args []string) error {
	fs := flag.NewFlagSet("provision", flag.ExitOnError)
	path := configFlag(fs)
	if err := wantArgs("provision", parseArgs(fs, args), 0); err != nil {
		return err
	}
	cfg, nc, js, err := opsConn(*path)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return provision(ctx, js, cfg, zap.NewNop(), os.Stdout)
}

// provision applies the topology of cfg on js and writes to out, one line
// each, what it created and what it changed (and how), then a count of
// what was already as configured. Running it again changes nothing.
func provision(ctx context.Context, js jetstream.JetStream, cfg *config.Config, log *zap.Logger, out io.Writer) error {
	before, err := topology(ctx, js)
	if err != nil {
		return err
	}
	applyErr := applyTopology(ctx, js, cfg, log)
	after, err := topology(ctx, js)
	if err != nil {
		return err
	}
	unchanged := 0
	for _, name := range slices.Sorted(maps.Keys(after)) {
		was, ok := before[name]
		switch {
		case !ok:
			fmt.Fprintf(out, "created  %s\n", name)
		case string(was) != string(after[name]):
			fmt.Fprintf(out, "changed  %s: %s\n", name, strings.Join(changedFields(was, after[name]), ", "))
		default:
			unchanged++
		}
	}
	if applyErr != nil {
		return fmt.Errorf("provisioning stopped: %w", applyErr)
	}
	fmt.Fprintf(out, "%d more already as configured\n", unchanged)
	return nil
}

// applyTopology creates or updates everything the services of cfg use: RAW,
// then what the normalizer and the dispatcher (every kind and adapter, and
// the leads projection) set up when they start.
func applyTopology(ctx context.Context, js jetstream.JetStream, cfg *config.Config, log *zap.Logger) error {
	if err := streams.Ensure(ctx, js, streams.RawConfig(cfg)); err != nil {
		return err
	}
	if err := normalizer.Provision(ctx, js, cfg, nil); err != nil {
		return err
	}
	if err := dispatcher.Provision(ctx, js, cfg); err != nil {
		return err
	}
	// Binding every adapter connects it: a nats adapter makes its ordered
	// stream then.
	d, err := dispatcher.New(ctx, dispatcher.Options{Config: cfg, JetStream: js, Logger: log, Projection: true})
	if err != nil {
		return err
	}
	d.Close()
	return nil
}

// topology reads every stream's and consumer's configuration, and the
// consumer groups', keyed "stream NAME", "consumer STREAM > NAME" and
// "group NAME". The groups' member consumers come and go with the
// dispatchers and are left out.
func topology(ctx context.Context, js jetstream.JetStream) (map[string]json.RawMessage, error) {
	out := map[string]json.RawMessage{}
	infos := js.ListStreams(ctx)
	for si := range infos.Info() {
		data, err := json.Marshal(si.Config)
		if err != nil {
			return nil, err
		}
		out["stream "+si.Config.Name] = data
		if strings.HasPrefix(si.Config.Name, streams.EVENTS+"-") {
			continue // a consumer group's stream: its consumers are its members
		}
		st, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			return nil, fmt.Errorf("reading stream %s: %w", si.Config.Name, err)
		}
		cs := st.ListConsumers(ctx)
		for ci := range cs.Info() {
			if ci.Config.Durable == "" {
				continue // ephemeral: a reader's, not the topology's
			}
			data, err := json.Marshal(ci.Config)
			if err != nil {
				return nil, err
			}
			out["consumer "+si.Config.Name+" > "+ci.Name] = data
		}
		if err := cs.Err(); err != nil {
			return nil, fmt.Errorf("reading consumers of %s: %w", si.Config.Name, err)
		}
	}
	if err := infos.Err(); err != nil {
		return nil, fmt.Errorf("reading streams: %w", err)
	}
	if kv, err := js.KeyValue(ctx, "elastic-consumer-groups"); err == nil {
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			return nil, err
		}
		for k := range keys.Keys() {
			e, err := kv.Get(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("reading consumer group %s: %w", k, err)
			}
			var g map[string]any
			if json.Unmarshal(e.Value(), &g) != nil {
				continue
			}
			delete(g, "members") // the running dispatchers', not the topology
			data, _ := json.Marshal(g)
			out["group "+k] = data
		}
	}
	return out, nil
}

// changedFields names the top-level fields that differ between two JSON
// objects, with their old and new values when they are short.
func changedFields(was, now json.RawMessage) []string {
	var a, b map[string]json.RawMessage
	_ = json.Unmarshal(was, &a)
	_ = json.Unmarshal(now, &b)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(mergeKeys(a, b))) {
		if string(a[k]) == string(b[k]) {
			continue
		}
		if len(a[k])+len(b[k]) < 80 {
			out = append(out, fmt.Sprintf("%s %s -> %s", k, orNone(a[k]), orNone(b[k])))
		} else {
			out = append(out, k)
		}
	}
	return out
}

func mergeKeys(a, b map[string]json.RawMessage) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func orNone(v json.RawMessage) string {
	if len(v) == 0 {
		return "(none)"
	}
	return string(v)
}
