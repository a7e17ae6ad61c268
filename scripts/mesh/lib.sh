# Shared by scripts/mesh/envoy-gateway.sh and scripts/mesh/istio.sh (sourced):
# processes started in their own process group and stopped on exit, the local
# registry with the pushed image, Keycloak, and the checks every control plane
# gets. Everything listens on 127.0.0.1 only.

MESH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
REALM=demo
ADMIN_CLIENT=spring-boot-admin-client
MOBILE_CLIENT=mobile-app-client
# The demo realm's secret of spring-boot-admin-client (keycloak/demo-realm.json).
ADMIN_CLIENT_SECRET_VALUE="admin-client-secret-CHANGE-ME"
ENVOY_BIN_REAL=""
STARTED_PGIDS=()
KEYCLOAK_ENV=()
FAILURES=0

say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; FAILURES=$((FAILURES + 1)); }
die() { printf 'test-mesh: %s\n' "$*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start NAME LOG CMD...: CMD in its own session (process group), remembered
# for stop_all. Prints nothing; sets LAST_PID.
start_bg() {
  local name="$1" log="$2"; shift 2
  setsid "$@" > "${log}" 2>&1 < /dev/null &
  LAST_PID=$!
  STARTED_PGIDS+=("${LAST_PID}:${name}")
}

stop_pgid() {
  local pgid="$1" i
  kill -TERM -- "-${pgid}" 2>/dev/null || return 0
  for i in $(seq 1 50); do kill -0 -- "-${pgid}" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL -- "-${pgid}" 2>/dev/null || true
}

stop_all() {
  local entry
  for ((i = ${#STARTED_PGIDS[@]} - 1; i >= 0; i--)); do
    entry="${STARTED_PGIDS[$i]}"
    stop_pgid "${entry%%:*}"
  done
  STARTED_PGIDS=()
  if [ "${#KEYCLOAK_ENV[@]}" -gt 0 ]; then
    env "${KEYCLOAK_ENV[@]}" "${MESH_ROOT}/scripts/keycloak.sh" stop >/dev/null 2>&1 || true
  fi
}

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.2 s.
wait_for() {
  local seconds="$1" what="$2" deadline; shift 2
  deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "${deadline}" ] || { echo "test-mesh: timed out after ${seconds}s waiting for ${what}" >&2; return 1; }
    sleep 0.2
  done
}

envoy_binary() {
  ENVOY_BIN_REAL="$("${MESH_ROOT}/.venv/bin/python" -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')"
  [ -x "${ENVOY_BIN_REAL}" ] || die "no Envoy in .venv: run scripts/setup.sh"
  ENVOY_VERSION_REAL="$("${ENVOY_BIN_REAL}" --version | grep -o '[0-9]\+\.[0-9]\+\.[0-9]\+' | head -n 1)"
}

# The local registry (Debian's docker-registry, as tests/image.rs runs it).
start_registry() {
  local dir="$1"
  REGISTRY_PORT="${REGISTRY_PORT:-$(free_port)}"
  mkdir -p "${dir}"
  cat > "${dir}/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${dir}/storage
http:
  addr: 127.0.0.1:${REGISTRY_PORT}
EOF
  start_bg registry "${dir}/registry.log" docker-registry serve "${dir}/config.yml"
  REGISTRY_PID="${LAST_PID}"
  wait_for 20 "the registry" curl -sf "http://127.0.0.1:${REGISTRY_PORT}/v2/"
  REGISTRY="127.0.0.1:${REGISTRY_PORT}"
}

stop_registry() { stop_pgid "${REGISTRY_PID}"; }

# make image's script, PUSH=1, to the local registry: sets DIGEST.
push_image() {
  local tag="$1" out
  out="$(IMAGE="${REGISTRY}/azp-bridge:${tag}" PUSH=1 TLS_VERIFY=0 "${MESH_ROOT}/deploy/oci/build-image.sh")"
  echo "${out}" | sed 's/^/   /'
  DIGEST="$(sed -n 's/.*image digest[^0-9a-f]*\([0-9a-f]\{64\}\).*/\1/p' <<<"${out}" | tail -n 1)"
  [ -n "${DIGEST}" ] || DIGEST="$(skopeo inspect --tls-verify=false "docker://${REGISTRY}/azp-bridge:${tag}" | jq -r .Digest | sed 's/^sha256://')"
  [ "${#DIGEST}" = 64 ] || die "no image digest for ${REGISTRY}/azp-bridge:${tag}"
}

# Keycloak (scripts/keycloak.sh) whose own URL is the gateway's: the iss of
# every token is the gateway's URL, as operators deploy it behind a proxy.
start_keycloak() {
  local dir="$1" hostname="$2"
  KEYCLOAK_PORT="${KEYCLOAK_PORT:-$(free_port)}"
  KEYCLOAK_ENV=(KEYCLOAK_PORT="${KEYCLOAK_PORT}" KEYCLOAK_MGMT_PORT="$(free_port)"
    KEYCLOAK_HOSTNAME="${hostname}" KEYCLOAK_LOG="${dir}/keycloak.log" KEYCLOAK_PIDFILE="${dir}/keycloak.pid")
  env "${KEYCLOAK_ENV[@]}" "${MESH_ROOT}/scripts/keycloak.sh" start
}

# start_registry_and_keycloak MANIFEST: what both runs start with. The
# local registry, with the module pushed under the tag MANIFEST's image url
# names (TAG, DIGEST); a second image of the same module (another creation
# time, so another digest: OTHER_DIGEST) that nothing pulls before the
# registry goes down; the first image under TAG-closed, a tag not yet in any
# cache. Then the gateway's port (GW_PORT, GW), the recorder
# (RECORDER_PORT) and Keycloak, whose URL is the gateway's.
start_registry_and_keycloak() {
  local manifest="$1"
  say "registry and image"
  start_registry "${WORK}/registry"
  TAG="$(sed -n 's|.*url: \(oci://\)\{0,1\}REGISTRY/azp-bridge:\(.*\)$|\2|p' "${manifest}")"
  [ -n "${TAG}" ] || die "no REGISTRY/azp-bridge:TAG image url in ${manifest}"
  push_image "${TAG}"
  note "pushed ${REGISTRY}/azp-bridge:${TAG}, digest ${DIGEST}"
  SOURCE_DATE_EPOCH=1 push_image "${TAG}-other" > /dev/null
  OTHER_DIGEST="${DIGEST}"
  push_image "${TAG}" > /dev/null
  note "pushed ${REGISTRY}/azp-bridge:${TAG}-other, digest ${OTHER_DIGEST} (the same module)"
  skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://${REGISTRY}/azp-bridge:${TAG}" "docker://${REGISTRY}/azp-bridge:${TAG}-closed"

  GW_PORT="${GW_PORT:-$(free_port)}"
  GW="http://127.0.0.1:${GW_PORT}"
  RECORDER_PORT="$(free_port)"
  start_bg recorder "${WORK}/recorder.log" python3 "${MESH_ROOT}/scripts/mesh/recorder.py" "${RECORDER_PORT}" "${WORK}/recorded.txt"

  say "Keycloak (its URL is the gateway's, ${GW})"
  start_keycloak "${WORK}" "${GW}"
}

# A refresh token of spring-boot-admin-client (azp = the admin client), from
# Keycloak directly.
admin_refresh_token() {
  curl -s --max-time 20 "http://127.0.0.1:${KEYCLOAK_PORT}/realms/${REALM}/protocol/openid-connect/token" \
    -d grant_type=password -d client_id="${ADMIN_CLIENT}" -d client_secret="${ADMIN_CLIENT_SECRET_VALUE}" \
    -d username=bob -d password=bob-password | jq -r .refresh_token
}

# refresh_via URL RT [extra curl args]: prints the HTTP status, the body in ${WORK}/last.json.
refresh_via() {
  local url="$1" rt="$2"; shift 2
  curl -s --max-time 20 -o "${WORK}/last.json" -w '%{http_code}' "$@" \
    "${url}/realms/${REALM}/protocol/openid-connect/token" \
    -d grant_type=refresh_token -d client_id="${MOBILE_CLIENT}" --data-urlencode refresh_token="${rt}"
}

# The article's story through the gateway, and revoke and logout: a
# refresh token of the admin client, refreshed, revoked and logged out by the
# mobile client. Every check is counted in FAILURES.
bridged_checks() {
  local gw="$1" rt status
  rt="$(admin_refresh_token)"; [ -n "${rt}" ] && [ "${rt}" != null ] || { fail "no refresh token from Keycloak"; return; }
  status="$(refresh_via "${gw}" "${rt}")"
  if [ "${status}" = 200 ]; then note "refresh (mobile client, admin client's token): 200, new refresh token azp=$(jwt_claim "$(jq -r .refresh_token "${WORK}/last.json")" azp)"
  else fail "bridged refresh: HTTP ${status}: $(jq -c 'del(.access_token,.refresh_token)' "${WORK}/last.json" 2>/dev/null)"; fi
  local rt2; rt2="$(jq -r '.refresh_token // empty' "${WORK}/last.json")"
  if [ -n "${rt2}" ]; then
    status="$(curl -s --max-time 20 -o "${WORK}/revoke.out" -w '%{http_code}' \
      "${gw}/realms/${REALM}/protocol/openid-connect/revoke" \
      -d client_id="${MOBILE_CLIENT}" --data-urlencode token="${rt2}" -d token_type_hint=refresh_token)"
    [ "${status}" = 200 ] && note "revoke (mobile client): 200" || fail "bridged revoke: HTTP ${status}: $(head -c 300 "${WORK}/revoke.out")"
    status="$(refresh_via "${gw}" "${rt2}")"
    [ "${status}" = 400 ] && note "refresh with the revoked token: 400 ($(jq -r .error_description "${WORK}/last.json"))" \
      || fail "refresh after revoke: HTTP ${status}, expected 400"
  fi
  rt="$(admin_refresh_token)"
  status="$(curl -s --max-time 20 -o "${WORK}/logout.out" -w '%{http_code}' \
    "${gw}/realms/${REALM}/protocol/openid-connect/logout" \
    -d client_id="${MOBILE_CLIENT}" --data-urlencode refresh_token="${rt}")"
  [ "${status}" = 204 ] && note "logout (mobile client): 204" || fail "bridged logout: HTTP ${status}: $(head -c 300 "${WORK}/logout.out")"
}

# A refresh that is not bridged: the status Keycloak gives (400 and
# "Token client and authorized client don't match" with no bridge).
unbridged_status() {
  local gw="$1" rt; shift
  rt="$(admin_refresh_token)"
  refresh_via "${gw}" "${rt}" "$@"
}

jwt_claim() {
  local payload="${1#*.}"; payload="${payload%%.*}"
  payload="$(tr '_-' '/+' <<<"${payload}")"
  while [ $(( ${#payload} % 4 )) != 0 ]; do payload="${payload}="; done
  base64 -d <<<"${payload}" 2>/dev/null | jq -r ".$2"
}

# secret_absent DESCRIPTION FILE...: the client secret's value is in none of them.
secret_absent() {
  local what="$1"; shift
  local hits
  hits="$(grep -l -F -- "${ADMIN_CLIENT_SECRET_VALUE}" "$@" 2>/dev/null || true)"
  if [ -z "${hits}" ]; then note "the secret's value is in no ${what} (${#@} files searched)"
  else fail "the secret's value appears in ${hits}"; fi
}

stats_line() { curl -s --max-time 5 "http://$1/stats?filter=$2" | grep -v ': 0$' | tr '\n' ' '; }

# refresh_loop SECONDS FILE INTERVAL [until-200]: a refresh through ${GW}
# every INTERVAL s for SECONDS, writing "<seconds since the start> <status>"
# lines to FILE. With until-200 it returns 0 at the first 200, 1 if none came.
refresh_loop() {
  local seconds="$1" out="$2" interval="$3" until_ok="${4:-}" t0 now status rt
  rt="$(admin_refresh_token)"
  t0="$(date +%s%N)"; : > "${out}"
  while :; do
    status="$(refresh_via "${GW}" "${rt}")"
    now="$(date +%s%N)"
    awk -v d="$(( (now - t0) / 1000000 ))" -v s="${status}" 'BEGIN { printf "%.2f %s\n", d / 1000, s }' >> "${out}"
    if [ -n "${until_ok}" ] && [ "${status}" = 200 ]; then return 0; fi
    if [ $(( (now - t0) / 1000000000 )) -ge "${seconds}" ]; then [ -z "${until_ok}" ]; return; fi
    [ "${status}" = 400 ] || rt="$(admin_refresh_token)" # a 400 leaves the token unused
    sleep "${interval}"
  done
}
# poll_refresh SECONDS FILE: a refresh every 0.25 s until one is bridged (200).
poll_refresh() { refresh_loop "$1" "$2" 0.25 until-200; }
# The statuses a poll saw, run-length encoded: "400 x12 (from 0.00s), 200 x1 (from 3.10s)".
summary() { awk '{ if ($2 != last) { if (n) printf "%s x%d (from %ss), ", last, n, from; last = $2; n = 0; from = $1 } n++ } END { printf "%s x%d (from %ss)\n", last, n, from }' "$1"; }
# observe SECONDS LABEL NAME: what refreshes get, one every 0.5 s for
# SECONDS (whatever they get), written to ${WORK}/observe.NAME and summed up.
observe() {
  refresh_loop "$1" "${WORK}/observe.$3" 0.5
  note "$2: $(summary "${WORK}/observe.$3")"
}
