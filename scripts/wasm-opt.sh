#!/usr/bin/env bash
# Shrinks a release module as the project ships it: scripts/wasm-opt.sh IN OUT.
# One place for the flags, used by scripts/build-wasm.sh and by bench/run.sh
# (the minimal filter and the V8 decision loop are shrunk alike).
#
# -O2 without binaryen's inlining: -Oz made the module 5% smaller but, by
# inlining into large functions, cost V8 30% more memory per Envoy (RSS at
# --concurrency 2) for no measurable speed; the per-request code is already
# inlined by LLVM (see bench/LIMITS.md).
set -euo pipefail
if [ "$#" -ne 2 ]; then
  echo "usage: scripts/wasm-opt.sh IN.wasm OUT.wasm" >&2
  exit 2
fi
if ! command -v wasm-opt >/dev/null; then
  echo "wasm-opt is missing: run scripts/setup.sh" >&2
  exit 1
fi
exec wasm-opt -O2 \
  --always-inline-max-function-size 0 --one-caller-inline-max-function-size 0 \
  --flexible-inline-max-function-size 0 \
  --strip-debug --strip-producers \
  --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int \
  "$1" -o "$2"
