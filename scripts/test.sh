#!/usr/bin/env bash
# The whole test suite: setup, formatting, vet, every test under the race detector
# (the namespace tests need root), and a short run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH=/usr/local/go/bin:$PATH

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 20m ./...
echo "== fuzz (${FUZZTIME:-5s} per target)"
scripts/fuzz.sh
echo "== all tests passed"
