# forgelink - build, test, run, invoke, lint, bench.
# Every target works on a fresh machine with Go, moto_server and cfn-lint (see README).

GO        ?= go
FUNCTIONS := webhook keys pages trigger status orgaccess
GOARCH    ?= $(shell $(GO) env GOARCH)
FN        ?= webhook
EVENT     ?= events/github-push.json
BUILD_FLAGS := -tags lambda.norpc -trimpath -ldflags="-s -w"

.PHONY: all build test unit lint vet fmt-check fuzz replay run invoke bench bench-load bench-cold events generate clean $(addprefix build-,$(FUNCTIONS))

all: build

## build: compile every function's Lambda bootstrap into build/<fn>/bootstrap
build: $(addprefix build/,$(addsuffix /bootstrap,$(FUNCTIONS)))

build/%/bootstrap: FORCE
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH) $(GO) build $(BUILD_FLAGS) -o $@ ./functions/$*

FORCE:

## test: the one test command (README, .ci/run): format, vet, lint, unit, contract, handler and end-to-end tests
test: fmt-check vet lint
	$(GO) test -race -count=1 ./...

## fuzz: FUZZTIME=30s [FUZZ=regexp] - run every go test -fuzz target (func Fuzz* in a _test.go), one at a time, for FUZZTIME each; make test runs their seed corpora
FUZZTIME         ?= 30s
FUZZMINIMIZETIME ?= 10s
FUZZ             ?= .
# Whole webhook payloads as seeds make Go's default minute of minimizing per
# new input stall a run: FUZZMINIMIZETIME bounds it. Targets that write to
# bbolt run on /dev/shm where there is one, so fsync costs nothing.
fuzz:
	@set -e; tmp=$${TMPDIR:-/tmp}; if [ -d /dev/shm ] && [ -w /dev/shm ]; then tmp=/dev/shm; fi; \
	grep -rHE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' functions shared infra | \
	sed -E 's|^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|' | sort -u | grep -E -- '$(FUZZ)' | \
	while read pkg name; do \
		echo "== $$name ./$$pkg ($(FUZZTIME))"; \
		TMPDIR=$$tmp $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) ./$$pkg; \
	done

fmt-check:
	@out=$$(gofmt -l functions shared infra events); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## lint: cfn-lint the SAM template
lint:
	cfn-lint template.yaml

## replay: [REPLAY=10000] [REPLAY_LAMBDA=1000] - the webhook replay at full size: signed deliveries (30% resent, 10% out of order, 5% badly signed) through make run's binary (TestReplayMakeRun) and through the functions' handlers on local DynamoDB/SQS (TestReplayLambda, smaller: moto's transactions copy whole tables), and the fault replays at their own size (FORGELINK_REPLAY_FAULT_DELIVERIES: 600 and 100); make test runs them at 2,000 and 100
REPLAY        ?= 10000
REPLAY_LAMBDA ?= 1000
replay:
	FORGELINK_REPLAY_DELIVERIES=$(REPLAY) FORGELINK_REPLAY_LAMBDA_DELIVERIES=$(REPLAY_LAMBDA) $(GO) test -count=1 -p 1 -v -timeout 600m -run '^TestReplay' ./infra/local/ ./infra/devstack/

## run: the one-process server on :8080 with the embedded store
run:
	$(GO) run ./infra/local

## invoke: FN=<function> EVENT=events/<file>.json - run the bootstrap under the Lambda Runtime Interface Emulator against local DynamoDB/SQS/KMS
invoke:
	./infra/invoke.sh $(FN) $(EVENT)

## generate: regenerate the settings pages' Go code (shared/pages/*_templ.go) from their .templ files with templ (go.mod's tool); commit both, make test checks they match
generate:
	$(GO) tool templ generate -path shared/pages

## events: regenerate the signed sample events in events/
events:
	$(GO) run ./infra/devstack events -out events

## bench: benchmarks with their baselines measured in the same run
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./shared/httpapi/ ./shared/trigger/ ./shared/forgelink/ ./shared/github/ ./shared/bitbucket/ ./shared/sealer/ ./shared/sshkeys/
	$(GO) test -run '^$$' -bench StatusReplay -benchtime 3x -count 3 ./shared/statussvc/

## bench-load: webhook intake of make run's server against the floor (../shared/perf/floorserver), same load, one run
bench-load:
	GO=$(GO) $(GO) run ./infra/benchload

## bench-cold: stripped size and Lambda init (RIE) of every functions/* bootstrap against the hello floor, one run
bench-cold:
	GO=$(GO) ./infra/bench-cold.sh

clean:
	rm -rf build .aws-sam

# SAM's makefile build method: sam build calls build-<LogicalId> with ARTIFACTS_DIR.
build-WebhookFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/webhook
build-TriggerFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/trigger
build-KeysFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/keys
build-StatusFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/status
build-PagesFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/pages
build-OrgAccessFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(BUILD_FLAGS) -o $(ARTIFACTS_DIR)/bootstrap ./functions/orgaccess
