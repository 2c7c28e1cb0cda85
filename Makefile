# Switchboard — one binary, one table. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin/lambdalith
BOOTSTRAP := dist/lambdalith/bootstrap
PKG       := ./functions/lambdalith
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: help run seed smoke build build-lambda test test-race bench lint fmt tidy clean dynamodb-local-start dynamodb-local-stop

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: build ## Run local mode on 127.0.0.1:8080 (PORT overrides; embedded store in ./.data; no AWS, no Docker)
	@./$(BIN)

seed: ## Demo data on a running local mode: 2 pooled + 2 siloed tenants, scopes, an account and key of every role (SEED_PREFIX, SWITCHBOARD_URL)
	@SEED_PREFIX="$(SEED_PREFIX)" SWITCHBOARD_URL="$(SWITCHBOARD_URL)" $(GO) run ./tools/seed

smoke: ## Smoke test of any deployment: make smoke BASE_URL=... OPERATOR_KEY=... [RECEIVER=local|url=<public URL>|none] [TIMEOUT=60s]
	@$(GO) run ./tools/smoke

build: ## Build the binary for this machine into bin/
	@echo ">> building $(BIN)"
	@$(GO) build -trimpath -o $(BIN) $(PKG)

build-lambda: ## Build the Lambda bootstrap (linux/arm64, lambda.norpc, no embedded pebble engine, stripped) into dist/lambdalith/
	@echo ">> building $(BOOTSTRAP) (linux/arm64)"
	@mkdir -p $(dir $(BOOTSTRAP))
	@GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc,nopebble -ldflags "-s -w" -o $(BOOTSTRAP) $(PKG)
	@ls -l $(BOOTSTRAP) | awk '{printf ">> bootstrap: %.1f MB\n", $$5/1048576}'

test: ## Run every test; starts DynamoDB Local for the DynamoDB adapter and stops it after
	@echo ">> downloading Go modules"
	@$(GO) mod download
	@running=$$(.ci/dynamodb-local.sh endpoint 2>/dev/null); \
	endpoint=$$(.ci/dynamodb-local.sh start) || exit 1; \
	[ -n "$$running" ] || trap '.ci/dynamodb-local.sh stop' EXIT; \
	echo ">> DynamoDB Local at $$endpoint"; \
	echo ">> go test ./..."; \
	SWITCHBOARD_TEST_DYNAMODB_ENDPOINT=$$endpoint $(GO) test -count=1 $(TESTFLAGS) ./...

test-race: TESTFLAGS = -race
test-race: test ## Run every test with the race detector

bench: ## Benchmarks: request path and event append (a table), the DynamoDB capacity report, then the local-mode load run (send-message, 32 clients, 10 s, drain)
	@running=$$(.ci/dynamodb-local.sh endpoint 2>/dev/null); \
	endpoint=$$(.ci/dynamodb-local.sh start) || exit 1; \
	[ -n "$$running" ] || trap '.ci/dynamodb-local.sh stop' EXIT; \
	SWITCHBOARD_TEST_DYNAMODB_ENDPOINT=$$endpoint $(GO) test -run '^$$' -bench . -benchmem -benchtime=$${BENCHTIME:-1s} -timeout=30m \
	  ./modules/kernel/rpc/ ./modules/kernel/authz/cedarauthz/ ./modules/kernel/eventstore/boltstore/ ./modules/kernel/eventstore/dynamostore/ ./functions/lambdalith/ \
	  | tee .bench.out | .ci/benchtable.sh; status=$$?; \
	echo; sed -n '/^=== capacity report ===$$/,/^=== end capacity report ===$$/p' .bench.out; \
	echo; SWITCHBOARD_LOAD=1 $(GO) test -run '^$$' -bench '^BenchmarkLoad$$' -benchtime=1x -timeout=15m $(PKG) > .load.out 2>&1 || status=1; \
	sed -n '/^=== load report ===$$/,/^=== end load report ===$$/p' .load.out; \
	if [ $$status -ne 0 ]; then echo ">> failures (full output in .bench.out):"; grep -A8 -e '^--- FAIL' -e '^panic:' .bench.out .load.out; fi; \
	exit $$status

lint: ## gofmt and go vet
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './infra/node_modules/*')); \
	if [ -n "$$bad" ]; then echo "not gofmt'ed:"; echo "$$bad"; exit 1; fi
	@$(GO) vet ./...
	@echo ">> lint ok"

fmt: ## Format the Go code
	@gofmt -w $$(git ls-files '*.go')

dynamodb-local-start: ## Start DynamoDB Local (installs it on first use) and print its endpoint
	@.ci/dynamodb-local.sh start

dynamodb-local-stop: ## Stop DynamoDB Local
	@.ci/dynamodb-local.sh stop

clean: ## Remove build outputs (keeps ./.data)
	@rm -rf bin dist cdk.out .bench.out .load.out

include infra/Makefile.inc
