#!/usr/bin/env bash
# Runs fabu's benchmarks and writes bench/REPORT.md: the figures, the machine and the commit.
# Benchmarks measure; nothing here asserts on speed.
set -euo pipefail
cd "$(dirname "$0")/.."
export FABU_BIN="${FABU_BIN:-$PWD/bin/fabu}"
mkdir -p bench/out
raw_line='Raw output: `bench/out/e2e.txt`, `bench/out/webhook.txt` and `bench/out/build.txt` (not committed).'

# Builds against the same commands by hand (e2e/bench_build_test.go); BENCH_BUILD_N repetitions
# (default 5). BENCH_ONLY=build runs only this part and replaces only its section of the report.
build_section() {
  bout=bench/out/build.txt
  BENCH_BUILD_REPORT="$PWD/bench/out/build.md" go test -run '^$' -bench '^BenchmarkBuild$' -benchtime 1x -count 1 \
    -timeout 30m fabu.dev/e2e | tee "$bout" >&2
  echo "## Builds: fabu against the same commands by hand"
  echo
  echo "Two projects whose builds use caches, built by \`fabu up\` (embedded SQLite; the builder's real"
  echo "workspace, mirrors, caches and artifact store) and deployed to a real sshd; every repetition"
  echo "uses a new repository and project. A fabu build is timed from the run's \`created_at\` (the run"
  echo "requested) to the builder's log line \"artifact ready; handing over to the deployer\", when the"
  echo "artifact is stored and recorded; the deploy after it is not timed. The phases come from the"
  echo "timestamps of the builder's log lines, the stages' durations from \`run_stages\`. *By hand* is the"
  echo "same commands run by the benchmark with exec on the same machine: \`git clone --no-hardlinks\`"
  echo "(as the builder clones its mirror) or \`git pull\`, the stages' commands with the environment"
  echo "fabu gives its stages, \`tar -czf\` of the artifact. *fabu − by hand* compares medians of the"
  echo "totals. The build commands' own time varies most from run to run, so the columns *outside the"
  echo "build's commands* (the total less the stages' durations in fabu, less the commands' time by"
  echo "hand) show fabu's overhead with less noise. Nothing asserts on speed; a failed build fails the"
  echo "benchmark."
  echo "Measured with the fabu binary of commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' plus uncommitted changes') on $(date -u +%Y-%m-%d)."
  # BENCH_NOTE: a sentence on the circumstances of this measurement, printed as is.
  [ -z "${BENCH_NOTE:-}" ] || echo "$BENCH_NOTE"
  echo
  cat bench/out/build.md
  echo
  echo "Reading the phases: queueing, admission and recording the stages cost a few milliseconds."
  echo "Packaging a jar costs what \`tar -czf\` does; a directory of a few hundred files costs more,"
  echo "as the builder also hashes every file for the manifest and syncs the archive to disk. The"
  echo "rest of what fabu adds is the price of isolation and of its caches."
  echo "Every run checks its commit out afresh from the mirror into a new directory with a new HOME"
  echo "and removes both before it hands the artifact to the deployer, so that removal, longer the"
  echo "more files the build leaves (\`node_modules\`), lies on every build's path. The first build of a"
  echo "lockfile packs its caches; every later one unpacks them before its stages. With a"
  echo "package-lock.json the frontend recipe caches only \`~/.npm\`: its install stage is \`npm ci\`,"
  echo "which deletes \`node_modules\` first, so caching that too (as an earlier version did) cost"
  echo "0.4–0.8 s per cache hit for nothing (commit 37bafdb). With every dependency on the"
  echo "local disk the caches save the stages little; the downloads from a registry that they avoid"
  echo "are what they are for, and this benchmark (loopback only) has none. Build-once reuse skips the"
  echo "stages, but still fetches the mirror, checks the whole commit out to compute the plan's"
  echo "fingerprint and removes that checkout again, which is most of what it costs."
  echo
}

if [ "${BENCH_ONLY:-}" = build ]; then
  section=bench/out/build-section.md
  build_section > "$section"
  awk -v f="$section" -v raw="$raw_line" '
    BEGIN { while ((getline l < f) > 0) sec = sec l "\n" }
    /^## Builds: / { printf "%s", sec; skip = 1; done = 1; next }
    skip && (/^## / || /^Raw output:/) { skip = 0 }
    skip { next }
    /^Raw output:/ { if (!done) printf "%s", sec; print raw; done = 1; next }
    { print }
  ' bench/REPORT.md > bench/REPORT.md.new
  mv bench/REPORT.md.new bench/REPORT.md
  cat bench/REPORT.md
  exit 0
fi

out=bench/out/e2e.txt
go test -run '^$' -bench 'BenchmarkWebhookToCurrent' -benchtime "${BENCH_N:-5}x" -count 1 -timeout 20m fabu.dev/e2e | tee "$out"
# A fixed load per sub-benchmark, sent once: BENCH_DELIVERIES requests from BENCH_CONCURRENCY
# goroutines (defaults 2000 and 8), bounded by BENCH_TIMEOUT (default 5m).
wout=bench/out/webhook.txt
go test -run '^$' -bench 'BenchmarkWebhookDeliveries' -benchtime 1x -count 1 -timeout 20m fabu.dev/e2e | tee "$wout"
build_section > bench/out/build-section.md

{
  echo "# fabu benchmark report"
  echo
  echo "Written by \`make bench\` (scripts/bench.sh). Commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d)."
  echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(go version | cut -d' ' -f3-4)."
  echo
  echo "## Webhook accepted → \`current\` switched, 1 MiB static site"
  echo
  echo "From the POST of a GitLab push until the target's \`current\` points at the new"
  echo "release, on a real sshd over loopback. One warm-up deploy first (the mirror exists)."
  echo
  echo "| setup | deploys | ms per deploy |"
  echo "|---|---|---|"
  awk '/^BenchmarkWebhookToCurrent\//{split($1,a,"/"); sub(/-[0-9]+$/,"",a[2]); for(i=1;i<=NF;i++) if($(i+1)=="ms/deploy") ms=$i; print "| " a[2] " | " $2 " | " ms " |"}' "$out"
  echo
  echo "## Verified webhook deliveries per second"
  echo
  echo "Signed GitHub pushes (\`X-Hub-Signature-256\`) posted straight to \`fabu serve webhook\`,"
  echo "the only fabu process running (PostgreSQL on the same machine; the Kafka-protocol broker"
  echo "runs inside the benchmark process, which also generates the load). One keep-alive"
  echo "\`http.Client\`; latency from sending the request until its answer is read; one warm-up of"
  echo "ignored deliveries first."
  echo
  echo "- **webhook-only**: pushes to a branch outside the project's triggers. Each is verified,"
  echo "  parsed, decided and recorded as an ignored delivery row; no run is requested."
  echo "- **to-run-row**: pushes to \`main\` with \"devops\" in the head commit message, distinct"
  echo "  after SHAs and \`X-GitHub-Delivery\` ids. Each 202 has inserted the run, its"
  echo "  \`run.requested\` outbox event and the delivery row in one PostgreSQL transaction (the"
  echo "  webhook's outbox relay publishes the events to Kafka meanwhile). After the load the"
  echo "  benchmark checks that PostgreSQL holds exactly one run per 202 answer. No builder runs,"
  echo "  so the runs stay \`requested\`: this measures intake, not deploys."
  echo
  echo "Each scenario sends its load once, so the figures carry run-to-run noise, mostly in"
  echo "deliveries/s and p99; p50 is the steadiest figure to compare."
  echo
  echo "| scenario | deliveries | concurrency | deliveries/s | p50 ms | p99 ms | max ms |"
  echo "|---|---|---|---|---|---|---|"
  awk '/^BenchmarkWebhookDeliveries\//{split($1,a,"/"); sub(/-[0-9]+$/,"",a[2]); delete m; for(i=3;i<NF;i++) m[$(i+1)]=$i; printf "| %s | %d | %d | %.0f | %s | %s | %s |\n", a[2], m["deliveries"], m["concurrency"], m["deliveries/s"], m["p50-ms"], m["p99-ms"], m["max-ms"]}' "$wout"
  echo
  cat bench/out/build-section.md
  echo "$raw_line"
} > bench/REPORT.md
cat bench/REPORT.md
