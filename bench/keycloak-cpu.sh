#!/usr/bin/env bash
# Keycloak's own CPU per refresh, for the same bench run (issue 27, goal 1:
# what a signed target adds in Envoy, as a share of what Keycloak spends).
#
#   bench/keycloak-cpu.sh OUT.json
#
# Starts the project's Keycloak (scripts/keycloak.sh: the Maven dist in dev
# mode, in-memory database, the demo realm, on free loopback ports) and, for
# the demo realm's confidential client (spring-boot-admin-client, user
# alice, scope openid) authenticated by client_secret_post and by each
# method of BENCH_KEYCLOAK_METHODS (default "hs256 es256 eddsa": its
# client_secret_jwt and private_key_jwt (P-256, Ed25519) clients, a fresh
# client assertion per refresh, minted by joserfc in the project's .venv),
# a refresh token chain on its own connection: BENCH_KEYCLOAK_WARMUP (2000)
# refreshes each, then BENCH_KEYCLOAK_REFRESHES (1000) each, sequential,
# each with the refresh token the one before returned, in
# BENCH_KEYCLOAK_ROUNDS (5) turns the methods take in rotation, so that
# whatever drifts during the run (the JVM, the shared machine) falls on
# every method alike. Around each turn it reads the CPU (utime+stime) of
# Keycloak's process group (kc.sh and its JVM) from /proc (bench/tools.py
# keycloak-refresh). A signed target's refresh is measured by its own
# method because Keycloak's work for it includes checking its assertion.
# OUT.json holds the client_secret_post figures at its top and each
# method's under
# "methods". Keycloak is stopped when this ends, fails or is
# interrupted. The first start unzips (or downloads) the distribution into
# .cache/; KEYCLOAK_VERSION selects another one.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "${BENCH_DIR}")"
OUT="${1:?usage: bench/keycloak-cpu.sh OUT.json}"
WARMUP="${BENCH_KEYCLOAK_WARMUP:-2000}"
REFRESHES="${BENCH_KEYCLOAK_REFRESHES:-1000}"
ROUNDS="${BENCH_KEYCLOAK_ROUNDS:-5}"

log() { printf '[bench keycloak %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# What scripts/keycloak.sh needs (a JDK 17+; mvn only for the first download).
if [ -n "${JAVA_HOME:-}" ]; then [ -x "${JAVA_HOME}/bin/java" ] || die "no java in JAVA_HOME=${JAVA_HOME}"
else command -v java >/dev/null || die "no java (a JDK 17+ runs Keycloak); set JAVA_HOME, or BENCH_SKIP_KEYCLOAK=1"; fi
for c in curl jq unzip; do command -v "${c}" >/dev/null || die "no ${c} (scripts/keycloak.sh needs it); or BENCH_SKIP_KEYCLOAK=1"; done

WORK="$(mktemp -d /tmp/azp-bench-keycloak.XXXXXX)"
KEYCLOAK_PORT="$(python3 "${BENCH_DIR}/tools.py" free-port)"
KEYCLOAK_MGMT_PORT="$(python3 "${BENCH_DIR}/tools.py" free-port)"
export KEYCLOAK_PORT KEYCLOAK_MGMT_PORT
export KEYCLOAK_LOG="${WORK}/keycloak.log" KEYCLOAK_PIDFILE="${WORK}/keycloak.pid"
export KEYCLOAK_START_TIMEOUT="${KEYCLOAK_START_TIMEOUT:-300}"
START_PID=""

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # The start script, if still waiting, then the server (its pidfile).
  if [ -n "${START_PID}" ] && kill -0 "${START_PID}" 2>/dev/null; then
    kill -TERM "${START_PID}" 2>/dev/null || true
    wait "${START_PID}" 2>/dev/null || true
  fi
  "${ROOT}/scripts/keycloak.sh" stop >/dev/null 2>&1 || true
  if [ "${status}" -ne 0 ]; then
    log "exit status ${status}; Keycloak's log kept in ${WORK}"
  else
    rm -rf "${WORK}"
  fi
  exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting Keycloak on 127.0.0.1:${KEYCLOAK_PORT} (a minute or more; the first time it also installs)"
# In the background, so that a signal reaches the trap while it waits.
"${ROOT}/scripts/keycloak.sh" start 2>"${WORK}/start.log" &
START_PID=$!
wait "${START_PID}" || { tail -n 20 "${WORK}/start.log" >&2; die "Keycloak did not start"; }
START_PID=""
PGID="$(tr -dc '0-9' <"${KEYCLOAK_PIDFILE}")"
[ -n "${PGID}" ] && kill -0 "${PGID}" 2>/dev/null || die "no Keycloak process"
SIGNED="${BENCH_KEYCLOAK_METHODS-hs256 es256 eddsa}"
METHODS="secret ${SIGNED}"
python="python3"
# The signed methods mint with joserfc (scripts/setup.sh puts it in .venv).
[ -z "${SIGNED//[[:space:]]/}" ] || python="${ROOT}/.venv/bin/python"
log "${METHODS}: ${WARMUP} refreshes of warm-up each, then ${REFRESHES} each measured in ${ROUNDS} turns, the methods in rotation"
timeout 1800 "${python}" "${BENCH_DIR}/tools.py" keycloak-refresh "${KEYCLOAK_PORT}" "${PGID}" "${WARMUP}" "${REFRESHES}" \
  "${ROUNDS}" "${WORK}" ${METHODS} >/dev/null || die "the refreshes failed"
# Which Keycloak: its start-up line names the version.
VERSION="$(grep -o 'Keycloak [0-9][0-9.]* on JVM' "${KEYCLOAK_LOG}" | head -n 1 | cut -d' ' -f2)"
python3 - "${WORK}" "${OUT}" "${VERSION:-unknown}" "$(nproc)" ${METHODS} <<'PY'
import json, sys
work, out, version, nproc, methods = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:]
each = {m: json.load(open(f"{work}/result-{m}.json")) for m in methods}
result = dict(each["secret"])
result.update({"keycloak": version, "mode": "start-dev, --db=dev-mem, 127.0.0.1", "nproc": nproc, "methods": each})
json.dump(result, open(out, "w"), indent=1)
PY
python3 - "${OUT}" <<'PY' | while read -r line; do log "Keycloak ${VERSION:-?}, ${line}"; done
import json, sys
for method, r in json.load(open(sys.argv[1]))["methods"].items():
    print("%s: %s us of CPU per refresh (%s without its idle CPU; by turn: %s), %s us wall" % (method,
          r["cpu_us_per_refresh"], r["cpu_us_per_refresh_net"], " ".join(str(b) for b in r["rounds_cpu_us_per_refresh"]),
          r["wall_us_per_refresh"]))
PY
