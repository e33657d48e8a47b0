# The README's two commands are `make demo` and `make test`; both install what they need.
GO ?= go
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: build test demo bench fuzz setup man reliability soak

build:
	$(GO) build -o bin/adjacent ./cmd/adjacent

# Man pages of every command, generated from the commands' help into man/man1.
man:
	$(GO) run ./cmd/adjacent man man/man1

setup:
	scripts/setup.sh

test:
	scripts/test.sh

demo:
	scripts/demo.sh

# The side-by-side comparison of issue 6, as root: installs the peers, writes bench/out/.
bench:
	scripts/bench.sh

fuzz:
	FUZZTIME=$${FUZZTIME:-60s} scripts/fuzz.sh

# Issue 16's table: the impaired links (1 GiB each way unless ADJACENT_IMPAIRED_BYTES), the
# kill -9, store and target restarts, a 2-minute soak and every fuzzer, as root; prints the
# table and writes docs/reliability.md.
reliability:
	$(GO) run ./internal/cmd/reliability -fuzztime $${FUZZTIME:-10s}

# The one-hour soak (ADJACENT_SOAK_DURATION to change it), as root: writes its curves to
# docs/soak (a table and an SVG chart).
soak:
	ADJACENT_SOAK_DURATION=$${ADJACENT_SOAK_DURATION:-1h} ADJACENT_SOAK_OUT=$${ADJACENT_SOAK_OUT:-$(CURDIR)/docs/soak} \
		$(GO) test -count=1 -timeout 3h -v -run '^TestSoak$$' ./cmd/adjacent
