# CRM Pulse. `make demo` runs the pipeline on generated data; `make test`
# installs and starts the real Kafka, ClickHouse and Alertmanager it needs,
# runs every test, and stops them.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/crmpulse
# crmpulse version and the crmpulse_build_info metric report these.
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
VPKG     := github.com/prometheus/common/version
LDFLAGS  := -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION)
DEMO  := out/demo

.PHONY: plugin all build demo demo-replay test test-unit bench fuzz lint clean services-up services-down

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/crmpulse

## demo: the streaming pipeline on an embedded Kafka broker over two weeks of generated
## CRM data; alerts and resend triggers appear as they are produced.
demo: build
	$(BIN) demo --out $(DEMO)/stream

## demo-replay: the same engine as a backtest over files, with a report.
demo-replay: build
	@mkdir -p $(DEMO)
	$(BIN) gen --out $(DEMO) --customers 2000 --days 14 --seed 42
	$(BIN) rules check examples/rules.yaml
	$(BIN) replay --rules examples/rules.yaml --interactions $(DEMO)/interactions.jsonl \
		--receipts $(DEMO)/receipts.jsonl --out $(DEMO)
	@scripts/demo-report.sh $(DEMO)

## test: the whole suite against real servers started by deploy/local, in phases: vet, the main
## run, the tests that stop and restart the shared servers (one package at a time), every fuzz
## target for 3 s. Each phase's `go test -json` goes to out/test/PHASE.json while the usual
## package lines print; at the end a summary of all phases: how many tests ran, passed, failed,
## were skipped, and each skip with its reason. A failing phase does not stop the later ones.
TESTOUT := out/test
test:
	@set -euo pipefail; \
	env_lines="$$(deploy/local/up.sh)"; eval "$$env_lines"; \
	trap 'deploy/local/down.sh' EXIT; \
	$(GO) vet ./...; \
	$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }; \
	rm -rf $(TESTOUT); mkdir -p $(TESTOUT); \
	$(GO) build -o $(TESTOUT)/testreport ./scripts/testreport; \
	report="$(TESTOUT)/testreport -tee"; rc=0; \
	$(GO) test -json -count=1 -timeout 30m ./... | $$report $(TESTOUT)/main.json || rc=1; \
	echo "== the Grafana data source plugin (its own module, dashboards/plugin)"; \
	(cd dashboards/plugin && $(GO) mod tidy -diff && $(GO) vet ./...) || rc=1; \
	(cd dashboards/plugin && $(GO) test -json -count=1 -timeout 15m ./...) | $$report $(TESTOUT)/plugin.json || rc=1; \
	echo "== tests that stop and restart the shared servers, one package at a time"; \
	CRMPULSE_ALERTMANAGER_RESTART_TEST=1 CRMPULSE_CLICKHOUSE_RESTART_TEST=1 \
		$(GO) test -json -count=1 -p 1 -timeout 20m -run 'Restart' $$($(GO) list ./... | grep -E '/(alerting|sink)(/|$$)') \
		| $$report $(TESTOUT)/restart.json || rc=1; \
	CRMPULSE_CLICKHOUSE_RESTART_TEST=1 $(GO) test -json -count=1 -timeout 10m -run 'Outage' ./stream/ \
		| $$report $(TESTOUT)/outage.json || rc=1; \
	echo "== every fuzz target, briefly"; \
	scripts/fuzz.sh 10000x -json | $$report $(TESTOUT)/fuzz.json || rc=1; \
	$(TESTOUT)/testreport -summary $(TESTOUT)/{main,plugin,restart,outage,fuzz}.json || rc=1; \
	exit $$rc

## test-unit: the suite without starting servers (integration tests skip).
test-unit:
	$(GO) test -count=1 ./...

## plugin: the Grafana data source plugin's backend binary and plugin.json in dashboards/plugin/dist.
plugin:
	$(MAKE) -C dashboards/plugin plugin

## bench: benchmarks with their same-run baselines; figures go to docs/benchmarks.md.
bench: build
	scripts/bench.sh

## fuzz: a short run of every fuzz target.
fuzz:
	scripts/fuzz.sh 30s

services-up:
	@deploy/local/up.sh

services-down:
	@deploy/local/down.sh

clean:
	rm -rf bin out .local
