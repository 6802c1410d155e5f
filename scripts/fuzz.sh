#!/usr/bin/env bash
# Runs every fuzz test of the workspace for FUZZTIME each (default 10s), one at a time (the
# fuzzer uses every core). `make test` runs only their seed corpora; this looks further.
# A failure leaves its input under the package's testdata/fuzz/, which then becomes a seed:
# commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-10s}
fail=0
while IFS=: read -r file name; do
	dir=$(dirname "$file")
	echo "== $dir $name ($FUZZTIME)"
	if ! (cd "$dir" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" .); then
		fail=1
	fi
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' libs services cmd | sed 's/:func /:/' | sort -u)
exit $fail
