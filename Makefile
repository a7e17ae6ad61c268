# azp-bridge: `make demo` runs the story end to end, `make test` proves it.
# Both install what they need (scripts/setup.sh) on a fresh machine.

CARGO ?= cargo
WASM  := target/wasm32-wasip1/release/azp_bridge.wasm

.PHONY: all setup build lint unit test demo clean

all: build

setup:
	@scripts/setup.sh

## The release module.
build: setup
	$(CARGO) build --release --lib --target wasm32-wasip1
	@ls -l $(WASM)

## Format and lints (the wasm-only glue is linted for its own target).
lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --lib --release --target wasm32-wasip1 -- -D warnings

## The core only, natively (no Envoy).
unit:
	$(CARGO) test --lib

## Everything: lints, unit tests, Envoy configs, end-to-end tests.
test: lint build
	$(CARGO) test

clean:
	$(CARGO) clean
