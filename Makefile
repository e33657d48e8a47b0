# The README's two commands are `make demo` and `make test`; both install what they need.
GO ?= go
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: build test demo bench fuzz setup

build:
	$(GO) build -o bin/adjacent ./cmd/adjacent

setup:
	scripts/setup.sh

test:
	scripts/test.sh

demo:
	scripts/demo.sh

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

fuzz:
	FUZZTIME=$${FUZZTIME:-60s} scripts/fuzz.sh
