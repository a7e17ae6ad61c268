#!/usr/bin/env bash
# Builds the release module and shrinks it with binaryen's wasm-opt
# (scripts/wasm-opt.sh, in place), so every user of target/wasm32-wasip1/release/azp_bridge.wasm (tests,
# demo, image, benchmarks) gets the shipped bytes. Extra arguments go to cargo
# (e.g. --features test-trap --target-dir target/test-trap).
#
# Reproducible: the same commit gives the same bytes in any directory, with
# the toolchain of rust-toolchain.toml and the wasm-opt scripts/wasm-opt.sh
# pins (e2e/tests/e2e/build/reproducible.rs checks it). The only paths the module holds are
# those of panic locations; the checkout's and the crate sources' are mapped to
# fixed names below. The rustc flags are exactly these: RUSTFLAGS and
# build.rustflags of the environment are ignored, as they would change the bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd -P)"

target_dir="target"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "--target-dir" ]; then target_dir="${args[$((i + 1))]}"; fi
done

# What the module says it is at on_configure (src/plugin.rs): the crate
# version and this commit, `-dirty` when the work tree has changes, `unknown`
# outside a git checkout. A caller may set AZP_BRIDGE_COMMIT (a source archive).
if [ -z "${AZP_BRIDGE_COMMIT:-}" ]; then
  AZP_BRIDGE_COMMIT=unknown
  if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "${root}" ] \
    && commit="$(git rev-parse --verify --quiet HEAD)"; then
    AZP_BRIDGE_COMMIT="${commit:0:7}" # not --short: its length depends on the clone
    [ -z "$(git status --porcelain)" ] || AZP_BRIDGE_COMMIT="${AZP_BRIDGE_COMMIT}-dirty"
  fi
fi
export AZP_BRIDGE_COMMIT

cargo_home="$(cd "${CARGO_HOME:-${HOME}/.cargo}" 2>/dev/null && pwd -P || echo "${CARGO_HOME:-${HOME}/.cargo}")"
flags=("--remap-path-prefix=${root}=/azp-bridge")
for source in "${cargo_home}"/registry/src/*; do
  [ -d "${source}" ] && flags+=("--remap-path-prefix=${source}=/cargo/registry")
done
# sha2's loop (not unrolled) compression, for SHA-256 (HS256, ES256) and
# SHA-512 (EdDSA): 16.6 KB less module; HS256 minting 4.3 instead of 4.1 us
# in V8, ES256 and EdDSA unchanged (bench/native decide_loop).
flags+=('--cfg=sha2_backend_soft="compact"')
CARGO_ENCODED_RUSTFLAGS="$(IFS=$'\x1f'; echo "${flags[*]}")"
export CARGO_ENCODED_RUSTFLAGS

cargo build --quiet --locked --release --lib --target wasm32-wasip1 "$@"
module="${target_dir}/wasm32-wasip1/release/azp_bridge.wasm"
marker="${module}.optimized.sha256"

# Only when the module is not already the optimized one (by these flags):
# wasm-opt is not idempotent in size, and cargo may link a fresh copy from deps/.
stamp() { echo "$(sha256sum < "${module}") $(sha256sum < scripts/wasm-opt.sh)"; }
if [ ! -f "${marker}" ] || [ "$(stamp)" != "$(cat "${marker}")" ]; then
  scripts/wasm-opt.sh "${module}" "${module}.tmp"
  # Replace the file, not its contents: cargo hard-links it to deps/.
  mv "${module}.tmp" "${module}"
  stamp > "${marker}"
fi
echo "build-wasm: ${module} $(stat -c %s "${module}") bytes (${AZP_BRIDGE_COMMIT})"
