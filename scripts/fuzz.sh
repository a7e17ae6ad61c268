#!/usr/bin/env bash
# `make fuzz`: coverage-guided fuzzing (libFuzzer via cargo fuzz, nightly Rust)
# of the form parser, token reader, configuration parser and the whole
# decision and rewrite, whole requests (Content-Type and body mutated
# together) and any authority through each kind of port stripping, with the
# invariants of tests/support/invariants.rs.
# FUZZ_SECONDS per target (default 60); FUZZ_TARGETS to choose (default all).
# Seeds are in fuzz/seeds/<target>; what the fuzzer finds goes to fuzz/corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_TARGETS="${FUZZ_TARGETS:-form token config decide request response authority}"

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

summary=()
for target in ${FUZZ_TARGETS}; do
  mkdir -p "fuzz/corpus/${target}"
  log="fuzz/corpus/${target}.log"
  echo "fuzz: ${target} for ${FUZZ_SECONDS}s"
  if ! cargo +nightly fuzz run --fuzz-dir fuzz "${target}" "fuzz/corpus/${target}" "fuzz/seeds/${target}" -- \
      -max_total_time="${FUZZ_SECONDS}" -print_final_stats=1 >"${log}" 2>&1; then
    tail -n 40 "${log}"
    echo "fuzz: ${target} FAILED (crash input in fuzz/artifacts/${target})"
    exit 1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "${log}" | grep -o '[0-9]*$' || echo '?')"
  cov="$(grep -o 'cov: [0-9]*' "${log}" | tail -n 1 | grep -o '[0-9]*' || echo '?')"
  ft="$(grep -o 'ft: [0-9]*' "${log}" | tail -n 1 | grep -o '[0-9]*' || echo '?')"
  corpus="$(find "fuzz/corpus/${target}" -type f | wc -l)"
  summary+=("${target}: ${runs} executions in ${FUZZ_SECONDS}s, coverage ${cov} edges / ${ft} features, corpus ${corpus}")
done
printf 'fuzz: %s\n' "${summary[@]}"
