# leadstream. Two commands do everything on a machine with only Go:
#   make run    the whole pipeline on an embedded JetStream, sample config
#   make test   every test, against real (embedded) JetStream servers
GO ?= go
# Every module of the workspace, as package patterns (./pkg/... ./services/edge/... ...).
PKGS := $(shell $(GO) list -m -f '{{.Dir}}/...' 2>/dev/null)
CONFIG ?= $(or $(LEADSTREAM_CONFIG),deploy/local/leadstream.yaml)
FUZZTIME ?= 10s

.PHONY: run test promtool chromium test-short race vet fuzz bench bench-catchup bench-memory bench-cluster .bin/leadstream dashboards build simulate check proto proto-release python-protobuf

## run: the whole pipeline in one process (embedded JetStream on 127.0.0.1:4222, edge on :8080)
run:
	$(GO) run ./cmd/leadstream run --config $(CONFIG)

## simulate: send signed sample webhooks of every provider to the running edge
simulate:
	$(GO) run ./cmd/leadstream simulate --config $(CONFIG)

## check: validate the config
check:
	$(GO) run ./cmd/leadstream check --config $(CONFIG)

## test: vet, then every test with the race detector (the schema's first: buf lint, buf breaking, generated code fresh)
test: vet python-protobuf promtool chromium
	cd proto/tools && GOWORK=off $(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# python-protobuf: the protobuf runtime for the test of the Python decode example
# (proto/leadstream/v1/python), from Debian where apt-get exists. Best effort: where it cannot
# be installed, that one test skips and says why; the build never fails for it.
python-protobuf:
	@if ! /usr/bin/python3 -c 'import google.protobuf' 2>/dev/null && ! python3 -c 'import google.protobuf' 2>/dev/null \
	    && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing python3-protobuf for the Python decode example's test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-protobuf) >/dev/null 2>&1 \
	    || echo "make: could not install python3-protobuf; the Python decode example's test will skip"; \
	fi

# promtool: Prometheus' checker, for the tests of deploy/prometheus (alert rules, scrape config,
# metric names), from Debian's prometheus package where apt-get exists. Best effort: where it
# cannot be installed, those tests skip and say why.
promtool:
	@if ! command -v promtool >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing Debian's prometheus package for promtool"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null 2>&1 \
	    || echo "make: could not install prometheus; the promtool tests will skip"; \
	fi

# chromium: Debian's headless browser, for the operators' console's browser test
# (cmd/leadstream/console_browser_test.go, chromedp), where apt-get exists. Best effort: where it
# cannot be installed, that test skips and says why.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
	    && command -v apt-get >/dev/null 2>&1; then \
	  echo "make: installing Debian's chromium for the console's browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1 \
	    || echo "make: could not install chromium; the console's browser test will skip"; \
	fi

## test-short: every test without the race detector
test-short:
	cd proto/tools && GOWORK=off $(GO) test -count=1 ./...
	$(GO) test -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)
	cd proto/tools && GOWORK=off $(GO) vet ./...

## fuzz: run every fuzz target for FUZZTIME each
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep ^Fuzz); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The bench harness (cmd/bench, a module of its own, outside the product binary) runs the product
# binary as a child for its pipeline measurements (`leadstream run`): .bin/leadstream, built first.
BENCH = $(GO) run ./cmd/bench -leadstream .bin/leadstream

# .bin/leadstream: phony, so that go build (quick when nothing changed) always sees the sources
.bin/leadstream:
	$(GO) build -o .bin/leadstream ./cmd/leadstream

## bench: edge req/s vs one publish per request at 64 and 256 in flight; normalizer events/s per kind; dispatcher deliveries/s; `leadstream run` end to end at 1000/s for 30s and its highest steady rate
bench: .bin/leadstream
	$(BENCH)

## bench-catchup: an LMS down for 10 minutes of 250/s intake (what leadstream run keeps up with on 2 cores, with room) comes back: the time to drain the backlog (CATCHUP_RATE=500 for the issue's)
CATCHUP_RATE ?= 250
bench-catchup: .bin/leadstream
	$(BENCH) -concurrency 0 -kinds-events 0 -e2e-rate 0 -dispatch-events 0 -dispatch-rate 0 -pipeline-rate 0 -catchup-rate $(CATCHUP_RATE) -catchup-down 10m

## bench-memory: RSS of `leadstream run` while 1 million webhooks go through it at 300/s (about an hour)
bench-memory: .bin/leadstream
	$(BENCH) -concurrency 0 -kinds-events 0 -e2e-rate 0 -dispatch-events 0 -dispatch-rate 0 -pipeline-rate 0 -memory-webhooks 1000000 -memory-rate 300

## bench-cluster: the edge and plain publishes against one RAW leader on a 3-node cluster (replicas 3, fsync), at 64 and 256 in flight
bench-cluster:
	$(GO) test -run '^$$' -bench RAWLeaderOnCluster -benchtime 1x ./services/edge/bench

## dashboards: regenerate deploy/grafana/dashboards/leadstream.json from deploy/grafana (Grafana Foundation SDK)
dashboards:
	cd deploy && $(GO) run ./grafana/gen > grafana/dashboards/leadstream.json

build:
	$(GO) build -o bin/leadstream ./cmd/leadstream

## proto: regenerate proto/**/*.pb.go and the descriptor sets proto/**/*.binpb from the .proto files (buf, pinned in proto/tools, and the protoc-gen-go of proto/go.mod's protobuf; no protoc)
proto:
	GO=$(GO) proto/generate.sh

## proto-release: record the schema as released (proto/released.binpb, what buf breaking in make test compares against); run it when tagging a release
proto-release:
	cd proto && GOWORK=off $(GO) tool -modfile=tools/go.mod buf build --exclude-source-info -o released.binpb
