# azp-bridge: `make demo` runs the story end to end, `make test` proves it.
# Both install what they need (scripts/setup.sh) on a fresh machine.

CARGO ?= cargo
WASM  := target/wasm32-wasip1/release/azp_bridge.wasm

.PHONY: all setup build lint unit e2e soak test test-matrix test-mesh check-manifests image release demo demo-stop compose-config fuzz bench bench-icount clean

all: build

setup:
	@scripts/setup.sh

## The release module (cargo, then wasm-opt: scripts/wasm-opt.sh).
build: setup
	@scripts/build-wasm.sh

## Format, lints (the wasm-only glue is linted for its own target), licenses.
lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --lib --release --target wasm32-wasip1 -- -D warnings
	$(CARGO) clippy --lib --release --target wasm32-wasip1 --features test-trap -- -D warnings
	$(CARGO) deny --workspace check licenses bans sources

## The native tier (`cargo test` at the root): the core's unit tests, the
## property tests and the checks of the shipped files; no Envoy, Keycloak or
## wasm build.
unit:
	$(CARGO) test

## The e2e tier (e2e/, one test binary): the suites that need Envoy, Keycloak,
## a registry or a wasm build. The Keycloak scenarios run after the rest, so
## that Keycloak's start does not compete with the Envoy suites; --nocapture
## shows their tally (`keycloak: N passed, M failed`).
## The last step is a 2-minute soak (below), so that it keeps working; its
## results go to target/soak/.
e2e: setup
	$(CARGO) test -p azp-bridge-e2e -- --skip keycloak::
	$(CARGO) test -p azp-bridge-e2e -- keycloak:: --nocapture
	SOAK_MINUTES=2 SOAK_RESULTS=target/soak $(CARGO) test -p azp-bridge-e2e -- soak:: --ignored --nocapture

## The filter for SOAK_MINUTES (default 30) in a real Envoy: mixed load,
## a configuration push a minute, Keycloak restarts, upstream resets;
## memory, rps and errors sampled every 10 s; fails unless memory stays flat,
## every count adds up and no log holds a secret (e2e/tests/e2e/soak/).
## Writes bench/results/soak/ (samples.csv, events.csv, soak.png, REPORT.md).
SOAK_MINUTES ?= 30
soak: build
	SOAK_MINUTES=$(SOAK_MINUTES) SOAK_RESULTS=bench/results/soak $(CARGO) test -p azp-bridge-e2e -- soak:: --ignored --nocapture

## Everything, as CI runs it: lints, the module, both test tiers.
test: lint build unit e2e

## The Envoy suites against one Envoy per minor release, and the Keycloak
## scenarios (e2e/tests/e2e/keycloak.rs) against each Keycloak x Envoy
## (docs/compatibility.md: "Envoy and Keycloak versions"), then scripts/check-manifests.sh
## (MATRIX_SUITES="envoy keycloak" leaves it out), then `make test-mesh`
## (MATRIX_SUITES without "mesh" leaves it out).
## KEYCLOAK_VERSION=26.4.7 ENVOY_VERSION=1.38.2 runs one cell. The set-up gets
## ENVOY_VERSION emptied: it is the matrix's, not the pinned Envoy of .venv.
test-matrix:
	@ENVOY_VERSION= scripts/setup.sh
	@rc=0; scripts/test-matrix.sh || rc=$$?; \
	  case " $${MATRIX_SUITES:-mesh} " in *" mesh "*) $(MAKE) --no-print-directory test-mesh || rc=1 ;; esac; exit $$rc

## azp-bridge delivered by the real control planes: Envoy Gateway (standalone)
## and istiod + istio-agent (no Kubernetes) pull the image from a local registry
## into the project's Envoy, Keycloak behind (docs/deployment.md, "Verified with
## the real control planes"). Builds them with go install on first use (about
## an hour on 2 cores); in test-matrix, not in test.
test-mesh: build
	@scripts/test-mesh.sh

## The mesh manifests in deploy/ checked with the meshes' own tools, istioctl
## and egctl, built at pinned versions into .cache/ on first use (docs/compatibility.md:
## "Checking the mesh manifests").
check-manifests: build
	@scripts/check-manifests.sh

## The compat Wasm image for Istio (docker buildx or buildah); prints the sha256s.
## IMAGE=REGISTRY/azp-bridge:<version> PUSH=1 pushes it and prints the digest
## for an oci:// url (TLS_VERIFY=0: a plain-HTTP registry). Exits 2 without a builder.
image: build
	@IMAGE="$(IMAGE)" PUSH="$(PUSH)" TLS_VERIFY="$(TLS_VERIFY)" deploy/oci/build-image.sh

## dist/ for the checked-out commit (docs/release.md: "Verifying a release"): the module,
## SHA256SUMS, a CycloneDX SBOM, LICENSE, CHANGELOG.md and, with an image builder,
## the compat image as an OCI archive. Refuses a work tree with changes.
release: setup
	@scripts/release.sh

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

## Benchmarks: BENCHMARKS.md and bench/results/ (~13 min; BENCH_QUICK=1 for ~2 min).
bench: build
	@bench/run.sh

## Envoy instructions per request under callgrind, per module and refresh
## (bench/results/icount.md; ~15 min): steady where the timed rounds are noisy.
bench-icount: build
	@bench/icount.sh

## Coverage-guided fuzzing (nightly + cargo fuzz, installed on first use).
fuzz:
	@scripts/fuzz.sh

clean:
	$(CARGO) clean
