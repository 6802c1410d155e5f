#!/usr/bin/env bash
# Runs every test of fabu: the Go unit, contract and integration tests (against the real
# PostgreSQL, Redis, Kafka-protocol broker, OpenSSH and git), the end-to-end tests of the
# built binary (six processes and `fabu up`, and the browser test in Chromium), and the
# SPA's unit tests. Run it through `make test`, which installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
export FABU_BIN="$PWD/bin/fabu"

echo "== go vet"
go vet fabu.dev/libs/... fabu.dev/services/... fabu.dev/cmd/... fabu.dev/web/... fabu.dev/e2e/...

echo "== go test (race detector)"
go test -race -count=1 -timeout 15m fabu.dev/libs/... fabu.dev/services/... fabu.dev/cmd/... fabu.dev/web/...

echo "== end-to-end"
go test -count=1 -timeout 15m fabu.dev/e2e/...

echo "== web unit tests"
(cd web && npx vitest run)
