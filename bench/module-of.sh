#!/usr/bin/env bash
# bench/module-of.sh REV: prints the path of the release module of commit REV,
# built once from its source (git archive) with its own toolchain file and
# shrunk by today's scripts/wasm-opt.sh, into .cache/bench-reference-<commit>-2.wasm.
# A commit whose scripts/build-wasm.sh calls scripts/wasm-opt.sh (since
# 0d3382a) is built by it, so its module gets the rustc flags it shipped with
# (path remapping; since 2ac083a sha2's compact compression), with today's
# wasm-opt.sh in place of its own; an older one by plain `cargo build`.
# (-2: the modules cached before were all built by cargo alone.)
# Used by bench/run.sh (the reference and BENCH_STEPS) and bench/icount.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "${ROOT}"
[ "$#" -eq 1 ] || { echo "usage: bench/module-of.sh REV" >&2; exit 2; }
commit="$(git rev-parse --verify --quiet "$1^{commit}")" || { echo "module-of: $1 is not a commit here" >&2; exit 1; }
module="${ROOT}/.cache/bench-reference-${commit:0:12}-2.wasm"
if [ ! -f "${module}" ]; then
  echo "module-of: building the module of ${commit:0:12} (once, into .cache/)" >&2
  work="$(mktemp -d /tmp/azp-module-of.XXXXXX)"
  trap 'rm -rf "${work}"' EXIT
  mkdir -p "${ROOT}/.cache"
  git archive "${commit}" | tar -x -C "${work}"
  built="${work}/target/wasm32-wasip1/release/azp_bridge.wasm"
  if [ -f "${work}/scripts/build-wasm.sh" ] && [ -f "${work}/scripts/wasm-opt.sh" ]; then
    cp scripts/wasm-opt.sh "${work}/scripts/wasm-opt.sh"
    (cd "${work}" && AZP_BRIDGE_COMMIT="${commit:0:7}" scripts/build-wasm.sh) >&2 ||
      { echo "module-of: the module of ${commit:0:12} did not build" >&2; exit 1; }
    cp "${built}" "${module}.tmp"
  else
    (cd "${work}" && cargo build --quiet --release --lib --target wasm32-wasip1) >&2 ||
      { echo "module-of: the module of ${commit:0:12} did not build" >&2; exit 1; }
    scripts/wasm-opt.sh "${built}" "${module}.tmp" >&2
  fi
  mv "${module}.tmp" "${module}"
fi
echo "${module}"
