#!/usr/bin/env bash
# Local, throw-away Keycloak for azp-bridge development and integration tests.
#
#   scripts/keycloak.sh install   download + unzip the distribution into .cache/ (idempotent)
#   scripts/keycloak.sh start     install if needed, start in dev mode in the background,
#                                 wait until ready, apply admin-API setup; returns only
#                                 when the server is fully usable
#   scripts/keycloak.sh stop      stop the server started by `start` (idempotent)
#   scripts/keycloak.sh status    exit 0 when the pidfile's process is alive
#   scripts/keycloak.sh configure the admin-API set-up alone, for a Keycloak started
#                                 elsewhere (docker compose) on KEYCLOAK_PORT
#
# Environment (all optional):
#   KEYCLOAK_VERSION          distribution version                      (26.7.3)
#   KEYCLOAK_CACHE_DIR        where the zip / unzipped dist live        (<repo>/.cache)
#   KEYCLOAK_PORT             HTTP port on 127.0.0.1                    (18080)
#   KEYCLOAK_MGMT_PORT        management (health) port on 127.0.0.1     (19000)
#   KEYCLOAK_HOSTNAME         full URL Keycloak treats as its own; every token's `iss`
#                             is <this>/realms/demo whatever Host a request carries
#                                                                       (http://127.0.0.1:$KEYCLOAK_PORT)
#   KEYCLOAK_LOG              server log file                           (<cache>/keycloak.log)
#   KEYCLOAK_PIDFILE          pid file                                  (<cache>/keycloak.pid)
#   KEYCLOAK_START_TIMEOUT    seconds to wait for readiness             (180)
#   KEYCLOAK_STOP_TIMEOUT     seconds between TERM and KILL             (30)
#   KEYCLOAK_REALM_FILE       realm to import                           (<repo>/keycloak/demo-realm.json)
#   KC_BOOTSTRAP_ADMIN_USERNAME / KC_BOOTSTRAP_ADMIN_PASSWORD  master admin (admin / admin)
#   JAVA_HOME                 JDK used by kc.sh (else `java` on PATH; 17+: 26.4.7, 26.5.6, 26.7.3 run on 17)
#
# DEV/TEST ONLY: fixed demo credentials, in-memory database, plain HTTP on loopback.
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.7.3}"
KEYCLOAK_CACHE_DIR="${KEYCLOAK_CACHE_DIR:-${ROOT_DIR}/.cache}"
KEYCLOAK_HOME="${KEYCLOAK_CACHE_DIR}/keycloak-${KEYCLOAK_VERSION}"
KEYCLOAK_ZIP="${KEYCLOAK_CACHE_DIR}/keycloak-quarkus-dist-${KEYCLOAK_VERSION}.zip"
KEYCLOAK_PORT="${KEYCLOAK_PORT:-18080}"
KEYCLOAK_MGMT_PORT="${KEYCLOAK_MGMT_PORT:-19000}"
KEYCLOAK_HOSTNAME="${KEYCLOAK_HOSTNAME:-http://127.0.0.1:${KEYCLOAK_PORT}}"
KEYCLOAK_LOG="${KEYCLOAK_LOG:-${KEYCLOAK_CACHE_DIR}/keycloak.log}"
KEYCLOAK_PIDFILE="${KEYCLOAK_PIDFILE:-${KEYCLOAK_CACHE_DIR}/keycloak.pid}"
KEYCLOAK_START_TIMEOUT="${KEYCLOAK_START_TIMEOUT:-180}"
KEYCLOAK_STOP_TIMEOUT="${KEYCLOAK_STOP_TIMEOUT:-30}"
KEYCLOAK_REALM_FILE="${KEYCLOAK_REALM_FILE:-${ROOT_DIR}/keycloak/demo-realm.json}"
export KC_BOOTSTRAP_ADMIN_USERNAME="${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}"
export KC_BOOTSTRAP_ADMIN_PASSWORD="${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin}"

REALM="demo"
IMPERSONATOR_CLIENT="spring-boot-admin-client"
LOCAL_URL="http://127.0.0.1:${KEYCLOAK_PORT}"

log() { printf '[keycloak.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || die "required command not found: $c"
  done
}

# ---------------------------------------------------------------------------
# install
# ---------------------------------------------------------------------------
cmd_install() {
  if [[ -x "${KEYCLOAK_HOME}/bin/kc.sh" ]]; then
    log "Keycloak ${KEYCLOAK_VERSION} already installed at ${KEYCLOAK_HOME}"
    return 0
  fi
  need unzip
  mkdir -p "${KEYCLOAK_CACHE_DIR}"
  if [[ ! -s "${KEYCLOAK_ZIP}" ]]; then
    need mvn
    log "downloading org.keycloak:keycloak-quarkus-dist:${KEYCLOAK_VERSION}:zip (Maven)"
    mvn -B -q dependency:copy \
      "-Dartifact=org.keycloak:keycloak-quarkus-dist:${KEYCLOAK_VERSION}:zip" \
      "-DoutputDirectory=${KEYCLOAK_CACHE_DIR}"
    [[ -s "${KEYCLOAK_ZIP}" ]] || die "download did not produce ${KEYCLOAK_ZIP}"
  fi
  log "unzipping ${KEYCLOAK_ZIP}"
  local tmp="${KEYCLOAK_CACHE_DIR}/.unzip.$$"
  rm -rf "${tmp}"
  mkdir -p "${tmp}"
  if ! unzip -q "${KEYCLOAK_ZIP}" -d "${tmp}"; then
    rm -rf "${tmp}"
    die "unzip failed (corrupt download? delete ${KEYCLOAK_ZIP} and retry)"
  fi
  [[ -x "${tmp}/keycloak-${KEYCLOAK_VERSION}/bin/kc.sh" ]] || { rm -rf "${tmp}"; die "unexpected zip layout"; }
  rm -rf "${KEYCLOAK_HOME}"
  mv "${tmp}/keycloak-${KEYCLOAK_VERSION}" "${KEYCLOAK_HOME}"
  rm -rf "${tmp}"
  log "installed Keycloak ${KEYCLOAK_VERSION} at ${KEYCLOAK_HOME}"
}

# ---------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------
read_pid() {
  [[ -f "${KEYCLOAK_PIDFILE}" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"${KEYCLOAK_PIDFILE}")"
  [[ -n "${pid}" ]] || return 1
  printf '%s' "${pid}"
}

alive() { kill -0 "$1" 2>/dev/null; }

# true when something accepts TCP connections on 127.0.0.1:$1
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" 2>/dev/null || true; }

# ---------------------------------------------------------------------------
# admin-API setup (things a realm import cannot express)
# ---------------------------------------------------------------------------
admin_token() {
  curl -sf --max-time 20 \
    --data-urlencode grant_type=password \
    --data-urlencode client_id=admin-cli \
    --data-urlencode "username=${KC_BOOTSTRAP_ADMIN_USERNAME}" \
    --data-urlencode "password=${KC_BOOTSTRAP_ADMIN_PASSWORD}" \
    "${LOCAL_URL}/realms/master/protocol/openid-connect/token" | jq -er .access_token
}

# api METHOD PATH [JSON-BODY]  -> prints response body; fails on HTTP >= 300
api() {
  local method="$1" path="$2" body="${3:-}" out code
  out="$(mktemp)"
  if [[ -n "${body}" ]]; then
    code="$(curl -s --max-time 30 -o "${out}" -w '%{http_code}' -X "${method}" \
      -H "Authorization: Bearer ${ADMIN_TOKEN}" -H 'Content-Type: application/json' \
      --data-binary "${body}" "${LOCAL_URL}/admin/realms/${REALM}${path}")" || code=000
  else
    code="$(curl -s --max-time 30 -o "${out}" -w '%{http_code}' -X "${method}" \
      -H "Authorization: Bearer ${ADMIN_TOKEN}" "${LOCAL_URL}/admin/realms/${REALM}${path}")" || code=000
  fi
  if [[ "${code}" -lt 200 || "${code}" -ge 300 ]]; then
    log "admin API ${method} ${path} -> HTTP ${code}: $(head -c 500 "${out}")"
    rm -f "${out}"
    return 1
  fi
  cat "${out}"
  rm -f "${out}"
}

client_uuid() { api GET "/clients?clientId=$1" | jq -er '.[0].id'; }

# Fine-grained admin permissions (v1): Users -> Permissions -> "impersonate", decided by a
# client policy naming spring-boot-admin-client. This is what lets that client do "naked
# impersonation" (token exchange V1 with requested_subject and no audience). A realm
# import cannot express it (the permission's resources/scopes are generated when users
# permissions are switched on), so it is done here.
setup_impersonation() {
  # Every step ends in `|| return 1`: this runs as `setup_impersonation || fail_start`,
  # where bash ignores `set -e` inside the function.
  local perms imp_perm_id rm_id sba_id policy_id perm resources scopes updated authz
  perms="$(api PUT /users-management-permissions '{"enabled":true}')" || return 1
  imp_perm_id="$(jq -er '.scopePermissions.impersonate' <<<"${perms}")" || return 1
  rm_id="$(client_uuid realm-management)" || return 1
  sba_id="$(client_uuid "${IMPERSONATOR_CLIENT}")" || return 1
  authz="/clients/${rm_id}/authz/resource-server"

  policy_id="$(api GET "${authz}/policy?name=${IMPERSONATOR_CLIENT}-may-impersonate&exact=true" \
    | jq -r '.[0].id // empty')" || return 1
  if [[ -z "${policy_id}" ]]; then
    policy_id="$(api POST "${authz}/policy/client" "$(jq -nc --arg c "${sba_id}" \
      --arg n "${IMPERSONATOR_CLIENT}-may-impersonate" \
      '{name:$n, description:"DEMO: lets this client impersonate users (token exchange V1)",
        clients:[$c], logic:"POSITIVE", decisionStrategy:"UNANIMOUS"}')" | jq -er .id)" || return 1
  fi

  # PUT needs the full representation, including the permission's resource and scope,
  # otherwise they would be dropped.
  perm="$(api GET "${authz}/permission/scope/${imp_perm_id}")" || return 1
  resources="$(api GET "${authz}/policy/${imp_perm_id}/resources" | jq -ec '[.[]._id]')" || return 1
  scopes="$(api GET "${authz}/policy/${imp_perm_id}/scopes" | jq -ec '[.[].id]')" || return 1
  updated="$(jq -ec --arg p "${policy_id}" --argjson r "${resources}" --argjson s "${scopes}" \
    '. + {resources:$r, scopes:$s, policies:[$p], decisionStrategy:"UNANIMOUS"}' <<<"${perm}")" || return 1
  api PUT "${authz}/permission/scope/${imp_perm_id}" "${updated}" >/dev/null || return 1
  log "impersonate permission ${imp_perm_id} -> client policy ${policy_id} (${IMPERSONATOR_CLIENT})"
}

# ---------------------------------------------------------------------------
# start / stop
# ---------------------------------------------------------------------------
fail_start() {
  log "ERROR: $*"
  if [[ -f "${KEYCLOAK_LOG}" ]]; then
    log "---- last 60 lines of ${KEYCLOAK_LOG} ----"
    tail -n 60 "${KEYCLOAK_LOG}" >&2 || true
    log "---- end of log ----"
  fi
  cmd_stop || true
  exit 1
}

cmd_start() {
  need curl jq
  [[ -f "${KEYCLOAK_REALM_FILE}" ]] || die "realm file not found: ${KEYCLOAK_REALM_FILE}"
  jq -e . "${KEYCLOAK_REALM_FILE}" >/dev/null || die "realm file is not valid JSON: ${KEYCLOAK_REALM_FILE}"

  local pid
  if pid="$(read_pid)" && alive "${pid}"; then
    die "Keycloak already running (pid ${pid}, pidfile ${KEYCLOAK_PIDFILE}); run '$0 stop' first"
  fi
  rm -f "${KEYCLOAK_PIDFILE}"
  local p
  for p in "${KEYCLOAK_PORT}" "${KEYCLOAK_MGMT_PORT}"; do
    port_busy "${p}" && die "port ${p} on 127.0.0.1 is already in use"
  done

  cmd_install

  # Fresh state every run: in-memory H2 (--db=dev-mem) and a wiped data dir holding
  # only the realm to import.
  rm -rf "${KEYCLOAK_HOME}/data"
  mkdir -p "${KEYCLOAK_HOME}/data/import" "$(dirname "${KEYCLOAK_LOG}")" "$(dirname "${KEYCLOAK_PIDFILE}")"
  cp "${KEYCLOAK_REALM_FILE}" "${KEYCLOAK_HOME}/data/import/${REALM}-realm.json"
  # The tenant realms (one client id per realm, each with its own secret).
  local tenant
  for tenant in "${ROOT_DIR}"/keycloak/tenant-*-realm.json; do
    [[ -f "${tenant}" ]] && cp "${tenant}" "${KEYCLOAK_HOME}/data/import/"
  done

  local args=(
    start-dev
    --db=dev-mem
    --http-host=127.0.0.1
    "--http-port=${KEYCLOAK_PORT}"
    "--http-management-port=${KEYCLOAK_MGMT_PORT}"
    --health-enabled=true
    # A full URL fixes scheme/host/port for all front- and back-channel URLs, so `iss`
    # is always ${KEYCLOAK_HOSTNAME}/realms/demo and a token obtained through one Host
    # header (direct, or via Envoy) refreshes through any other.
    "--hostname=${KEYCLOAK_HOSTNAME}"
    --hostname-strict=true
    --hostname-backchannel-dynamic=false
    --features=token-exchange,admin-fine-grained-authz:v1
    --import-realm
    --log-console-color=false
  )

  log "starting Keycloak ${KEYCLOAK_VERSION}: ${LOCAL_URL} (hostname ${KEYCLOAK_HOSTNAME}, mgmt :${KEYCLOAK_MGMT_PORT}), log ${KEYCLOAK_LOG}"
  : >"${KEYCLOAK_LOG}"
  # setsid: own process group, so `stop` can also reap kc.sh's java child by group id.
  (cd "${KEYCLOAK_HOME}" && exec setsid bin/kc.sh "${args[@]}" </dev/null >>"${KEYCLOAK_LOG}" 2>&1) &
  pid=$!
  echo "${pid}" >"${KEYCLOAK_PIDFILE}"

  # Interrupted while waiting (Ctrl-C, harness timeout): do not leave a server behind.
  trap 'printf "\n" >&2; fail_start "interrupted"' INT TERM

  local t0=${SECONDS} deadline=$((SECONDS + KEYCLOAK_START_TIMEOUT))
  printf '[keycloak.sh] waiting for readiness ' >&2
  while :; do
    if ! alive "${pid}"; then
      printf '\n' >&2
      fail_start "Keycloak exited during startup"
    fi
    if [[ "$(http_code "http://127.0.0.1:${KEYCLOAK_MGMT_PORT}/health/ready")" == 200 ]] &&
       [[ "$(http_code "${LOCAL_URL}/realms/${REALM}/.well-known/openid-configuration")" == 200 ]]; then
      break
    fi
    if (( SECONDS >= deadline )); then
      printf '\n' >&2
      fail_start "not ready after ${KEYCLOAK_START_TIMEOUT}s"
    fi
    printf '.' >&2
    sleep 1
  done
  printf ' ready after %ss\n' "$((SECONDS - t0))" >&2

  ADMIN_TOKEN="$(admin_token)" || fail_start "could not get a master-realm admin token"
  setup_impersonation || fail_start "admin-API setup failed"
  trap - INT TERM
  log "Keycloak ready in $((SECONDS - t0))s: ${LOCAL_URL}/realms/${REALM} (pid ${pid})"
}

cmd_stop() {
  local pid
  if ! pid="$(read_pid)"; then
    log "not running (no pidfile ${KEYCLOAK_PIDFILE})"
    return 0
  fi
  if alive "${pid}"; then
    log "stopping Keycloak (pid ${pid})"
    kill -TERM "${pid}" 2>/dev/null || true
    local i
    for ((i = 0; i < KEYCLOAK_STOP_TIMEOUT * 10; i++)); do
      alive "${pid}" || break
      sleep 0.1
    done
    if alive "${pid}"; then
      log "still alive after ${KEYCLOAK_STOP_TIMEOUT}s, sending KILL"
      kill -KILL "${pid}" 2>/dev/null || true
    fi
  else
    log "pid ${pid} from ${KEYCLOAK_PIDFILE} is not running"
  fi
  # Anything left in the process group `start` created (kc.sh's java child).
  kill -KILL -- "-${pid}" 2>/dev/null || true
  rm -f "${KEYCLOAK_PIDFILE}"
}

# Admin-API set-up of an already running Keycloak (e.g. the docker-compose one).
cmd_configure() {
  need curl jq
  ADMIN_TOKEN="$(admin_token)" || die "no admin token from ${LOCAL_URL} (is Keycloak up, admin ${KC_BOOTSTRAP_ADMIN_USERNAME}?)"
  setup_impersonation || die "impersonation set-up failed"
}

cmd_status() {
  local pid
  if pid="$(read_pid)" && alive "${pid}"; then
    log "running (pid ${pid}) at ${LOCAL_URL}, hostname ${KEYCLOAK_HOSTNAME}"
    return 0
  fi
  log "not running"
  return 1
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  configure) cmd_configure ;;
  *)
    echo "usage: $0 {install|start|stop|status|configure}" >&2
    exit 2
    ;;
esac
