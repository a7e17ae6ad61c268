#!/usr/bin/env bash
# azp-bridge's benchmark (`make bench`): the pinned Envoy, one per configuration, in front
# of a fast direct_response upstream, load from wrk over 127.0.0.1, paired
# rounds alternating the variants; Envoy's own CPU time per request from /proc;
# RSS at --concurrency 2; a native micro-benchmark of the decision; the
# module's size. Writes BENCHMARKS.md, bench/results/*.csv|json and
# bench/results/chart.png. See bench/README.md.
#
# Environment (all optional):
#   BENCH_ROUNDS=5 BENCH_SECONDS=10   rounds, and seconds per run
#   BENCH_QUICK=1                     smoke run (~2 min): 2 rounds x 2 s, short native bench
#   BENCH_CONNECTIONS=8               wrk connections (one wrk thread)
#   BENCH_WARMUP=2                    seconds of unrecorded load before each recorded run
#   BENCH_RSS_REPEATS=5               Envoy starts per configuration for the RSS figures (median)
#   BENCH_ONLY="azp-rewrite buffer-token"  run only these variants (names below)
#   BENCH_PIN=1                       (default) pin the proxy Envoy to CPU 1, wrk and the upstream to CPU 0; 0: no pinning
#   BENCH_SKIP_NATIVE=1 BENCH_SKIP_RSS=1 BENCH_SKIP_VERIFY=1   skip those parts
#   BENCH_REPORT=<path>               where the report goes (default: BENCHMARKS.md at the repo root)
#   BENCH_RESULTS=<dir>               where the raw results and the chart go (default: bench/results)
#   AZP_BRIDGE_WASM=<path>            measure this module instead of building the repo's
#   BENCH_REFERENCE=21b7dbb           the commit whose module is the reference ("ref-*" variants):
#                                     the last one before the design's packages (serde, serde_json, base64);
#                                     built once into .cache/bench-reference-<commit>.wasm
#   BENCH_STEPS="sec=4842636 pkgs=75a421c idt=84b3e4d"
#                                     commits between the reference and today, each run as
#                                     "<name>-rewrite" and "<name>-pass" with its own module, so the
#                                     report can say what each step cost: the security fixes before the
#                                     move (sec), the move to the design's packages (pkgs), the id_token
#                                     drop (idt). Built like the reference; "" runs none.
#   BENCH_BUFFER_WASM=<path>          likewise for the minimal filter (for experiments)
#   BENCH_BUFFER_HEADERS_WASM=<path>  likewise for the minimal filter that also reads the headers
#   BENCH_BUFFER_BOTH_WASM=<path>     likewise for the minimal filter that also edits the response
#   BENCH_SKIP_KEYCLOAK=1             skip Keycloak's own CPU per refresh (bench/keycloak-cpu.sh)
#   BENCH_KEYCLOAK_WARMUP=2000 BENCH_KEYCLOAK_REFRESHES=1000
#                                     its unrecorded and recorded sequential refreshes
#   ENVOY_BIN, VENV                   the Envoy binary, and the virtualenv for matplotlib
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "${BENCH_DIR}")"
cd "${ROOT}"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  ROUNDS="${BENCH_ROUNDS:-2}"
  SECONDS_PER_RUN="${BENCH_SECONDS:-2}"
  WARMUP="${BENCH_WARMUP:-1}"
  RSS_REPEATS="${BENCH_RSS_REPEATS:-1}"
  NATIVE_ARGS=(--warm-up-time 1 --measurement-time 1)
  V8_ITERATIONS=4000 V8_REPEATS=1
else
  ROUNDS="${BENCH_ROUNDS:-5}"
  SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
  WARMUP="${BENCH_WARMUP:-2}"
  RSS_REPEATS="${BENCH_RSS_REPEATS:-5}"
  NATIVE_ARGS=(--warm-up-time 2 --measurement-time 5)
  V8_ITERATIONS=20000 V8_REPEATS=3
fi
CONNECTIONS="${BENCH_CONNECTIONS:-8}"
# Pinning needs two CPUs (and taskset).
PIN="${BENCH_PIN:-1}"
if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; then PIN=0; fi
VENV="${VENV:-${ROOT}/.venv}"
ENVOY_BIN="${ENVOY_BIN:-${VENV}/bin/envoy}"
RESULTS="${BENCH_RESULTS:-${BENCH_DIR}/results}"
REPORT="${BENCH_REPORT:-${ROOT}/BENCHMARKS.md}"
BUFFER_WASM="${BENCH_BUFFER_WASM:-${BENCH_DIR}/buffer-filter/target/wasm32-wasip1/release/buffer_filter.wasm}"
BUFFER_HEADERS_WASM="${BENCH_BUFFER_HEADERS_WASM:-${BENCH_DIR}/buffer-filter/target/read-headers/wasm32-wasip1/release/buffer_filter.wasm}"
BUFFER_BOTH_WASM="${BENCH_BUFFER_BOTH_WASM:-${BENCH_DIR}/buffer-filter/target/response/wasm32-wasip1/release/buffer_filter.wasm}"
LUA_SCRIPT="${BENCH_DIR}/envoy/azp-swap.lua"
CLK_TCK="$(getconf CLK_TCK)"

# PLUGIN_CONFIG, REFERENCE(_PLUGIN_CONFIG) and STEPS; STEP_NAMES keeps the
# steps' order.
# shellcheck source=bench/settings.sh
. "${BENCH_DIR}/settings.sh"
STEP_NAMES=()
declare -A STEP_COMMIT=() STEP_WASM=()
for step in ${STEPS}; do
  STEP_NAMES+=("${step%%=*}")
  STEP_COMMIT[${step%%=*}]="${step#*=}"
done
# What Envoy must forward for fixtures/rewrite.form once the credentials are swapped.
SECRET_POSTED='bench-Secret%2F%2B%26%3D'

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- every process started here is stopped on exit, failure or Ctrl-C ----------

WORK="$(mktemp -d /tmp/azp-bench.XXXXXX)"
PIDS=()
stop_pid() {
  local pid="$1" i
  kill -TERM "${pid}" 2>/dev/null || return 0
  for i in $(seq 1 50); do
    kill -0 "${pid}" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "${pid}" 2>/dev/null || true
  wait "${pid}" 2>/dev/null || true
}
KEYCLOAK_STEP_PID=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid i
  # bench/keycloak-cpu.sh stops its Keycloak on TERM (up to 30 s for the JVM):
  # it gets a minute before KILL.
  if [ -n "${KEYCLOAK_STEP_PID}" ] && kill -TERM "${KEYCLOAK_STEP_PID}" 2>/dev/null; then
    for i in $(seq 1 600); do
      kill -0 "${KEYCLOAK_STEP_PID}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${KEYCLOAK_STEP_PID}" 2>/dev/null || true
  fi
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    stop_pid "${pid}"
  done
  if [ "${status}" -ne 0 ]; then
    log "exit status ${status}; Envoy logs kept in ${WORK}"
  else
    rm -rf "${WORK}"
  fi
  exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Stops one started process and forgets it.
stop() {
  local pid="$1" kept=() p
  stop_pid "${pid}"
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do
    [ "${p}" = "${pid}" ] || kept+=("${p}")
  done
  PIDS=("${kept[@]+"${kept[@]}"}")
}

# --- prerequisites ---------------------------------------------------------------

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

ensure_wrk() {
  command -v wrk >/dev/null && return 0
  log "installing wrk (apt)"
  local policy
  policy="$(apt-cache policy wrk 2>/dev/null || true)"
  if [[ "${policy}" != *"Candidate: "[0-9]* ]]; then
    as_root apt-get update -qq
    policy="$(apt-cache policy wrk 2>/dev/null || true)"
  fi
  [[ "${policy}" == *"Candidate: "[0-9]* ]] || die "no wrk package in the apt sources"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  command -v wrk >/dev/null || die "wrk did not install"
}

# The pinned Envoy, the Rust target and wasm-opt come from the project's setup.
ensure_setup() {
  if [ ! -x "${ENVOY_BIN}" ] || ! command -v wasm-opt >/dev/null ||
    ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1; then
    log "running scripts/setup.sh"
    scripts/setup.sh
  fi
  [ -x "${ENVOY_BIN}" ] || die "no Envoy at ${ENVOY_BIN}"
}

ensure_matplotlib() {
  [ -x "${VENV}/bin/python" ] || python3 -m venv "${VENV}"
  if ! "${VENV}/bin/python" -c 'import matplotlib' 2>/dev/null; then
    log "installing matplotlib into ${VENV} (for the chart)"
    "${VENV}/bin/pip" install --quiet --disable-pip-version-check matplotlib ||
      log "matplotlib did not install: the report will have no chart"
  fi
}

build() {
  if [ -n "${AZP_BRIDGE_WASM:-}" ]; then
    WASM="${AZP_BRIDGE_WASM}"
  else
    # The shipped bytes: the project's build (release, then wasm-opt) when it has one.
    log "building azp_bridge.wasm as shipped"
    if [ -x scripts/build-wasm.sh ]; then
      scripts/build-wasm.sh >/dev/null
    else
      cargo build --quiet --release --lib --target wasm32-wasip1
    fi
    WASM="${ROOT}/target/wasm32-wasip1/release/azp_bridge.wasm"
  fi
  [ -f "${WASM}" ] || die "no module at ${WASM}"
  if [ -z "${BENCH_BUFFER_WASM:-}" ]; then
    log "building the minimal buffering filter (bench/buffer-filter)"
    (cd "${BENCH_DIR}/buffer-filter" && cargo build --quiet --release --target wasm32-wasip1)
    # A floor for speed: -O2 (scripts/wasm-opt.sh --floor), not the module's -Oz.
    "${ROOT}/scripts/wasm-opt.sh" --floor "${BUFFER_WASM}" "${WORK}/buffer_filter.wasm"
    BUFFER_WASM="${WORK}/buffer_filter.wasm"
  fi
  [ -f "${BUFFER_WASM}" ] || die "no module at ${BUFFER_WASM}"
  if [ -z "${BENCH_BUFFER_HEADERS_WASM:-}" ]; then
    log "building the minimal filter that also reads the headers (--features read-headers)"
    (cd "${BENCH_DIR}/buffer-filter" &&
      cargo build --quiet --release --target wasm32-wasip1 --features read-headers --target-dir target/read-headers)
    "${ROOT}/scripts/wasm-opt.sh" --floor "${BUFFER_HEADERS_WASM}" "${WORK}/buffer_filter_headers.wasm"
    BUFFER_HEADERS_WASM="${WORK}/buffer_filter_headers.wasm"
  fi
  [ -f "${BUFFER_HEADERS_WASM}" ] || die "no module at ${BUFFER_HEADERS_WASM}"
  if [ -z "${BENCH_BUFFER_BOTH_WASM:-}" ]; then
    log "building the minimal filter that also cuts the id_token out of the answer (--features response)"
    (cd "${BENCH_DIR}/buffer-filter" &&
      cargo build --quiet --release --target wasm32-wasip1 --features response --target-dir target/response)
    "${ROOT}/scripts/wasm-opt.sh" --floor "${BUFFER_BOTH_WASM}" "${WORK}/buffer_filter_both.wasm"
    BUFFER_BOTH_WASM="${WORK}/buffer_filter_both.wasm"
  fi
  [ -f "${BUFFER_BOTH_WASM}" ] || die "no module at ${BUFFER_BOTH_WASM}"
  build_reference
}

# The reference module and the steps' modules (bench/module-of.sh: each
# commit's source, built once into .cache/).
build_reference() {
  REFERENCE_WASM="$("${BENCH_DIR}/module-of.sh" "${REFERENCE}")" || die "BENCH_REFERENCE ${REFERENCE}: no module"
  local name
  for name in "${STEP_NAMES[@]+"${STEP_NAMES[@]}"}"; do
    STEP_WASM[${name}]="$("${BENCH_DIR}/module-of.sh" "${STEP_COMMIT[${name}]}")" ||
      die "BENCH_STEPS ${name}: no module"
  done
}

free_port() { python3 "${BENCH_DIR}/tools.py" free-port; }

# --- Envoy -----------------------------------------------------------------------

# The proxy configurations, all derived from the shipped envoy/azp-bridge.yaml
# (same listener, HTTP options, routes and cluster) by changing only its
# azp_bridge HTTP filter (bench/tools.py render).
#   none, none-b  the filter removed (none-b: a second one, the A/A control)
#   lua           replaced by the Lua swap (envoy/filters/lua.yaml)
#   buffer        replaced by the minimal wasm filter (envoy/filters/buffer.yaml)
#   buffer-headers  the same, built to also read the request headers once
#   buffer-both   the same, built to also buffer a 2xx answer and cut its id_token out
#   azp           as shipped: the filter only on the token/revoke/logout route
#   azp-all       as shipped without `disabled: true`: the filter sees every request
#   azp-ref       as shipped, with the reference module (BENCH_REFERENCE)
#   azp-step-NAME as shipped, with the module of BENCH_STEPS' commit NAME
#   azp-auth      as shipped, Keycloak named by `authorities` instead of `upstream_clusters`
#   azp-10k       as shipped, with 5,000 realms x 2 clients more (10,002 entries)
#   azp-hs256     as shipped, the target client as client_secret_jwt (HS256)
#   azp-es256     as shipped, the target client as private_key_jwt (ES256)
#   azp-eddsa     as shipped, the target client as private_key_jwt (EdDSA)
#   azp-hostile   on every route, 10,002 entries, 160 KB of request headers allowed
#                 (issue 23: a request must not set the filter's CPU cost)
#   none-hostile  no filter, 160 KB of request headers allowed
#   upstream      the direct_response upstream (envoy/upstream.yaml)
config_source() {
  local shipped="${ROOT}/envoy/azp-bridge.yaml"
  case "$1" in
    none | none-b) CONFIG_SOURCE=("${shipped}" --remove-filter) ;;
    lua) CONFIG_SOURCE=("${shipped}" --replace-filter "${BENCH_DIR}/envoy/filters/lua.yaml") ;;
    buffer | buffer-headers | buffer-both) CONFIG_SOURCE=("${shipped}" --replace-filter "${BENCH_DIR}/envoy/filters/buffer.yaml") ;;
    azp | azp-ref | azp-10k | azp-hs256 | azp-es256 | azp-eddsa | azp-auth | azp-step-*) CONFIG_SOURCE=("${shipped}") ;;
    azp-all) CONFIG_SOURCE=("${shipped}" --enable-filter) ;;
    azp-hostile) CONFIG_SOURCE=("${shipped}" --enable-filter --max-request-headers-kb 160) ;;
    none-hostile) CONFIG_SOURCE=("${shipped}" --remove-filter --max-request-headers-kb 160) ;;
    upstream) CONFIG_SOURCE=("${BENCH_DIR}/envoy/upstream.yaml") ;;
    *) die "unknown configuration $1" ;;
  esac
}

# start_envoy NAME CONFIG CONCURRENCY UPSTREAM_PORT [ROLE]: starts an Envoy with
# one of the configurations above, waits until it is ready; sets ENVOY_PID and
# ENVOY_PORT. ROLE (proxy or upstream) only matters with BENCH_PIN=1.
start_envoy() {
  local name="$1" config="$2" concurrency="$3" upstream_port="$4" role="${5:-proxy}"
  local port admin i pin=()
  port="$(free_port)"
  admin="$(free_port)"
  config_source "${config}"
  local buffer_wasm="${BUFFER_WASM}" wasm="${WASM}" plugin_config="PLUGIN_CONFIG=${PLUGIN_CONFIG}"
  [ "${config}" = buffer-headers ] && buffer_wasm="${BUFFER_HEADERS_WASM}"
  [ "${config}" = buffer-both ] && buffer_wasm="${BUFFER_BOTH_WASM}"
  case "${config}" in
    azp-ref)
      wasm="${REFERENCE_WASM}"
      plugin_config="PLUGIN_CONFIG=${REFERENCE_PLUGIN_CONFIG}"
      ;;
    azp-step-*) wasm="${STEP_WASM[${config#azp-step-}]:-}" ;;
    # Over a megabyte for azp-10k: passed as a file (an argument has a size limit).
    azp-10k | azp-hs256 | azp-es256 | azp-eddsa | azp-auth) plugin_config="PLUGIN_CONFIG@$(plugin_config_file "${config#azp-}")" ;;
    azp-hostile) plugin_config="PLUGIN_CONFIG@$(plugin_config_file 10k)" ;;
  esac
  python3 "${BENCH_DIR}/tools.py" render "${CONFIG_SOURCE[0]}" "${WORK}/${name}.yaml" "${CONFIG_SOURCE[@]:1}" \
    "LISTEN_ADDRESS=127.0.0.1" "LISTEN_PORT=${port}" "ADMIN_ADDRESS=127.0.0.1" "ADMIN_PORT=${admin}" \
    "UPSTREAM_HOST=127.0.0.1" "UPSTREAM_PORT=${upstream_port}" \
    "WASM_PATH=${wasm}" "BUFFER_WASM_PATH=${buffer_wasm}" "LUA_PATH=${LUA_SCRIPT}" \
    "${plugin_config}" "HOLD_HEADERS=false" "HOST_ENV_KEYS=[]" \
    "TOKEN_RESPONSE_PATH=${BENCH_DIR}/fixtures/token-response.json" || die "cannot render ${config}"
  if [ "${PIN}" = 1 ]; then
    if [ "${role}" = proxy ]; then pin=(taskset -c 1); else pin=(taskset -c 0); fi
  fi
  "${pin[@]+"${pin[@]}"}" "${ENVOY_BIN}" -c "${WORK}/${name}.yaml" --concurrency "${concurrency}" --disable-hot-restart \
    -l warning --log-path "${WORK}/${name}.log" </dev/null >/dev/null 2>&1 &
  ENVOY_PID=$!
  PIDS+=("${ENVOY_PID}")
  ENVOY_PORT="${port}"
  for i in $(seq 1 300); do
    if [[ "$(curl -sf "http://127.0.0.1:${admin}/ready" 2>/dev/null || true)" == LIVE* ]]; then
      return 0
    fi
    kill -0 "${ENVOY_PID}" 2>/dev/null || die "Envoy ${name} exited at start-up (log: ${WORK}/${name}.log)"
    sleep 0.1
  done
  die "Envoy ${name} not ready after 30 s (log: ${WORK}/${name}.log)"
}

# The configuration file of a scale or signing variant (10k, hs256, es256, eddsa), made once.
plugin_config_file() {
  local kind out key="${ROOT}/tests/fixtures/es256-test-key.pem"
  case "$1" in 10k) kind=tenants ;; auth) kind=authorities ;; *) kind="$1" ;; esac
  [ "$1" = eddsa ] && key="${ROOT}/tests/fixtures/ed25519-test-key.pem"
  out="${WORK}/plugin-config-$1.json"
  [ -f "${out}" ] || python3 "${BENCH_DIR}/tools.py" plugin-config "${kind}" "${PLUGIN_CONFIG}" \
    "${key}" "${out}" || die "cannot write ${out}"
  echo "${out}"
}

cpu_ticks() {
  local stat
  stat="$(cat "/proc/$1/stat")"
  stat="${stat##*) }"
  # shellcheck disable=SC2086
  set -- ${stat}
  # After "pid (comm) ": $1 is field 3 (state); utime is field 14, stime 15.
  echo $(( ${12} + ${13} ))
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# --- correctness first: every variant forwards what it should ----------------------

post_form() { # PORT PATH FIXTURE [ANSWER_FILE]
  curl -sf -o "${4:-/dev/null}" -H 'content-type: application/x-www-form-urlencoded' \
    --data-binary "@${BENCH_DIR}/fixtures/$3" "http://127.0.0.1:$1$2"
}

verify() {
  [ "${BENCH_SKIP_VERIFY:-0}" = 1 ] && return 0
  log "verifying what each variant forwards (recording upstream)"
  local rec_port rec_pid name
  rec_port="$(free_port)"
  # It answers the token endpoint with the bench upstream's Keycloak-shaped
  # answer (an id_token among three JWTs): what each variant gives the client is
  # checked too.
  python3 "${BENCH_DIR}/tools.py" record "${rec_port}" "${WORK}/recorded.jsonl" \
    "${BENCH_DIR}/fixtures/token-response.json" &
  rec_pid=$!
  PIDS+=("${rec_pid}")
  local token=/realms/demo/protocol/openid-connect/token
  local -A ports=()
  local started=()
  local verified=(none lua buffer buffer-headers buffer-both azp azp-all azp-ref azp-10k azp-hs256 azp-es256 azp-eddsa)
  # The configurations that cut the id_token out of a bridged refresh's
  # answer: today's module, the Lua peer, the minimal both-bodies filter (from
  # every 2xx answer to a request with a body), and the reference and the
  # steps from 84b3e4d on.
  local drops="azp azp-all azp-10k azp-hs256 azp-es256 azp-eddsa lua"
  git merge-base --is-ancestor 84b3e4d "${REFERENCE}" 2>/dev/null && drops+=" azp-ref"
  for name in "${STEP_NAMES[@]+"${STEP_NAMES[@]}"}"; do
    verified+=("azp-step-${name}")
    git merge-base --is-ancestor 84b3e4d "${STEP_COMMIT[${name}]}" 2>/dev/null && drops+=" azp-step-${name}"
  done
  for name in "${verified[@]}"; do
    start_envoy "verify-${name}" "${name}" 1 "${rec_port}"
    ports[${name}]="${ENVOY_PORT}"
    started+=("${ENVOY_PID}")
  done
  : >"${WORK}/recorded.jsonl"
  for name in "${verified[@]}"; do
    local p="${ports[${name}]}"
    post_form "${p}" "${token}?v=${name}&case=rewrite" rewrite.form "${WORK}/answer-${name}-rewrite"
    post_form "${p}" "${token}?v=${name}&case=pass" pass.form "${WORK}/answer-${name}-pass"
    post_form "${p}" "/api/orders?v=${name}&case=other" other.form
    curl -sf -o /dev/null "http://127.0.0.1:${p}/realms/demo/account?v=${name}&case=get"
  done
  for name in "${started[@]}"; do stop "${name}"; done
  stop "${rec_pid}"
  VERIFY_DROPS="${drops}" VERIFY_ANSWERS="${WORK}" \
    python3 - "${WORK}/recorded.jsonl" "${BENCH_DIR}/fixtures" "${SECRET_POSTED}" "${verified[@]}" <<'EOF'
import base64, json, os, re, sys, urllib.parse
recorded, fixtures, secret, *verified = sys.argv[1:]
def fixture(name):
    return open(f"{fixtures}/{name}", encoding="latin-1").read()
original = fixture("rewrite.form")
rewritten = "&".join(p for p in original.split("&") if not p.startswith("client_id=")) \
    + f"&client_id=admin&client_secret={secret}"
expected = {
    ("none", "rewrite"): original, ("buffer", "rewrite"): original, ("buffer-headers", "rewrite"): original,
    ("buffer-both", "rewrite"): original,
    ("lua", "rewrite"): rewritten, ("azp", "rewrite"): rewritten, ("azp-all", "rewrite"): rewritten,
    ("azp-ref", "rewrite"): rewritten, ("azp-10k", "rewrite"): rewritten,
}
# A signed client assertion differs per request (jti, iat): its prefix is
# exact, then one compact JWS whose header names the algorithm.
signed_prefix = "&".join(p for p in original.split("&") if not p.startswith("client_id=")) \
    + "&client_id=admin&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer" \
    + "&client_assertion="
def signed(alg):
    def check(body):
        if not body or not body.startswith(signed_prefix):
            return False
        parts = body[len(signed_prefix):].split(".")
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
        return len(parts) == 3 and header.get("alg") == alg
    return check
expected[("azp-hs256", "rewrite")] = signed("HS256")
expected[("azp-es256", "rewrite")] = signed("ES256")
expected[("azp-eddsa", "rewrite")] = signed("EdDSA")
for v in verified:
    if v.startswith("azp-step-"):
        expected[(v, "rewrite")] = rewritten
seen = {}
for line in open(recorded):
    e = json.loads(line)
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(e["path"]).query))
    seen[(q["v"], q["case"])] = e["body"]
problems = []
for v in verified:
    want = {"rewrite": expected[(v, "rewrite")], "pass": fixture("pass.form"),
            "other": fixture("other.form"), "get": ""}
    for case, body in want.items():
        got = seen.get((v, case))
        if not (body(got) if callable(body) else got == body):
            problems.append(f"{v}/{case}: forwarded {got!r:.80} ...")
# What the client gets from the token endpoint: the upstream's answer, or,
# where the id_token goes, the same bytes without its member (every other
# member byte for byte, in the same order).
answer = fixture("token-response.json")
without = re.sub(r',"id_token":"[^"]*"', "", answer, count=1)
assert without != answer and "id_token" not in without and json.loads(without) == \
    {k: v for k, v in json.loads(answer).items() if k != "id_token"}
drops = os.environ["VERIFY_DROPS"].split()
for v in verified:
    for case in ("rewrite", "pass"):
        cut = (v == "buffer-both") or (case == "rewrite" and v in drops)
        got = open(f"{os.environ['VERIFY_ANSWERS']}/answer-{v}-{case}", encoding="latin-1").read()
        if got != (without if cut else answer):
            problems.append(f"{v}/{case}: answered {got[:60]!r} ... ({len(got)} bytes; expected "
                            f"{len(without if cut else answer)}, {'without' if cut else 'with'} its id_token)")
if problems:
    sys.exit("verify: " + "; ".join(problems))
print("verify: Lua, azp-bridge (also with 10,002 entries), the reference module and the steps' modules forward"
      " the same rewritten body, the HS256, ES256 and EdDSA clients a signed assertion; everything else byte for byte."
      f" Answers: {' '.join(sorted(set(drops) & set(verified)))} and buffer-both give the client Keycloak's"
      " answer without its id_token, every other member byte for byte; everything else the answer as it came")
EOF
}

# --- load --------------------------------------------------------------------------

# Variants: name, Envoy configuration, wrk script. none-other-b is an A/A
# control: a second, identical no-filter Envoy; how far its ratio to
# none-other strays from 1.0 is the noise a ratio carries on this machine.
VARIANTS=(
  "none-token none token-rewrite.lua"
  "lua-rewrite lua token-rewrite.lua"
  "buffer-token buffer token-rewrite.lua"
  "bufhdr-token buffer-headers token-rewrite.lua"
  "bufboth-token buffer-both token-rewrite.lua"
  "azp-rewrite azp token-rewrite.lua"
  "azp-pass azp token-pass.lua"
  "ref-rewrite azp-ref token-rewrite.lua"
  "ref-pass azp-ref token-pass.lua"
  "auth-rewrite azp-auth token-rewrite.lua"
  "auth-pass azp-auth token-pass.lua"
  "azp10k-rewrite azp-10k token-rewrite.lua"
  "hs256-rewrite azp-hs256 token-rewrite.lua"
  "es256-rewrite azp-es256 token-rewrite.lua"
  "eddsa-rewrite azp-eddsa token-rewrite.lua"
  "STEPS"
  "none-other none other.lua"
  "none-other-b none-b other.lua"
  "buffer-other buffer other.lua"
  "azp-other azp other.lua"
  "azp-all-other azp-all other.lua"
  "none-otherhost none other-host.lua"
  "buffer-otherhost buffer other-host.lua"
  "azp-all-otherhost azp-all other-host.lua"
  "hostile-none4 none-hostile hostile:4"
  "hostile-none none-hostile hostile:61440"
  "hostile4 azp-hostile hostile:4"
  "hostile60k azp-hostile hostile:61440"
)

# The steps' variants go where "STEPS" stands.
with_steps=()
for v in "${VARIANTS[@]}"; do
  if [ "${v}" = STEPS ]; then
    for step in "${STEP_NAMES[@]+"${STEP_NAMES[@]}"}"; do
      with_steps+=("${step}-rewrite azp-step-${step} token-rewrite.lua" "${step}-pass azp-step-${step} token-pass.lua")
    done
  else
    with_steps+=("${v}")
  fi
done
VARIANTS=("${with_steps[@]}")

# run_wrk PORT SCRIPT SECONDS: prints wrk's BENCH_RESULT fields. SCRIPT
# hostile:N is issue 23's hostile request with an N-byte realm, sent by
# bench/tools.py (wrk refuses a request with over 80 KB of headers).
run_wrk() {
  local out
  local pin=()
  [ "${PIN}" = 1 ] && pin=(taskset -c 0)
  if [[ "$2" == hostile:* ]]; then
    out="$("${pin[@]+"${pin[@]}"}" python3 "${BENCH_DIR}/tools.py" hostile-load "$1" "${2#hostile:}" "$3" "${CONNECTIONS}")" ||
      die "hostile-load failed: ${out}"
    grep '^BENCH_RESULT ' <<<"${out}" | cut -d' ' -f2- || die "no result from hostile-load: ${out}"
    return 0
  fi
  out="$(cd "${BENCH_DIR}/wrk" && "${pin[@]+"${pin[@]}"}" wrk -t1 -c"${CONNECTIONS}" -d"$3s" --timeout 5s --latency -s "$2" "http://127.0.0.1:$1/")" ||
    die "wrk failed: ${out}"
  echo "${out}" >>"${WORK}/wrk.log"
  grep '^BENCH_RESULT ' <<<"${out}" | cut -d' ' -f2- || die "no result from wrk: ${out}"
}

run_rounds() {
  local upstream_port="$1"
  if [ -n "${BENCH_ONLY:-}" ]; then
    local selected=() v
    for v in "${VARIANTS[@]}"; do
      [[ " ${BENCH_ONLY} " == *" ${v%% *} "* ]] && selected+=("${v}")
    done
    [ "${#selected[@]}" -gt 0 ] || die "BENCH_ONLY names no variant"
    VARIANTS=("${selected[@]}")
  fi
  local v name cfg script order=() r i
  echo "round,variant,config,script,requests,duration_us,p50_us,p99_us,socket_errors,non_2xx,envoy_cpu_ticks,clk_tck" \
    >"${RESULTS}/runs.csv"
  for r in $(seq 1 "${ROUNDS}"); do
    # Alternate the order: forward on odd rounds, backward on even ones.
    order=()
    if (( r % 2 )); then
      for (( i = 0; i < ${#VARIANTS[@]}; i++ )); do order+=("${VARIANTS[i]}"); done
    else
      for (( i = ${#VARIANTS[@]} - 1; i >= 0; i-- )); do order+=("${VARIANTS[i]}"); done
    fi
    log "round ${r}/${ROUNDS}: ${#order[@]} variants x ${SECONDS_PER_RUN} s (a fresh Envoy each)"
    for v in "${order[@]}"; do
      read -r name cfg script <<<"${v}"
      # A fresh proxy per run: two long-lived Envoys with the same
      # configuration differed by up to 6% in CPU per request (memory
      # layout), a bias that pairing cannot remove; a new one per run turns
      # it into noise that the median over rounds absorbs.
      start_envoy "bench-${cfg}-${r}" "${cfg}" 1 "${upstream_port}"
      local pid="${ENVOY_PID}" port="${ENVOY_PORT}" before after result
      run_wrk "${port}" "${script}" "${WARMUP}" >/dev/null
      before="$(cpu_ticks "${pid}")"
      result="$(run_wrk "${port}" "${script}" "${SECONDS_PER_RUN}")"
      after="$(cpu_ticks "${pid}")"
      kill -0 "${pid}" 2>/dev/null || die "Envoy ${cfg} died (log: ${WORK}/bench-${cfg}-${r}.log)"
      echo "${r},${name},${cfg},${script},${result// /,},$(( after - before )),${CLK_TCK}" >>"${RESULTS}/runs.csv"
      stop "${pid}"
    done
  done
}

# RSS at --concurrency 2, before and after the same load, per configuration.
run_rss() {
  local upstream_port="$1" rep cfg idle
  if [ "${BENCH_SKIP_RSS:-0}" = 1 ]; then
    rm -f "${RESULTS}/rss.csv"
    return 0
  fi
  log "RSS at --concurrency 2 (${RSS_REPEATS} start(s) per configuration)"
  echo "repeat,config,rss_idle_kib,rss_after_load_kib,ready_ms" >"${RESULTS}/rss.csv"
  local started ready_ms
  for rep in $(seq 1 "${RSS_REPEATS}"); do
    for cfg in none buffer azp azp-ref azp-10k; do
      started="$(date +%s%N)"
      start_envoy "rss-${cfg}" "${cfg}" 2 "${upstream_port}"
      # Start to ready: includes each VM's on_configure (the main thread's
      # and the two workers').
      ready_ms=$(( ($(date +%s%N) - started) / 1000000 ))
      idle="$(rss_kib "${ENVOY_PID}")"
      run_wrk "${ENVOY_PORT}" token-rewrite.lua "${SECONDS_PER_RUN}" >/dev/null
      echo "${rep},${cfg},${idle},$(rss_kib "${ENVOY_PID}"),${ready_ms}" >>"${RESULTS}/rss.csv"
      stop "${ENVOY_PID}"
    done
  done
}

run_native() {
  if [ "${BENCH_SKIP_NATIVE:-0}" = 1 ] || [ -n "${AZP_BRIDGE_WASM:-}" ]; then
    log "native micro-benchmark skipped"
    rm -f "${RESULTS}/native.csv"
    return 0
  fi
  # The module's optimisation, so the native code is the module's code: the
  # root crate's release opt-level for the dependencies, and its
  # [profile.release.package.azp-bridge] opt-level (if any) for azp-bridge.
  local base_opt crate_opt
  base_opt="$(awk '/^\[profile.release\]/ { p = 1; next } /^\[/ { p = 0 }
    p && /^opt-level/ { gsub(/[" ]/, "", $3); print $3 }' "${ROOT}/Cargo.toml")"
  crate_opt="$(awk '/^\[profile.release.package.azp-bridge\]/ { p = 1; next } /^\[/ { p = 0 }
    p && /^opt-level/ { gsub(/[" ]/, "", $3); print $3 }' "${ROOT}/Cargo.toml")"
  base_opt="${base_opt:-3}"
  crate_opt="${crate_opt:-${base_opt}}"
  export CARGO_PROFILE_BENCH_OPT_LEVEL="${base_opt}" CARGO_PROFILE_RELEASE_OPT_LEVEL="${base_opt}"
  # cargo --config wants numbers bare and letters quoted.
  local quoted="${crate_opt}"
  [[ "${crate_opt}" =~ ^[0-9]$ ]] || quoted="\"${crate_opt}\""
  NATIVE_CARGO_CONFIG=(--config "profile.release.package.azp-bridge.opt-level=${quoted}"
    --config "profile.bench.package.azp-bridge.opt-level=${quoted}")
  echo "${crate_opt} (dependencies ${base_opt})" >"${RESULTS}/native-opt-level"
  log "native micro-benchmark (bench/native, criterion, CPU time, azp-bridge at opt-level ${crate_opt})"
  rm -rf "${BENCH_DIR}/native/target/criterion"
  (cd "${BENCH_DIR}/native" && cargo bench --quiet "${NATIVE_CARGO_CONFIG[@]}" --bench decide --bench scale -- "${NATIVE_ARGS[@]}") >"${WORK}/native.log" 2>&1 ||
    { cat "${WORK}/native.log" >&2; die "native benchmark failed"; }
  python3 - "${BENCH_DIR}/native/target/criterion" >"${RESULTS}/native.csv" <<'EOF'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
print("benchmark,median_ns,low_ns,high_ns")
for f in sorted(root.glob("**/new/estimates.json")):
    name = "/".join(f.relative_to(root).parts[:-2])
    if name.startswith("report"):
        continue
    m = json.load(open(f))["median"]
    ci = m["confidence_interval"]
    print(f"{name},{m['point_estimate']:.1f},{ci['lower_bound']:.1f},{ci['upper_bound']:.1f}")
EOF
  run_in_v8
}

# The same decision inside V8 (Node's, the engine Envoy embeds), against the
# same loop natively: what running as wasm costs by itself, apart from Envoy's
# host calls. Skipped without node.
run_in_v8() {
  rm -f "${RESULTS}/v8.csv" "${RESULTS}/v8-memory.csv"
  if ! command -v node >/dev/null; then
    log "no node: the decision-in-V8 figure is skipped"
    return 0
  fi
  log "the decision natively and in V8 (bench/native decide_loop)"
  local native_dir="${BENCH_DIR}/native" i
  (cd "${native_dir}" && cargo build --quiet --release "${NATIVE_CARGO_CONFIG[@]}" --bin decide_loop &&
    cargo build --quiet --release "${NATIVE_CARGO_CONFIG[@]}" --bin decide_loop --target wasm32-wasip1) >"${WORK}/decide_loop.log" 2>&1 ||
    { cat "${WORK}/decide_loop.log" >&2; die "decide_loop did not build"; }
  local loop_wasm="${native_dir}/target/wasm32-wasip1/release/decide_loop.wasm"
  if command -v wasm-opt >/dev/null; then # as the shipped module is
    "${ROOT}/scripts/wasm-opt.sh" "${loop_wasm}" "${WORK}/decide_loop.wasm"
    loop_wasm="${WORK}/decide_loop.wasm"
  fi
  : >"${WORK}/v8.txt"
  for i in $(seq 1 "${V8_REPEATS}"); do
    "${native_dir}/target/release/decide_loop" "${V8_ITERATIONS}" | sed 's/^/native,/' >>"${WORK}/v8.txt"
    node --no-liftoff --no-warnings "${native_dir}/wasi.mjs" \
      "${loop_wasm}" "${V8_ITERATIONS}" | sed 's/^/v8,/' >>"${WORK}/v8.txt"
  done
  python3 - "${WORK}/v8.txt" "${RESULTS}/v8.csv" "${RESULTS}/v8-memory.csv" <<'EOF'
import statistics, sys
runs, memory = {}, {}
for line in open(sys.argv[1]):
    where, name, value = line.strip().split(",")
    (memory if name.startswith("memory/") else runs).setdefault(name, {}).setdefault(where, []).append(float(value))
with open(sys.argv[2], "w") as out:
    print("benchmark,native_ns,v8_wasm_ns", file=out)
    for name, r in runs.items():
        print(f"{name},{statistics.median(r['native']):.1f},{statistics.median(r['v8']):.1f}", file=out)
with open(sys.argv[3], "w") as out:
    print("measure,native_kib,v8_wasm_kib", file=out)
    for name, r in memory.items():
        native = f"{statistics.median(r['native']):.0f}" if "native" in r else ""
        print(f"{name},{native},{statistics.median(r['v8']):.0f}", file=out)
EOF
}

environment() {
  local wrk_version
  wrk_version="$(wrk -v 2>&1 | head -n 1 || true)"
  python3 - "${RESULTS}/environment.json" <<EOF
import json, sys
json.dump({
  "nproc": "$(nproc)",
  "cpu": """$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')""",
  "kernel": "$(uname -r)",
  "memory": "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)",
  "loadavg_at_start": "$(cut -d' ' -f1-3 /proc/loadavg)",
  "envoy": """$("${ENVOY_BIN}" --version | grep -o 'version: .*' | head -n 1)""",
  "rustc": "$(rustc --version)",
  "wrk": """${wrk_version}""",
  "commit": "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ' + uncommitted changes to src/Cargo')",
  "module": "${WASM}",
  "azp_bridge_wasm_bytes": $(stat -c %s "${WASM}"),
  "reference": "$(git rev-parse --short=7 "${REFERENCE}")",
  "reference_wasm_bytes": $(stat -c %s "${REFERENCE_WASM}"),
  "steps": [$(for name in "${STEP_NAMES[@]+"${STEP_NAMES[@]}"}"; do
    printf '{"name": "%s", "commit": "%s", "wasm_bytes": %s}, ' "${name}" \
      "$(git rev-parse --short=7 "${STEP_COMMIT[${name}]}")" "$(stat -c %s "${STEP_WASM[${name}]}")"
  done)],
  "buffer_filter_wasm_bytes": $(stat -c %s "${BUFFER_WASM}"),
  "buffer_filter_headers_wasm_bytes": $(stat -c %s "${BUFFER_HEADERS_WASM}"),
  "buffer_filter_both_wasm_bytes": $(stat -c %s "${BUFFER_BOTH_WASM}"),
  "token_response_bytes": $(stat -c %s "${BENCH_DIR}/fixtures/token-response.json"),
  "rounds": ${ROUNDS}, "seconds": ${SECONDS_PER_RUN}, "connections": ${CONNECTIONS},
  "warmup_seconds": ${WARMUP}, "rss_repeats": ${RSS_REPEATS}, "quick": "${BENCH_QUICK:-0}" == "1",
  "pinned": "${PIN}" == "1", "only": "${BENCH_ONLY:-}",
  "started": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
}, open(sys.argv[1], "w"), indent=1)
EOF
}

# Keycloak's own CPU per refresh, in the same run (bench/keycloak-cpu.sh), for
# issue 27's goal 1; BENCH_SKIP_KEYCLOAK=1 skips it. In the background so that
# a signal reaches cleanup, which gives it time to stop Keycloak.
run_keycloak() {
  rm -f "${RESULTS}/keycloak-cpu.json"
  if [ "${BENCH_SKIP_KEYCLOAK:-0}" = 1 ]; then
    log "Keycloak's CPU per refresh skipped (BENCH_SKIP_KEYCLOAK=1)"
    return 0
  fi
  log "Keycloak's own CPU per refresh (bench/keycloak-cpu.sh)"
  "${BENCH_DIR}/keycloak-cpu.sh" "${RESULTS}/keycloak-cpu.json" &
  KEYCLOAK_STEP_PID=$!
  wait "${KEYCLOAK_STEP_PID}" || die "bench/keycloak-cpu.sh failed"
  KEYCLOAK_STEP_PID=""
}

# --- main ----------------------------------------------------------------------------

main() {
  ensure_wrk
  ensure_setup
  ensure_matplotlib
  build
  mkdir -p "${RESULTS}"
  environment
  run_native
  verify
  run_keycloak
  start_envoy upstream upstream 1 0 upstream
  local upstream_pid="${ENVOY_PID}" upstream_port="${ENVOY_PORT}"
  # The upstream answers the token endpoint with the Keycloak-shaped fixture.
  curl -sf -o "${WORK}/upstream-answer" -H 'Host: 127.0.0.1' -d '' \
    "http://127.0.0.1:${upstream_port}/realms/demo/protocol/openid-connect/token" &&
    cmp -s "${WORK}/upstream-answer" "${BENCH_DIR}/fixtures/token-response.json" ||
    die "the upstream does not answer the token endpoint with fixtures/token-response.json"
  run_rounds "${upstream_port}"
  run_rss "${upstream_port}"
  stop "${upstream_pid}"
  local python=python3
  "${VENV}/bin/python" -c 'import matplotlib' 2>/dev/null && python="${VENV}/bin/python"
  "${python}" "${BENCH_DIR}/report.py" "${RESULTS}" "${REPORT}"
  log "wrote ${REPORT#"${ROOT}/"} and ${RESULTS#"${ROOT}/"}/"
}

main "$@"
