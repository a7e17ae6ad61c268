# azp-bridge: `make demo` runs the story end to end, `make test` proves it.
# Both install what they need (scripts/setup.sh) on a fresh machine.

CARGO ?= cargo
WASM  := target/wasm32-wasip1/release/azp_bridge.wasm

.PHONY: all setup build lint unit test demo demo-stop compose-config clean

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

## The article's story, end to end (KEEP=1 leaves the stack running).
demo: setup
	@scripts/demo.sh

demo-stop:
	@scripts/demo.sh stop

## Regenerates the Envoy config docker-compose.yml mounts (a test checks it is current).
compose-config:
	@LISTEN_ADDRESS=0.0.0.0 ADMIN_ADDRESS=0.0.0.0 UPSTREAM_HOST=keycloak UPSTREAM_PORT=8080 \
	  WASM_PATH=/etc/envoy/azp_bridge.wasm scripts/render-envoy.sh \
	  | sed '1i # GENERATED for docker-compose.yml from envoy/azp-bridge.yaml by `make compose-config`; do not edit.' \
	  > envoy/docker-compose.envoy.yaml

clean:
	$(CARGO) clean
