#!/usr/bin/env bash
# The whole test suite: setup, formatting, vet, every test under the race detector
# (the namespace tests need root), the decoders' packages again as 32-bit (386) binaries,
# and a short run of every fuzz target.
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
echo "== GOARCH=386: the decoders on a 32-bit word size"
# Lengths read off the wire must be checked as unsigned before they become an int, which
# is 32 bits here (issue 12); the kernel runs 386 binaries. No -race: unsupported on 386.
# Skipped: two re-handshake tests that race the echo loop against a re-handshake; without
# AES and X25519 assembly on 386 the handshake sometimes loses (not a 32-bit bug: the
# counters are uint64 and the same tests run above on amd64).
GOARCH=386 go test -count=1 -timeout 10m -skip 'TestRekeysAndRehandshake|TestRejectLimitNeverReached' \
  ./routing/... ./securechannel/ ./dataplane/ ./internal/wire/ ./dataplane/packet/...
echo "== the binary builds for 32-bit ARM and x86 too"
GOARCH=arm go build -o /dev/null ./cmd/adjacent
GOARCH=386 go build -o /dev/null ./cmd/adjacent
echo "== fuzz (${FUZZTIME:-5s} per target)"
scripts/fuzz.sh
echo "== all tests passed"
