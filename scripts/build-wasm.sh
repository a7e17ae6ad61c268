#!/usr/bin/env bash
# Builds the release module and shrinks it with binaryen's wasm-opt
# (scripts/wasm-opt.sh, in place), so every user of target/wasm32-wasip1/release/azp_bridge.wasm (tests,
# demo, image, benchmarks) gets the shipped bytes. Extra arguments go to cargo
# (e.g. --features test-trap --target-dir target/test-trap).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="target"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "--target-dir" ]; then target_dir="${args[$((i + 1))]}"; fi
done

cargo build --quiet --release --lib --target wasm32-wasip1 "$@"
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
echo "build-wasm: ${module} $(stat -c %s "${module}") bytes"
