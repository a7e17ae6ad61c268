#!/usr/bin/env bash
# `make demo`: the article's story against a real Keycloak and a real Envoy.
#
#   1. spring-boot-admin-client impersonates alice (token exchange V1): tokens with azp=spring-boot-admin-client
#   2. mobile-app-client refreshes them directly at Keycloak: refused (azp mismatch)
#   3. the same refresh through Envoy + azp-bridge: accepted, the secret never leaves the proxy
#   4. the filter's counters
#
# KEEP=1 leaves Keycloak and Envoy running for your own curl experiments
# (stop them with `make demo-stop`). Ports: KEYCLOAK_PORT (18080), ENVOY_PORT
# (10000), ENVOY_ADMIN_PORT (9901).
set -euo pipefail
cd "$(dirname "$0")/.."

KEEP="${KEEP:-0}"
ENVOY_PORT="${ENVOY_PORT:-10000}"
ENVOY_ADMIN_PORT="${ENVOY_ADMIN_PORT:-9901}"
export KEYCLOAK_PORT="${KEYCLOAK_PORT:-18080}"
# Tokens name Envoy, the address clients use, as their issuer.
export KEYCLOAK_HOSTNAME="${KEYCLOAK_HOSTNAME:-http://127.0.0.1:${ENVOY_PORT}}"
RUN_DIR=".cache/demo"
ENVOY_PIDFILE="${RUN_DIR}/envoy.pid"
ENVOY_LOG="${RUN_DIR}/envoy.log"
# Demo-only values, the same as in keycloak/demo-realm.json.
export ADMIN_CLIENT_SECRET="admin-client-secret-CHANGE-ME"
ADMIN_CLIENT="spring-boot-admin-client"
MOBILE_CLIENT="mobile-app-client"
KEYCLOAK="http://127.0.0.1:${KEYCLOAK_PORT}/realms/demo/protocol/openid-connect"
ENVOY="http://127.0.0.1:${ENVOY_PORT}/realms/demo/protocol/openid-connect"

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
say() { printf '  %s\n' "$*"; }
fail() { printf '\n\033[31mDEMO FAILED: %s\033[0m\n' "$*"; exit 1; }

stop_all() {
  if [ -f "${ENVOY_PIDFILE}" ]; then
    kill "$(cat "${ENVOY_PIDFILE}")" 2>/dev/null || true
    rm -f "${ENVOY_PIDFILE}"
  fi
  scripts/keycloak.sh stop >/dev/null 2>&1 || true
}

if [ "${1:-}" = "stop" ]; then
  stop_all
  echo "demo stack stopped"
  exit 0
fi

if [ "${KEEP}" != "1" ]; then
  trap stop_all EXIT
fi
trap 'exit 130' INT TERM

# The payload of a JWS, as JSON (never print the token itself).
claims() {
  local payload
  payload="$(cut -d. -f2 <<<"$1" | tr '_-' '/+')"
  while [ $(( ${#payload} % 4 )) -ne 0 ]; do payload="${payload}="; done
  base64 -d <<<"${payload}"
}

bold "Setting up (first run downloads Envoy and Keycloak; later runs reuse them)"
scripts/setup.sh
scripts/build-wasm.sh
say "azp_bridge.wasm: $(stat -c %s target/wasm32-wasip1/release/azp_bridge.wasm) bytes"
mkdir -p "${RUN_DIR}"
stop_all
scripts/keycloak.sh start

LISTEN_PORT="${ENVOY_PORT}" ADMIN_PORT="${ENVOY_ADMIN_PORT}" UPSTREAM_PORT="${KEYCLOAK_PORT}" \
  scripts/render-envoy.sh > "${RUN_DIR}/envoy.yaml"
.venv/bin/envoy -c "${RUN_DIR}/envoy.yaml" --concurrency 1 --disable-hot-restart \
  --component-log-level wasm:debug --log-path "${ENVOY_LOG}" </dev/null >/dev/null 2>&1 &
echo $! > "${ENVOY_PIDFILE}"
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:${ENVOY_ADMIN_PORT}/ready" >/dev/null 2>&1 && break
  kill -0 "$(cat "${ENVOY_PIDFILE}")" 2>/dev/null || { tail -n 20 "${ENVOY_LOG}"; fail "Envoy exited"; }
  sleep 0.1
done
curl -sf "http://127.0.0.1:${ENVOY_ADMIN_PORT}/ready" >/dev/null || fail "Envoy not ready"
say "Envoy ${ENVOY_PORT} -> Keycloak ${KEYCLOAK_PORT}, azp-bridge loaded (log: ${ENVOY_LOG})"

bold "1. ${ADMIN_CLIENT} impersonates alice (token exchange, as in the article)"
issued="$(curl -s "${KEYCLOAK}/token" \
  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
  -d client_id="${ADMIN_CLIENT}" --data-urlencode client_secret="${ADMIN_CLIENT_SECRET}" \
  -d requested_subject=alice -d scope=openid)"
refresh_token="$(jq -r '.refresh_token // empty' <<<"${issued}")"
[ -n "${refresh_token}" ] || fail "no refresh token from the exchange: $(jq -c 'del(.access_token)' <<<"${issued}")"
say "refresh token claims: $(claims "${refresh_token}" | jq -c '{azp, typ, iss}')"
say "access token user:    $(claims "$(jq -r .access_token <<<"${issued}")" | jq -r .preferred_username)"

bold "2. ${MOBILE_CLIENT} refreshes them directly at Keycloak"
direct_status="$(curl -s -o "${RUN_DIR}/direct.json" -w '%{http_code}' "${KEYCLOAK}/token" \
  -d grant_type=refresh_token -d client_id="${MOBILE_CLIENT}" --data-urlencode refresh_token="${refresh_token}")"
say "HTTP ${direct_status} $(cat "${RUN_DIR}/direct.json")"
[ "${direct_status}" = 400 ] && grep -q "Token client and authorized client don't match" "${RUN_DIR}/direct.json" \
  || fail "expected Keycloak's azp mismatch"

bold "3. The same request through Envoy with azp-bridge"
via_status="$(curl -s -o "${RUN_DIR}/via.json" -w '%{http_code}' "${ENVOY}/token" \
  -d grant_type=refresh_token -d client_id="${MOBILE_CLIENT}" --data-urlencode refresh_token="${refresh_token}")"
[ "${via_status}" = 200 ] || fail "HTTP ${via_status} $(cat "${RUN_DIR}/via.json")"
new_refresh="$(jq -r .refresh_token "${RUN_DIR}/via.json")"
say "HTTP ${via_status}: new tokens for $(claims "$(jq -r .access_token "${RUN_DIR}/via.json")" | jq -r .preferred_username)"
say "old refresh token azp: $(claims "${refresh_token}" | jq -r .azp)"
say "new refresh token azp: $(claims "${new_refresh}" | jq -r .azp)"
say "bridged response keys: $(jq -c 'keys' "${RUN_DIR}/via.json") (no id_token: docs/configuration.md, \"What a bridged refresh gives the client\")"
[ "$(jq 'has("id_token")' "${RUN_DIR}/via.json")" = false ] || fail "the bridged response kept its id_token"
# Envoy writes its log in batches: wait for the decision line.
for _ in $(seq 1 150); do grep -q 'outcome=' "${ENVOY_LOG}" && break; sleep 0.1; done
say "Envoy's log: $(grep -o 'endpoint=token .*outcome=[a-z_:]*' "${ENVOY_LOG}" | tail -n 1)"
if grep -q "${ADMIN_CLIENT_SECRET}" "${RUN_DIR}/via.json" "${ENVOY_LOG}"; then fail "the secret leaked"; fi
say "the secret appears in neither the response nor Envoy's log"

bold "4. azp-bridge counters (Envoy admin /stats)"
sleep 1.5 # the filter hands its counts to Envoy once a second
curl -s "http://127.0.0.1:${ENVOY_ADMIN_PORT}/stats?filter=azp_bridge" | grep -v ': 0$' | sed 's/^/  /' || true

if [ "${KEEP}" = "1" ]; then
  bold "The stack keeps running. Try:"
  cat <<EOT
  RT=\$(curl -s ${KEYCLOAK}/token -d grant_type=password -d client_id=${ADMIN_CLIENT} \\
        -d client_secret=${ADMIN_CLIENT_SECRET} -d username=bob -d password=bob-password | jq -r .refresh_token)
  curl -s ${KEYCLOAK}/token -d grant_type=refresh_token -d client_id=${MOBILE_CLIENT} -d refresh_token=\$RT   # 400 mismatch
  curl -s ${ENVOY}/token -d grant_type=refresh_token -d client_id=${MOBILE_CLIENT} -d refresh_token=\$RT     # 200
  curl -s http://127.0.0.1:${ENVOY_ADMIN_PORT}/stats?filter=azp_bridge
  make demo-stop
EOT
fi
printf '\n\033[32mDEMO PASSED: Keycloak refused the mobile refresh directly (400) and accepted it through azp-bridge (200, azp %s).\033[0m\n' \
  "$(claims "${new_refresh}" | jq -r .azp)"
