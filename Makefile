# The README's two commands are `make demo` and `make test`; both install what they need.
GO ?= go
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: build test demo bench fuzz setup man

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
