#!/usr/bin/env bash
# azp-bridge delivered by a real Envoy Gateway (scripts/test-mesh.sh runs it;
# docs/deployment.md, "Verified with the real control planes").
#
# Envoy Gateway v1.9.1 in standalone mode (file resource provider, host
# infrastructure provider), built with `go install` into .cache/tools/, reads
# deploy/envoy-gateway/azp-bridge.yaml as shipped (REGISTRY and IMAGE_DIGEST
# filled as the README's sed does) plus tests/fixtures/mesh/envoy-gateway/
# (the Gateway, HTTPRoute and backends), pulls the image `make image PUSH=1`
# pushed to a local docker-registry into its wasm cache, and runs the
# project's Envoy (.venv) as a host process through func-e. Keycloak
# (scripts/keycloak.sh) is behind it. Then: the bridged refresh, revoke and
# logout, the guard, the secret's path, /config_dump, and the failure cases.
#
# Everything is on 127.0.0.1, under .cache/test-mesh/envoy-gateway/, and
# stopped on exit. Envoy Gateway's own ports are fixed by it: 8081 (health), 18000 (xDS),
# 18001, 18002 (wasm cache), 19000 (admin), 19001 (metrics); they must be free.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/mesh/lib.sh

EG_VERSION="${EG_VERSION:-v1.9.1}"
EG="${PWD}/.cache/tools/envoy-gateway-${EG_VERSION}/envoy-gateway"
WORK="${PWD}/.cache/test-mesh/envoy-gateway"
FIX=tests/fixtures/mesh/envoy-gateway
WASM=target/wasm32-wasip1/release/azp_bridge.wasm

install_eg() {
  [ -x "${EG}" ] && return 0
  export GOMODCACHE="${PWD}/.cache/go/mod" GOCACHE="${PWD}/.cache/go/build" GOTOOLCHAIN=local
  export GOFLAGS="${GOFLAGS:-} -modcacherw"
  echo "test-mesh: building envoy-gateway ${EG_VERSION} (first run only; 15-30 minutes on 2 cores)"
  GOBIN="${EG%/*}" go install "github.com/envoyproxy/gateway/cmd/envoy-gateway@${EG_VERSION}"
}
[ "${1:-}" = install ] && { install_eg; exit 0; }
install_eg

trap 'stop_all' EXIT
trap 'exit 130' INT TERM

for port in 8081 18000 18001 18002 19000 19001; do
  port_free "${port}" || die "port ${port} is in use; Envoy Gateway needs it (it is not configurable in standalone mode)"
done
rm -rf "${WORK}"; mkdir -p "${WORK}"/{resources,config,data,state,run,home,staging}
envoy_binary
[ -f "${WASM}" ] || die "no ${WASM}: make build"

say "versions"
note "envoy-gateway: $(go version -m "${EG}" | awk '$1 == "mod" {print $2, $3}') ($(go version "${EG}" | awk '{print $2}'))"
note "envoy: ${ENVOY_VERSION_REAL} (${ENVOY_BIN_REAL})"
note "keycloak: ${KEYCLOAK_VERSION:-26.7.3}; module sha256 $(sha256sum "${WASM}" | cut -d' ' -f1)"

# func-e runs <data home>/envoy-versions/<version>/bin/envoy when it is there.
mkdir -p "${WORK}/data/envoy-versions/${ENVOY_VERSION_REAL}/bin"
ln -s "${ENVOY_BIN_REAL}" "${WORK}/data/envoy-versions/${ENVOY_VERSION_REAL}/bin/envoy"

start_registry_and_keycloak deploy/envoy-gateway/azp-bridge.yaml

say "certificates: envoy-gateway certgen --local"
"${EG}" certgen --local --config-home "${WORK}/config" 2>&1 | tail -n 1 | sed 's/^/   /'
CERT_DIR="${WORK}/config/certs"

fill() {
  sed -e "s|@WORK@|${WORK}|g" -e "s|@GW_PORT@|${GW_PORT}|g" -e "s|@KEYCLOAK_PORT@|${KEYCLOAK_PORT}|g" \
    -e "s|@RECORDER_PORT@|${RECORDER_PORT}|g" -e "s|@ENVOY_VERSION@|${ENVOY_VERSION_REAL}|g" \
    -e "s|@CERT_DIR@|${CERT_DIR}|g" "$1"
}
fill "${FIX}/envoy-gateway.yaml" > "${WORK}/envoy-gateway.yaml"
fill "${FIX}/standalone.yaml" > "${WORK}/resources/standalone.yaml"
# File mode seeds the Secret envoy-gateway-system/envoy (the proxy's client
# certificate for the wasm cache) from a CA of its own at every start, which
# the cache does not trust; a Secret of that name in the resource files
# replaces it with certgen's.
b64() { base64 -w0 < "$1"; }
cat > "${WORK}/resources/envoy-client-cert.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: envoy
  namespace: envoy-gateway-system
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "${CERT_DIR}/envoy/tls.crt")
  tls.key: $(b64 "${CERT_DIR}/envoy/tls.key")
  ca.crt: $(b64 "${CERT_DIR}/envoy/ca.crt")
EOF

# The shipped manifest, placeholders filled the README's way (plus the
# Secret's value, which standalone mode does not use: see the fixture).
shipped() { # DIGEST URL_TAG FAIL_OPEN
  sed -e "s|REGISTRY|${REGISTRY}|" -e "s|IMAGE_DIGEST|$1|" \
    -e "s|REPLACE-WITH-THE-SPRING-BOOT-ADMIN-CLIENT-SECRET|${ADMIN_CLIENT_SECRET_VALUE}|" \
    -e "s|azp-bridge:${TAG}\$|azp-bridge:$2|" -e "s|failOpen: true|failOpen: $3|" \
    deploy/envoy-gateway/azp-bridge.yaml
}
apply_policy() { # the file provider watches the directory: an atomic rename is an apply
  shipped "$@" > "${WORK}/staging/azp-bridge.yaml"
  mv "${WORK}/staging/azp-bridge.yaml" "${WORK}/resources/azp-bridge.yaml"
}

EG_LOG="${WORK}/envoy-gateway.log"
start_eg() { # extra env
  start_bg envoy-gateway "${EG_LOG}" env HOME="${WORK}/home" "$@" "${EG}" server --config-path "${WORK}/envoy-gateway.yaml"
  EG_PID="${LAST_PID}"
  wait_for 120 "Envoy (admin-address.txt under the runtime directory)" find_admin
  ADMIN="$(cat "$(find "${WORK}/run" -name admin-address.txt | head -n 1)")"
  wait_for 120 "the gateway's listener on ${GW_PORT}" curl -s -o /dev/null --max-time 2 "${GW}/realms/${REALM}"
}
find_admin() { [ -n "$(find "${WORK}/run" -name admin-address.txt -size +0 2>/dev/null | head -n 1)" ]; }
stop_eg() {
  stop_pgid "${EG_PID}"
  # Envoy dies with it (func-e sets Pdeathsig); wait for its listener to go.
  wait_for 30 "Envoy to stop" port_free "${GW_PORT}"
  find "${WORK}/run" -name admin-address.txt -delete
}


say "Envoy Gateway ${EG_VERSION} standalone, without the policy"
start_eg ADMIN_CLIENT_SECRET="${ADMIN_CLIENT_SECRET_VALUE}"
note "Envoy admin (control-plane-managed Envoy): ${ADMIN}"
note "before the policy, a refresh through the gateway: HTTP $(unbridged_status "${GW}") ($(jq -r .error_description "${WORK}/last.json"))"

say "apply deploy/envoy-gateway/azp-bridge.yaml (sha256 = the image digest, failOpen: true)"
apply_policy "${DIGEST}" "${TAG}" true
if poll_refresh 120 "${WORK}/apply.poll"; then
  note "apply -> first bridged refresh: $(tail -n 1 "${WORK}/apply.poll" | cut -d' ' -f1) s"
else fail "no bridged refresh within 120 s of the apply"; fi
note "the refreshes while the module was fetched: $(summary "${WORK}/apply.poll")"
grep -i 'wasm' "${EG_LOG}" | grep -v -i 'debug' | head -n 5 | cut -c1-300 | sed 's/^/   EG log: /'

say "the article's refresh, revoke and logout through the gateway"
bridged_checks "${GW}"
sleep 1.2 # each worker hands its counts to Envoy once a second
note "counters (Envoy admin ${ADMIN}): $(stats_line "${ADMIN}" azp_bridge)"

say "the guard: a forged refresh routed by rule 1 (x-route: elsewhere) to an upstream that is not Keycloak"
rt="$(admin_refresh_token)"
status="$(refresh_via "${GW}" "${rt}" -H 'x-route: elsewhere')"
note "HTTP ${status} from the recording upstream"
if grep -q "client_id=${MOBILE_CLIENT}" "${WORK}/recorded.txt" && ! grep -q -F "${ADMIN_CLIENT_SECRET_VALUE}" "${WORK}/recorded.txt" \
   && ! grep -q "client_id=${ADMIN_CLIENT}" "${WORK}/recorded.txt"; then
  note "the recorder got the request as sent (client_id=${MOBILE_CLIENT}, no client_secret)"
else fail "the recorder's request was rewritten or holds the secret: $(grep -c . "${WORK}/recorded.txt") lines"; fi
sleep 1.2
note "counters: $(stats_line "${ADMIN}" azp_bridge)"

say "/config_dump of the Envoy Envoy Gateway runs"
curl -s --max-time 10 "http://${ADMIN}/config_dump?include_eds" > "${WORK}/config_dump.json"
jq -r '.configs[] | select(."@type" | endswith("ClustersConfigDump")) | .dynamic_active_clusters[]?.cluster.name' "${WORK}/config_dump.json" \
  | sed 's/^/   cluster: /'
jq -r '.configs[] | select(."@type" | endswith("ListenersConfigDump")) | .dynamic_listeners[]?.active_state.listener
  | "   listener \(.name): http_filters " + ([.. | objects | select(has("http_filters")) | .http_filters[] | "\(.name)\(if .disabled then " (disabled)" else "" end)"] | join(" -> "))' \
  "${WORK}/config_dump.json"
jq -r '.configs[] | select(."@type" | endswith("RoutesConfigDump")) | .dynamic_route_configs[]?.route_config.virtual_hosts[]?.routes[]
  | "   route \(.name // "-") -> \(.route.cluster // .direct_response.status), per-route filter configs: \(.typed_per_filter_config // {} | keys)"' \
  "${WORK}/config_dump.json"
jq '[.. | objects | select(."@type"? == "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm")][0].config
  | {name, root_id, fail_open, failure_policy, code: .vm_config.code, env: .vm_config.environment_variables, configuration: .configuration.value}' \
  "${WORK}/config_dump.json" | sed 's/^/   /'
secret_absent "Envoy Gateway or Envoy log, nor the config dump" "${EG_LOG}" "${WORK}/config_dump.json" "${WORK}"/state/envoy-runs/*/*


say "failure cases, each applied to the running gateway (refreshes every 0.5 s from the apply)"
BAD_DIGEST="$(sha256sum "${WASM}" | cut -d' ' -f1)" # the module's sha256, not the image's: a wrong sha256
apply_policy "${BAD_DIGEST}" "${TAG}" true
observe 12 "wrong sha256 (the module's, not the image digest), failOpen: true" wrong-sha-open
apply_policy "${BAD_DIGEST}" "${TAG}" false
observe 12 "wrong sha256, failOpen: false" wrong-sha-closed
apply_policy "${OTHER_DIGEST}" "missing-tag" true
observe 12 "image missing (a tag never pushed), failOpen: true" missing-open
apply_policy "${OTHER_DIGEST}" "missing-tag" false
observe 12 "image missing, failOpen: false" missing-closed
apply_policy "${DIGEST}" "missing-tag" false
observe 12 "a tag never pushed, with the sha256 of the image in the cache, failOpen: false" missing-cached
rm -f "${WORK}/resources/azp-bridge.yaml"
observe 8 "policy deleted" deleted
apply_policy "${DIGEST}" "${TAG}-closed" false
observe 12 "first fetch of a tag not in the cache, failOpen: false (what requests get while it is fetched)" first-fetch-closed
stop_registry
note "registry stopped"
apply_policy "${OTHER_DIGEST}" "${TAG}-other" true
observe 12 "registry down (an image not in the cache), failOpen: true" down-open
apply_policy "${OTHER_DIGEST}" "${TAG}-other" false
observe 12 "registry down, failOpen: false" down-closed
apply_policy "${DIGEST}" "${TAG}" true
observe 12 "registry down, the image in the cache again" down-cached
grep -E '	error	' "${EG_LOG}" | grep -i wasm | sed 's/.*"error": "\(.*\)"}$/\1/' | sed "s/${REGISTRY}/REGISTRY/g" \
  | sort | uniq -c | cut -c1-400 | sed 's/^/   EG log (error): /'

envoy_logs() { cat "$(ls -d "${WORK}"/state/envoy-runs/* | tail -n 1)"/*.log; }
wasm_in_dump() { local dump; dump="$(curl -s --max-time 5 "http://${ADMIN}/config_dump")"; grep -q 'envoy.extensions.filters.http.wasm.v3.Wasm' <<<"${dump}"; }
lost_bridge_note() {
  sleep 1.2
  note "azp_bridge series: $(curl -s "http://${ADMIN}/stats?filter=azp_bridge" | grep -c . || true), Wasm filter in /config_dump: $(wasm_in_dump && echo yes || echo no), $(curl -s "http://${ADMIN}/stats?filter=wasm" | grep '^wasm' | grep -v ': 0$' | tr '\n' ' ')"
  envoy_logs | grep -o 'azp-bridge: invalid configuration.*' | head -n 1 | cut -c1-300 | sed 's/^/   Envoy log: /' || true
}

say "Envoy Gateway restarted while the registry is down (its wasm cache is in memory)"
stop_eg
for open in true false; do
  apply_policy "${DIGEST}" "${TAG}" "${open}"
  start_eg ADMIN_CLIENT_SECRET="${ADMIN_CLIENT_SECRET_VALUE}"
  sleep 5
  observe 8 "restart, registry down, failOpen: ${open}" restart-down-"${open}"
  lost_bridge_note
  stop_eg
done

say "configuration refused: Envoy Gateway (and so Envoy) without ADMIN_CLIENT_SECRET, the registry up"
start_registry "${WORK}/registry"
for open in true false; do
  apply_policy "${DIGEST}" "${TAG}" "${open}"
  start_eg
  wait_for 60 "the Wasm filter in Envoy's config" wasm_in_dump || fail "no Wasm filter delivered"
  sleep 3
  observe 8 "no ADMIN_CLIENT_SECRET, failOpen: ${open}" refused-"${open}"
  lost_bridge_note
  secret_absent "log of this run" "${EG_LOG}" "${WORK}"/state/envoy-runs/*/*
  stop_eg
done

say "result"
if [ "${FAILURES}" = 0 ]; then echo "envoy-gateway: all checks passed (work directory ${WORK})"
else echo "envoy-gateway: ${FAILURES} check(s) failed (work directory ${WORK})" >&2; exit 1; fi
