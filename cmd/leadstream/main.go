// Command leadstream is the one binary of the leadstream pipeline: each
// service as a subcommand, the whole pipeline on an embedded JetStream
// (`run`), and the operator tools.
package main

import (
	"fmt"
	"os"
)

const usage = `leadstream - webhook intake for lead marketplaces, on NATS JetStream

usage: leadstream <command> [flags]

commands:
  run        the whole pipeline in one process; embedded JetStream when nats.url is empty
  edge       the HTTP edge alone, against the NATS in nats.url
  normalizer the normalizer consumers alone (--kinds=lead,chat,...), against nats.url
  dispatcher deliver EVENTS to the configured LMS adapters (--adapters=crm,...), against nats.url
  demo-lms   a demo LMS that verifies Standard Webhooks signatures and prints what arrives
  trace      trace <event id | provider event id> [--json]: what became of one webhook, stage by stage
  lead       lead show <id>: the order-independent state of a lead, conversation, transaction ...
  replay     re-normalize RAW into EVENTS from a sequence or time (--since, --kinds)
  dlq        list, show, replay or drop dead letters (ls | show | replay | drop)
  console    the operators' web console alone (sources, events, traces, adapters, DLQ, leads), on console.listen
  simulate   send correctly signed sample webhooks of every provider to an edge
  check      load and validate the config, then exit (0 when valid)
  health     GET a health endpoint, exit 0 on 2xx (container health checks)
  provision  create or update the streams, buckets, consumers and consumer groups the config needs, print what changed

Every command takes --config (default: $LEADSTREAM_CONFIG, else deploy/local/leadstream.yaml).
Run 'leadstream <command> -h' for its flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"run":        cmdRun,
		"edge":       cmdEdge,
		"normalizer": cmdNormalizer,
		"replay":     cmdReplay,
		"dispatcher": cmdDispatcher,
		"demo-lms":   cmdDemoLMS,
		"lead":       cmdLead,
		"dlq":        cmdDLQ,
		"console":    cmdConsole,
		"simulate":   cmdSimulate,
		"check":      cmdCheck,
		"provision":  cmdProvision,
		"health":     cmdHealth,
		"trace":      cmdTrace,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		if os.Args[1] != "-h" && os.Args[1] != "--help" && os.Args[1] != "help" {
			fmt.Fprintf(os.Stderr, "leadstream: unknown command %q\n\n", os.Args[1])
		}
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "leadstream %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
