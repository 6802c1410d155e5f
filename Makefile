# fabu — the two commands are `make run` and `make test` (see README.md).
GO        ?= go
BIN       := bin/fabu
DATA_DIR  ?= .data
ADDR      ?= 127.0.0.1:8080
GOBIN     := $(shell $(GO) env GOPATH)/bin
GOLANGCI  := $(GOBIN)/golangci-lint
GOLANGCI_VERSION := v2.15.0
# Every Go package of the workspace, across its modules.
PKGS      := fabu.dev/libs/... fabu.dev/services/... fabu.dev/cmd/... fabu.dev/web/...
MODULES   := libs services/gateway services/webhook services/builder services/deployer services/notifier services/auth cmd/fabu e2e web
WEB_SRC   := $(shell find web/src web/index.html web/package.json web/package-lock.json web/vite.config.* -type f 2>/dev/null)

.PHONY: run run-deps build web test test-deps test-go test-e2e lint bench fuzz clean

## run: build the SPA and the binary, then start `fabu up` on embedded defaults.
run: run-deps build
	./$(BIN) up --data-dir $(DATA_DIR) --addr $(ADDR)

## run-deps: git and bubblewrap (the build sandbox), installed with apt-get as root.
run-deps:
	scripts/run-deps.sh

## build: the fabu binary with the SPA embedded.
build: web
	$(GO) build -o $(BIN) ./cmd/fabu

## web: the single-page app, built into web/dist (embedded by `build`).
web: web/dist/index.html
web/dist/index.html: $(WEB_SRC)
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build

## test: install what the tests need that the machine lacks, then run every test.
test: test-deps build
	scripts/test.sh

test-deps:
	scripts/test-deps.sh

## lint: golangci-lint (import boundaries, errorlint, gocritic, revive) and gofmt.
lint: $(GOLANGCI)
	@test -z "$$(gofmt -l libs services cmd e2e web/*.go)" || (gofmt -l libs services cmd e2e web/*.go; echo "gofmt needed"; exit 1)
	@# One run per module: golangci-lint checks only the first module of a multi-module list.
	set -e; for m in $(MODULES); do echo "golangci-lint $$m"; $(GOLANGCI) run ./$$m/...; done

$(GOLANGCI):
	$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)

## fuzz: every fuzz test for FUZZTIME (default 10s) each; `make test` runs their seeds only.
fuzz:
	scripts/fuzz.sh

## bench: the benchmarks; writes bench/REPORT.md.
bench: test-deps build
	scripts/bench.sh

clean:
	rm -rf bin web/dist/assets web/dist/index.html
