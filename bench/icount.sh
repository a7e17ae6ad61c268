#!/usr/bin/env bash
# Envoy instructions per request (`make bench-icount`): the proxy Envoy runs
# under valgrind's callgrind, which counts every instruction it executes (its
# own, V8's compiled wasm, libc) on all of its threads. After a warm-up the
# counters are zeroed, N requests are sent one after another on one
# connection, and the total is divided by N. Unlike the timed rounds of
# bench/run.sh this does not depend on what else the machine runs: two runs of
# one configuration agree within 0.3%. It counts instructions, not time
# (cache misses and host-call latency are not in it), so it says which change
# costs how much, and the timed rounds say what that is worth.
#
# Writes bench/results/icount.csv and bench/results/icount.md. ~15 minutes.
# Environment (all optional):
#   ICOUNT_REQUESTS=500 ICOUNT_WARMUP=200   measured and warm-up requests per configuration
#   ICOUNT_ONLY="azp ref"                   only these modules (below); "none" is always counted
#   ICOUNT_WORKLOADS="pass rewrite"          which requests (below)
#   ICOUNT_KEEP=1                           keep the callgrind dumps (WORK/MODULE-WORKLOAD/); the
#                                           pip Envoy is stripped, so they split the count by
#                                           thread and object, not by Envoy function
#   ICOUNT_JOBS=2                           configurations counted at once
#   BENCH_REFERENCE, BENCH_STEPS            as for bench/run.sh
#
# Modules: none (no filter), ref (BENCH_REFERENCE), each step of BENCH_STEPS,
# azp (today's, as built by scripts/build-wasm.sh), auth (today's, Keycloak
# named by `authorities`: no route property read) and bufboth (not
# azp-bridge: the minimal filter of bench/buffer-filter built with
# `--features response`, in its place, which buffers both bodies and cuts the
# id_token out of the answer: the floor of issue 27's goal 3), bufguard (the
# same with `--features guards`: it also reads the request headers and the
# route's cluster and writes the access log's filter state, the host calls
# azp-bridge's guard and log make, deciding nothing) and buffer (the
# same filter without the answer: the request-only minimal wasm of issue 27's
# goal 5); each with the passing and the rewritten refresh of bench/fixtures
# (workloads pass and rewrite), and, with ICOUNT_WORKLOADS, the requests of
# goal 5 with the filter on every route (the shipped filter's
# `disabled: true` dropped, as bench/run.sh's azp-all): get (a GET of
# Keycloak's account page), other (a 1 KB form POST to /api/orders) and
# otherhost (the same POST with the Host of another service).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "${BENCH_DIR}")"
cd "${ROOT}"

REQUESTS="${ICOUNT_REQUESTS:-500}"
WARMUP="${ICOUNT_WARMUP:-200}"
JOBS="${ICOUNT_JOBS:-2}"
RESULTS="${BENCH_RESULTS:-${BENCH_DIR}/results}"
VENV="${VENV:-${ROOT}/.venv}"
# shellcheck source=bench/settings.sh
. "${BENCH_DIR}/settings.sh"

log() { printf '[icount %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

WORK="$(mktemp -d /tmp/azp-icount.XXXXXX)"
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # Every Envoy this script started (under valgrind or not) reads its
  # configuration from WORK, which no other process names.
  pkill -TERM -f -- "-c ${WORK}/" 2>/dev/null || true
  sleep 1
  pkill -KILL -f -- "-c ${WORK}/" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${status}" -eq 0 ] && [ "${ICOUNT_KEEP:-0}" != 1 ]; then rm -rf "${WORK}"
  else log "exit status ${status}; logs and dumps kept in ${WORK}"; fi
  exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- prerequisites: valgrind from Debian, the pinned Envoy's own binary ------------

if ! command -v valgrind >/dev/null; then
  log "installing valgrind (apt)"
  sudo_=(); [ "$(id -u)" = 0 ] || sudo_=(sudo)
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null ||
    { "${sudo_[@]}" apt-get update -qq && "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; } ||
    die "valgrind did not install"
fi
[ -x "${VENV}/bin/python" ] || scripts/setup.sh
# The virtualenv's `envoy` is a Python launcher; valgrind must run the binary.
ENVOY="$("${VENV}/bin/python" -c 'import envoy, pathlib; print(pathlib.Path(envoy.__file__).parent / "_bin" / "envoy")')"
[ -x "${ENVOY}" ] || die "no Envoy binary at ${ENVOY}"

scripts/build-wasm.sh >/dev/null
declare -A WASM=([azp]="${ROOT}/target/wasm32-wasip1/release/azp_bridge.wasm" [auth]="${ROOT}/target/wasm32-wasip1/release/azp_bridge.wasm")
declare -A CONFIG=([azp]="${PLUGIN_CONFIG}" [ref]="${REFERENCE_PLUGIN_CONFIG}" [none]="{}")
WASM[none]=none
MODULES=(none ref)
WASM[ref]="$("${BENCH_DIR}/module-of.sh" "${REFERENCE}")"
declare -A COMMIT=([ref]="$(git rev-parse --short=7 "${REFERENCE}")" [azp]="$(git rev-parse --short=7 HEAD)")
COMMIT[auth]="${COMMIT[azp]}"
for step in ${STEPS}; do
  name="${step%%=*}"
  MODULES+=("${name}")
  WASM[${name}]="$("${BENCH_DIR}/module-of.sh" "${step#*=}")"
  CONFIG[${name}]="${PLUGIN_CONFIG}"
  COMMIT[${name}]="$(git rev-parse --short=7 "${step#*=}")"
done
MODULES+=(azp auth bufboth bufguard buffer)
# floor NAME [FEATURE]: a minimal filter of bench/buffer-filter built with
# FEATURE (none: the request-only one) and optimized as a floor for speed
# (scripts/wasm-opt.sh --floor), as bench/run.sh builds them.
floor() {
  local name="$1" feature="${2:-}" dir=target args=()
  if [ -n "${feature}" ]; then
    dir="target/${feature}"
    args=(--features "${feature}" --target-dir "${dir}")
  fi
  (cd "${BENCH_DIR}/buffer-filter" && cargo build --quiet --release --target wasm32-wasip1 "${args[@]}") ||
    die "the minimal filter ${name} did not build"
  "${ROOT}/scripts/wasm-opt.sh" --floor "${BENCH_DIR}/buffer-filter/${dir}/wasm32-wasip1/release/buffer_filter.wasm" \
    "${WORK}/${name}.wasm"
  WASM[${name}]="${WORK}/${name}.wasm"
  CONFIG[${name}]="{}"
}
floor bufboth response # both bodies, the answer's id_token cut out
floor bufguard guards  # the same, and azp-bridge's guard and access-log host calls
floor buffer           # the request body only
WORKLOADS=(${ICOUNT_WORKLOADS:-pass rewrite})
python3 "${BENCH_DIR}/tools.py" plugin-config authorities "${PLUGIN_CONFIG}" \
  "${ROOT}/tests/fixtures/es256-test-key.pem" "${WORK}/auth.json" || die "no authorities configuration"
CONFIG[auth]="$(cat "${WORK}/auth.json")"
if [ -n "${ICOUNT_ONLY:-}" ]; then
  kept=(none)
  for m in "${MODULES[@]}"; do [[ " ${ICOUNT_ONLY} " == *" ${m} "* && "${m}" != none ]] && kept+=("${m}"); done
  MODULES=("${kept[@]}")
fi

# --- the upstream: the benchmark's direct_response Envoy -----------------------------

free_port() { python3 "${BENCH_DIR}/tools.py" free-port; }
UPSTREAM_PORT="$(free_port)"
python3 "${BENCH_DIR}/tools.py" render "${BENCH_DIR}/envoy/upstream.yaml" "${WORK}/upstream.yaml" \
  "LISTEN_PORT=${UPSTREAM_PORT}" "ADMIN_PORT=$(free_port)" \
  "TOKEN_RESPONSE_PATH=${BENCH_DIR}/fixtures/token-response.json" || die "cannot render the upstream"
"${ENVOY}" -c "${WORK}/upstream.yaml" --concurrency 1 --disable-hot-restart -l warning \
  --log-path "${WORK}/upstream.log" </dev/null >/dev/null 2>&1 &

# count MODULE WORKLOAD: writes "MODULE,WORKLOAD,instructions per request" to WORK/MODULE-WORKLOAD.csv.
count() {
  local module="$1" workload="$2" dir="${WORK}/$1-$2" port admin edit=() i
  mkdir -p "${dir}"
  port="$(free_port)"
  admin="$(free_port)"
  local request=()
  case "${workload}" in
    get) request=(GET /realms/demo/account 127.0.0.1) ;;
    other) request=(POST /api/orders 127.0.0.1) ;;
    otherhost) request=(POST /api/orders orders.internal) ;;
  esac
  # Goal 5's requests reach the filter only where it is on every route.
  [ "${#request[@]}" -gt 0 ] && edit=(--enable-filter)
  [ "${module}" = none ] && edit=(--remove-filter)
  [[ "${module}" = buf* ]] && edit=(--replace-filter "${BENCH_DIR}/envoy/filters/buffer.yaml")
  python3 "${BENCH_DIR}/tools.py" render "${ROOT}/envoy/azp-bridge.yaml" "${dir}/proxy.yaml" "${edit[@]+"${edit[@]}"}" \
    "LISTEN_ADDRESS=127.0.0.1" "LISTEN_PORT=${port}" "ADMIN_ADDRESS=127.0.0.1" "ADMIN_PORT=${admin}" \
    "UPSTREAM_HOST=127.0.0.1" "UPSTREAM_PORT=${UPSTREAM_PORT}" "WASM_PATH=${WASM[${module}]}" \
    "PLUGIN_CONFIG=${CONFIG[${module}]}" "HOLD_HEADERS=false" "HOST_ENV_KEYS=[]" \
    "BUFFER_WASM_PATH=${WASM[${module}]}" || die "cannot render ${module}"
  valgrind --tool=callgrind --callgrind-out-file="${dir}/callgrind.out" --dump-instr=no --collect-jumps=no \
    "${ENVOY}" -c "${dir}/proxy.yaml" --concurrency 1 --disable-hot-restart -l warning \
    --log-path "${dir}/envoy.log" </dev/null >"${dir}/valgrind.log" 2>&1 &
  local pid=$!
  for i in $(seq 1 600); do
    [[ "$(curl -sf "http://127.0.0.1:${admin}/ready" 2>/dev/null || true)" == LIVE* ]] && break
    kill -0 "${pid}" 2>/dev/null || die "Envoy ${module} exited under valgrind (${dir}/valgrind.log)"
    sleep 0.5
  done
  local fixture="${BENCH_DIR}/fixtures/${workload}.form"
  [ "${#request[@]}" -gt 0 ] && fixture="${BENCH_DIR}/fixtures/other.form"
  python3 "${BENCH_DIR}/tools.py" send "${port}" "${fixture}" "${WARMUP}" "${request[@]+"${request[@]}"}" ||
    die "${module}/${workload}: warm-up failed"
  callgrind_control -z "${pid}" >/dev/null 2>&1
  python3 "${BENCH_DIR}/tools.py" send "${port}" "${fixture}" "${REQUESTS}" "${request[@]+"${request[@]}"}" ||
    die "${module}/${workload}: requests failed"
  callgrind_control -d "${pid}" >/dev/null 2>&1
  kill -TERM "${pid}"
  wait "${pid}" 2>/dev/null || true
  # The dump after zeroing holds exactly the measured requests.
  local dump total
  dump="$(ls "${dir}"/callgrind.out.* 2>/dev/null | head -n 1)"
  [ -n "${dump}" ] || die "${module}/${workload}: no callgrind dump"
  total="$(awk '/^(summary|totals):/ { print $2; exit }' "${dump}")"
  echo "${module},${workload},$(( total / REQUESTS ))" >"${dir}.csv"
  log "${module} ${workload}: $(( total / REQUESTS )) instructions per request"
}

log "counting ${#MODULES[@]} modules x ${#WORKLOADS[@]} workloads, ${JOBS} at a time (${WARMUP} + ${REQUESTS} requests each)"
running=0
for module in "${MODULES[@]}"; do
  for workload in "${WORKLOADS[@]}"; do
    count "${module}" "${workload}" &
    running=$((running + 1))
    if [ "${running}" -ge "${JOBS}" ]; then wait -n || die "a count failed"; running=$((running - 1)); fi
  done
done
while [ "${running}" -gt 0 ]; do wait -n || die "a count failed"; running=$((running - 1)); done

mkdir -p "${RESULTS}"
{
  echo "module,commit,workload,instructions_per_request"
  for module in "${MODULES[@]}"; do
    for workload in "${WORKLOADS[@]}"; do
      IFS=, read -r m w n <"${WORK}/${module}-${workload}.csv"
      echo "${m},${COMMIT[${m}]:-},${w},${n}"
    done
  done
} >"${RESULTS}/icount.csv"
python3 "${BENCH_DIR}/tools.py" icount-table "${RESULTS}/icount.csv" "${REQUESTS}" "${WARMUP}" \
  "$("${ENVOY}" --version | grep -o 'version: [^ ]*' | head -n 1)" >"${RESULTS}/icount.md"
cat "${RESULTS}/icount.md"
