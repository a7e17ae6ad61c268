#!/usr/bin/env bash
# bench/module-of.sh REV: prints the path of the release module of commit REV,
# built once from its source (git archive) with its own toolchain file and
# shrunk by today's scripts/wasm-opt.sh, into .cache/bench-reference-<commit>.wasm.
# Used by bench/run.sh (the reference and BENCH_STEPS) and bench/icount.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "${ROOT}"
[ "$#" -eq 1 ] || { echo "usage: bench/module-of.sh REV" >&2; exit 2; }
commit="$(git rev-parse --verify --quiet "$1^{commit}")" || { echo "module-of: $1 is not a commit here" >&2; exit 1; }
module="${ROOT}/.cache/bench-reference-${commit:0:12}.wasm"
if [ ! -f "${module}" ]; then
  echo "module-of: building the module of ${commit:0:12} (once, into .cache/)" >&2
  work="$(mktemp -d /tmp/azp-module-of.XXXXXX)"
  trap 'rm -rf "${work}"' EXIT
  mkdir -p "${ROOT}/.cache"
  git archive "${commit}" | tar -x -C "${work}"
  (cd "${work}" && cargo build --quiet --release --lib --target wasm32-wasip1) >&2 ||
    { echo "module-of: the module of ${commit:0:12} did not build" >&2; exit 1; }
  scripts/wasm-opt.sh "${work}/target/wasm32-wasip1/release/azp_bridge.wasm" "${module}.tmp" >&2
  mv "${module}.tmp" "${module}"
fi
echo "${module}"
