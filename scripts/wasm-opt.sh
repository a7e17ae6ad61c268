#!/usr/bin/env bash
# Shrinks a release module as the project ships it: scripts/wasm-opt.sh IN OUT.
# One place for the flags, used by scripts/build-wasm.sh and by the bench
# (the V8 decision loop is shrunk alike; the minimal reference filters get
# --floor, below).
# `scripts/wasm-opt.sh --check` only checks the pinned version (scripts/setup.sh).
#
# -Oz --converge without binaryen's inlining: binaryen's size-first passes,
# repeated until the module stops shrinking; 11.1 KB less than -O2 for the
# same code, what made room for Ed25519 within the 384 KiB budget. Measured
# against -O2 (bench/LIMITS.md, issue 27): Envoy instructions per passing
# refresh +0.9%, per rewritten refresh +1.2%, non-token requests -0.1 to
# -0.6% (bench/icount.sh); ES256 minting in V8 224 instead of 216 us, EdDSA
# and HS256 unchanged; Envoy RSS at --concurrency 2 unchanged. Inlining stays
# off: with it, -Oz cost V8 30% more memory per Envoy for no measurable
# speed; the per-request code is already inlined by LLVM.
#
# The wasm-opt version decides the module's bytes as much as the Rust
# toolchain (rust-toolchain.toml) does, so it is pinned: binaryen 108, the
# Debian 12 (bookworm) package `binaryen` 108-1. Another version fails the
# build; AZP_BRIDGE_ANY_WASM_OPT=1 builds anyway, with a module whose bytes
# will not match a published release.
set -euo pipefail
BINARYEN_VERSION=108
BINARYEN_DEB=108-1 # the Debian 12 (bookworm) package

# --floor: the benchmark's reference filters (bench/buffer-filter), which are
# floors for speed and whose size does not matter, get -O2: -Oz --converge
# made the both-bodies one (bufboth) cost Envoy 59,400 more instructions per
# request, in its byte search for the id_token (bench/LIMITS.md).
level=(-Oz --converge)
if [ "${1:-}" = "--floor" ]; then
  level=(-O2)
  shift
fi
if [ "${1:-}" != "--check" ] && [ "$#" -ne 2 ]; then
  echo "usage: scripts/wasm-opt.sh [--floor] IN.wasm OUT.wasm | --check" >&2
  exit 2
fi
if ! command -v wasm-opt >/dev/null; then
  echo "wasm-opt is missing: run scripts/setup.sh (it installs Debian's binaryen ${BINARYEN_DEB})" >&2
  exit 1
fi
found="$(wasm-opt --version 2>/dev/null | head -n 1)"
if ! [[ "${found}" =~ ^wasm-opt\ version\ ${BINARYEN_VERSION}([^0-9.]|$) ]]; then
  cat >&2 <<MSG
wasm-opt: found "${found}" at $(command -v wasm-opt), but the release module is
  built with binaryen ${BINARYEN_VERSION} (pinned in scripts/wasm-opt.sh), and another version
  gives other bytes. Install Debian 12's package binaryen ${BINARYEN_DEB}:
      sudo apt-get install binaryen=${BINARYEN_DEB}
  or put the wasm-opt of binaryen's own version_${BINARYEN_VERSION} release first on PATH.
  AZP_BRIDGE_ANY_WASM_OPT=1 builds with this one anyway (the module will not
  match a published release).
MSG
  [ "${AZP_BRIDGE_ANY_WASM_OPT:-0}" = 1 ] || exit 1
  echo "wasm-opt: AZP_BRIDGE_ANY_WASM_OPT=1, going on with ${found}" >&2
fi
[ "$1" = "--check" ] && exit 0

exec wasm-opt "${level[@]}" \
  --always-inline-max-function-size 0 --one-caller-inline-max-function-size 0 \
  --flexible-inline-max-function-size 0 \
  --strip-debug --strip-producers \
  --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int \
  "$1" -o "$2"
