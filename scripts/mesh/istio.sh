#!/usr/bin/env bash
# azp-bridge delivered by a real istiod and istio-agent without Kubernetes
# (scripts/test-mesh.sh runs it; docs/deployment.md, "Verified with the real
# control planes").
#
# pilot-discovery and pilot-agent, built with `go install` at the Istio
# version scripts/check-manifests.sh pins, into .cache/tools/. istiod reads
# its configuration from files (--configDir, a mesh config file, no API
# server): tests/fixtures/mesh/istio/ (Gateway, VirtualService, Keycloak and a
# recording upstream as ServiceEntries) and the shipped
# deploy/istio/trafficextension.yaml, then envoyfilter-hold-headers.yaml
# (placeholders filled as the README's sed does). The gateway proxy is
# pilot-agent in router mode running the project's Envoy (.venv); its agent
# pulls the image from the local docker-registry (WASM_INSECURE_REGISTRIES)
# and hands Envoy the module as a local file. Keycloak (scripts/keycloak.sh) is
# behind it.
#
# Everything is on 127.0.0.1, under .cache/test-mesh/istio/, and stopped on
# exit. Fixed ports (Istio's defaults, which the agent's bootstrap assumes):
# 15000 (Envoy admin), 15004, 15010 (plaintext xDS), 15012, 15014, 15017,
# 15020, 15021, 15090.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/mesh/lib.sh

ISTIO_VERSION="${ISTIO_VERSION:-$(sed -n 's/^ISTIO_VERSION="\(.*\)"$/\1/p' scripts/check-manifests.sh)}"
TOOLS="${PWD}/.cache/tools/istio-${ISTIO_VERSION}"
WORK="${PWD}/.cache/test-mesh/istio"
FIX=tests/fixtures/mesh/istio
WASM=target/wasm32-wasip1/release/azp_bridge.wasm

PATCHED="${PWD}/.cache/tools/istio-${ISTIO_VERSION}-patched"
install_istio() {
  export GOMODCACHE="${PWD}/.cache/go/mod" GOCACHE="${PWD}/.cache/go/build" GOTOOLCHAIN=local
  export GOFLAGS="${GOFLAGS:-} -modcacherw"
  if [ ! -x "${TOOLS}/pilot-discovery" ] || [ ! -x "${TOOLS}/pilot-agent" ]; then
    echo "test-mesh: building pilot-discovery and pilot-agent ${ISTIO_VERSION} (first run only; 20-40 minutes on 2 cores)"
    GOBIN="${TOOLS}" go install "istio.io/istio/pilot/cmd/pilot-discovery@${ISTIO_VERSION}" \
      "istio.io/istio/pilot/cmd/pilot-agent@${ISTIO_VERSION}"
  fi
  # istiod with tests/fixtures/mesh/istio/istiod-no-kubernetes.patch, built
  # from a scratch copy of the same module (see the patch for why).
  if [ ! -x "${PATCHED}/pilot-discovery" ]; then
    local src="${PWD}/.cache/test-mesh-src/istio-${ISTIO_VERSION}"
    echo "test-mesh: building pilot-discovery ${ISTIO_VERSION} with istiod-no-kubernetes.patch (first run only; about 5 minutes)"
    rm -rf "${src}"; mkdir -p "${src%/*}"
    cp -r "$(go mod download -json "istio.io/istio@${ISTIO_VERSION}" | jq -r .Dir)" "${src}"
    chmod -R u+w "${src}"
    patch -s -d "${src}" -p1 < tests/fixtures/mesh/istio/istiod-no-kubernetes.patch
    (cd "${src}" && go build -o "${PATCHED}/pilot-discovery" ./pilot/cmd/pilot-discovery)
  fi
}
[ "${1:-}" = install ] && { install_istio; exit 0; }
install_istio

trap 'stop_all' EXIT
trap 'exit 130' INT TERM

for port in 15000 15004 15010 15012 15014 15017 15020 15021 15090; do
  port_free "${port}" || die "port ${port} is in use; the Istio test needs it"
done
rm -rf "${WORK}"; mkdir -p "${WORK}"/{config,staging,proxy/var/lib/istio/envoy,proxy/etc/istio/proxy}
envoy_binary
[ -f "${WASM}" ] || die "no ${WASM}: make build"
ISTIO_SRC="$(GOMODCACHE="${PWD}/.cache/go/mod" GOFLAGS=-modcacherw GOTOOLCHAIN=local go mod download -json "istio.io/istio@${ISTIO_VERSION}" | jq -r .Dir)"

say "versions"
note "pilot-discovery, pilot-agent: $(go version -m "${TOOLS}/pilot-agent" | awk '$1 == "mod" {print $2, $3}') ($(go version "${TOOLS}/pilot-agent" | awk '{print $2}'))"
note "envoy: ${ENVOY_VERSION_REAL} (${ENVOY_BIN_REAL})"
note "module sha256 $(sha256sum "${WASM}" | cut -d' ' -f1)"

start_registry_and_keycloak deploy/istio/trafficextension.yaml

fill() { sed -e "s|@GW_PORT@|${GW_PORT}|g" -e "s|@KEYCLOAK_PORT@|${KEYCLOAK_PORT}|g" -e "s|@RECORDER_PORT@|${RECORDER_PORT}|g" "$1"; }
fill "${FIX}/gateway.yaml" > "${WORK}/config/gateway.yaml"
cp "${FIX}/mesh.yaml" "${WORK}/mesh.yaml"

# shipped FILE DIGEST TAG [FAILSTRATEGY]: the manifest, placeholders filled the README's way.
shipped() {
  sed -e "s|REGISTRY|${REGISTRY}|" -e "s|IMAGE_DIGEST|$2|" -e "s|azp-bridge:${TAG}\$|azp-bridge:$3|" \
    -e "s|failStrategy: FAIL_OPEN|failStrategy: ${4:-FAIL_OPEN}|" -e "s|failure_policy: FAIL_OPEN|failure_policy: ${4:-FAIL_OPEN}|" \
    "deploy/istio/$1"
}
apply() { # FILE DIGEST TAG [FAILSTRATEGY]: istiod watches --configDir
  shipped "$@" > "${WORK}/staging/$1"
  mv "${WORK}/staging/$1" "${WORK}/config/$1"
}
unapply() { rm -f "${WORK}/config/$1"; }

# istiod without Kubernetes. The switches turn off what a stock Envoy lacks:
# PILOT_ENABLE_METADATA_EXCHANGE (istio.metadata_exchange, Istio's peer
# metadata filter), PILOT_ENABLE_ALPN_FILTER (istio.alpn); no metrics provider
# in the mesh config, so no istio.stats; tracing off.
ISTIOD_LOG="${WORK}/istiod.log"
ISTIOD_ENV=(POD_NAMESPACE=istio-system POD_NAME=istiod-test
  PILOT_ENABLE_METADATA_EXCHANGE=false PILOT_ENABLE_ALPN_FILTER=false
  ENABLE_CA_SERVER=false PILOT_ENABLE_GATEWAY_API=false)
start_istiod() { # BINARY
  start_bg istiod "${ISTIOD_LOG}" env -C "${WORK}" "${ISTIOD_ENV[@]}" "$1" discovery \
    --configDir "${WORK}/config" --meshConfig "${WORK}/mesh.yaml" --registries "" --clusterID Kubernetes \
    --grpcAddr 127.0.0.1:15010 --secureGRPCAddr "" --httpAddr 127.0.0.1:15014 --monitoringAddr "" \
    --httpsAddr "" --domain cluster.local
  ISTIOD_PID="${LAST_PID}"
  local i
  for i in $(seq 1 600); do
    (exec 3<>/dev/tcp/127.0.0.1/15010) 2>/dev/null && return 0
    kill -0 "${ISTIOD_PID}" 2>/dev/null || return 1
    sleep 0.2
  done
  echo "test-mesh: istiod's xDS not up on 15010 after 120 s" >&2; return 1
}

# The gateway: pilot-agent in router mode, the project's Envoy as its binary.
cp "${ISTIO_SRC}/tools/packaging/common/envoy_bootstrap.json" "${WORK}/proxy/var/lib/istio/envoy/envoy_bootstrap_tmpl.json"
chmod u+w "${WORK}/proxy/var/lib/istio/envoy/envoy_bootstrap_tmpl.json"
# The workload certificate the agent serves Envoy over SDS (default, ROOTCA):
# with controlPlaneAuthPolicy NONE and no istiod CA there is nothing to sign
# one, and Envoy keeps the mesh-internal cluster (Keycloak) warming without it.
# Files at the agent's well-known relative path are used as they are.
creds="${WORK}/proxy/var/run/secrets/workload-spiffe-credentials"
mkdir -p "${creds}"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "${WORK}/ca.key" -out "${creds}/root-cert.pem" \
  -days 2 -subj "/O=azp-bridge test-mesh/CN=test root" -addext "basicConstraints=critical,CA:true" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "${creds}/key.pem" -out "${WORK}/workload.csr" \
  -subj "/O=azp-bridge test-mesh" 2>/dev/null
printf 'subjectAltName=URI:spiffe://cluster.local/ns/istio-ingress/sa/istio-ingressgateway\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n' > "${WORK}/workload.ext"
openssl x509 -req -in "${WORK}/workload.csr" -CA "${creds}/root-cert.pem" -CAkey "${WORK}/ca.key" -CAcreateserial \
  -out "${creds}/cert-chain.pem" -days 2 -extfile "${WORK}/workload.ext" 2>/dev/null
AGENT_LOG="${WORK}/gateway.log"
ADMIN=127.0.0.1:15000
# The agent keeps downloaded modules in /var/lib/istio/data, a path it does not
# let anyone change (constants.IstioDataDir). The gateway runs in a mount
# namespace of its own, where a tmpfs covers /var/lib and the project's
# ${WORK}/wasm-cache is mounted there; nothing outside the test sees it.
mkdir -p "${WORK}/wasm-cache"
IN_OWN_VAR_LIB=(unshare --mount --propagation private -- sh -c 'mount -t tmpfs tmpfs /var/lib &&
  mkdir -p /var/lib/istio/data && mount --bind "$0" /var/lib/istio/data && exec "$@"' "${WORK}/wasm-cache")
start_gateway() { # extra env
  start_bg gateway "${AGENT_LOG}" "${IN_OWN_VAR_LIB[@]}" env -C "${WORK}/proxy" \
    PROXY_CONFIG="{\"discoveryAddress\":\"127.0.0.1:15010\",\"controlPlaneAuthPolicy\":\"NONE\",\"binaryPath\":\"${ENVOY_BIN_REAL}\",\"configPath\":\"${WORK}/proxy/etc/istio/proxy\",\"concurrency\":2,\"drainDuration\":\"1s\",\"terminationDrainDuration\":\"1s\",\"tracing\":null}" \
    POD_NAME=istio-ingressgateway-test POD_NAMESPACE=istio-ingress INSTANCE_IP=127.0.0.1 \
    SERVICE_ACCOUNT=istio-ingressgateway ISTIO_META_CLUSTER_ID=Kubernetes \
    ISTIO_METAJSON_LABELS='{"istio":"ingressgateway","app":"istio-ingressgateway"}' \
    JWT_POLICY=none WASM_INSECURE_REGISTRIES="${REGISTRY}" \
    "$@" "${TOOLS}/pilot-agent" proxy router --domain istio-ingress.svc.cluster.local \
    --proxyLogLevel warning --proxyComponentLogLevel wasm:info
  GATEWAY_PID="${LAST_PID}"
  wait_for 120 "the gateway's Envoy admin" curl -sf "http://${ADMIN}/ready"
  wait_for 60 "the gateway's listener on ${GW_PORT}" curl -s -o /dev/null --max-time 2 "${GW}/realms/${REALM}"
}
stop_gateway() { stop_pgid "${GATEWAY_PID}"; wait_for 30 "the gateway to stop" port_free 15000; }


config_dump() {
  curl -s --max-time 10 "http://${ADMIN}/config_dump?include_eds" > "${WORK}/config_dump.$1.json"
  jq -r '.configs[] | select(."@type" | endswith("ClustersConfigDump")) | (.static_clusters[]?, .dynamic_active_clusters[]?) | .cluster.name' \
    "${WORK}/config_dump.$1.json" | sed 's/^/   cluster: /'
  jq -r '.configs[] | select(."@type" | endswith("ListenersConfigDump")) | .dynamic_listeners[]?.active_state.listener
    | "   listener \(.name): http_filters " + ([.. | objects | select(has("http_filters")) | .http_filters[] | .name] | join(" -> "))' \
    "${WORK}/config_dump.$1.json"
  jq -r '.configs[] | select(."@type" | endswith("RoutesConfigDump")) | .dynamic_route_configs[]?.route_config.virtual_hosts[]?.routes[]
    | "   route \(.match | tostring) -> \(.route.cluster // .direct_response.status)"' "${WORK}/config_dump.$1.json"
  jq '.configs[] | select(."@type" | endswith("EcdsConfigDump")) | .ecds_filters[]?.ecds_filter
    | {name, config: (.typed_config.config | {name, root_id, fail_open, failure_policy, allow_on_headers_stop_iteration, code: .vm_config.code, env: .vm_config.environment_variables, configuration: .configuration.value})}' \
    "${WORK}/config_dump.$1.json" | sed 's/^/   /'
}

guard_check() {
  local rt status; rt="$(admin_refresh_token)"
  : > "${WORK}/recorded.txt"
  status="$(refresh_via "${GW}" "${rt}" -H 'x-route: elsewhere')"
  if [ "${status}" = 200 ] && grep -q "client_id=${MOBILE_CLIENT}" "${WORK}/recorded.txt" \
     && ! grep -q -F "${ADMIN_CLIENT_SECRET_VALUE}" "${WORK}/recorded.txt" && ! grep -q "client_id=${ADMIN_CLIENT}" "${WORK}/recorded.txt" \
     && ! grep -qi '^authorization: basic' "${WORK}/recorded.txt"; then
    note "guard: the recording upstream (outbound|80||recorder.test) got the refresh as sent, no secret"
  else fail "guard: HTTP ${status}, the recorder's request was rewritten or holds the secret"; fi
}

say "istiod (pilot-discovery ${ISTIO_VERSION}) from files, as built by go install"
if start_istiod "${TOOLS}/pilot-discovery"; then
  note "istiod is up unpatched: the patch is no longer needed"
  ISTIOD_BIN="${TOOLS}/pilot-discovery"
else
  wait "${ISTIOD_PID}" 2>/dev/null || true
  grep -m1 '^panic:' "${ISTIOD_LOG}" | sed 's/^/   istiod: /'
  grep -m1 -A1 'multicluster.(\*Controller).ConfigCluster' "${ISTIOD_LOG}" | sed 's/^\s*/   istiod:   /'
  grep -q 'serviceentry.newController' "${ISTIOD_LOG}" || die "istiod failed otherwise than known (${ISTIOD_LOG})"
  note "stops here without a Kubernetes client (tests/fixtures/mesh/istio/istiod-no-kubernetes.patch); the rest runs the patched istiod"
  cp "${ISTIOD_LOG}" "${WORK}/istiod-unpatched.log"
  ISTIOD_BIN="${PATCHED}/pilot-discovery"
  start_istiod "${ISTIOD_BIN}" || die "the patched istiod did not start (${ISTIOD_LOG})"
fi

say "the gateway (pilot-agent ${ISTIO_VERSION}, router mode, the project's Envoy)"
start_gateway ADMIN_CLIENT_SECRET="${ADMIN_CLIENT_SECRET_VALUE}"
note "before the extension, a refresh through the gateway: HTTP $(unbridged_status "${GW}") ($(jq -r .error_description "${WORK}/last.json"))"

for mode in trafficextension.yaml envoyfilter-hold-headers.yaml; do
  say "apply deploy/istio/${mode} (sha256 = the image digest, FAIL_OPEN)"
  apply "${mode}" "${DIGEST}" "${TAG}"
  if poll_refresh 120 "${WORK}/apply.${mode}.poll"; then
    note "apply -> first bridged refresh: $(tail -n 1 "${WORK}/apply.${mode}.poll" | cut -d' ' -f1) s"
  else fail "${mode}: no bridged refresh within 120 s of the apply"; fi
  note "the refreshes while the module was fetched: $(summary "${WORK}/apply.${mode}.poll")"
  bridged_checks "${GW}"
  guard_check
  sleep 1.2
  note "counters (Envoy admin ${ADMIN}): $(stats_line "${ADMIN}" azp_bridge)"
  note "agent: $(curl -s http://127.0.0.1:15020/stats/prometheus | grep '^istio_agent_wasm_remote_fetch_count\|^istio_agent_wasm_cache_lookup_count' | tr '\n' ' ')"
  say "/config_dump with ${mode}"
  config_dump "${mode%.yaml}"
  unapply "${mode}"
  sleep 3
done
secret_absent "istiod, agent or Envoy log, nor config dump" "${ISTIOD_LOG}" "${AGENT_LOG}" "${WORK}"/config_dump.*.json

say "failure cases, TrafficExtension applied to the running gateway (refreshes every 0.5 s from the apply)"
BAD_DIGEST="$(sha256sum "${WASM}" | cut -d' ' -f1)" # the module's sha256, not the image's
for strategy in FAIL_OPEN FAIL_CLOSE; do
  apply trafficextension.yaml "${BAD_DIGEST}" "${TAG}" "${strategy}"
  observe 12 "wrong sha256 (the module's, not the image digest), ${strategy}" "wrong-sha-${strategy}"
  apply trafficextension.yaml "${OTHER_DIGEST}" "missing-tag" "${strategy}"
  observe 12 "image missing (a tag never pushed), ${strategy}" "missing-${strategy}"
done
apply trafficextension.yaml "${DIGEST}" "missing-tag" FAIL_CLOSE
observe 12 "a tag never pushed, with the sha256 of the image in the agent's cache, FAIL_CLOSE" missing-cached
unapply trafficextension.yaml
observe 8 "extension deleted" deleted
apply trafficextension.yaml "${DIGEST}" "${TAG}-closed" FAIL_CLOSE
observe 12 "first fetch of a tag not in the cache, FAIL_CLOSE (what requests get while it is fetched)" first-fetch-closed
stop_registry
note "registry stopped"
for strategy in FAIL_OPEN FAIL_CLOSE; do
  apply trafficextension.yaml "${OTHER_DIGEST}" "${TAG}-other" "${strategy}"
  observe 12 "registry down (an image not in the agent's cache), ${strategy}" "down-${strategy}"
done
apply trafficextension.yaml "${DIGEST}" "${TAG}"
observe 12 "registry down, the image in the cache again" down-cached
note "agent: $(curl -s http://127.0.0.1:15020/stats/prometheus | grep '^istio_agent_wasm_remote_fetch_count\|^istio_agent_wasm_config_conversion_count' | tr '\n' ' ')"
grep 'error	wasm' "${AGENT_LOG}" | sed 's/^[^\t]*\t//' | sed "s/${REGISTRY}/REGISTRY/g" | cut -c1-300 | sort | uniq -c | sed 's/^/   agent log: /'

say "configuration refused: a new gateway without ADMIN_CLIENT_SECRET, registry up"
stop_gateway
start_registry "${WORK}/registry"
for strategy in FAIL_OPEN FAIL_CLOSE; do
  apply trafficextension.yaml "${DIGEST}" "${TAG}" "${strategy}"
  start_gateway || true
  sleep 3
  observe 8 "no ADMIN_CLIENT_SECRET, ${strategy}, a new gateway" "refused-${strategy}"
  curl -s -o /dev/null -w "   a request to the recording upstream's route: HTTP %{http_code}\n" -H 'x-route: elsewhere' "${GW}/anything" || true
  grep -o 'azp-bridge: invalid configuration.*' "${AGENT_LOG}" | head -n 1 | cut -c1-300 | sed 's/^/   Envoy log: /' || true
  secret_absent "log of this run" "${ISTIOD_LOG}" "${AGENT_LOG}"
  stop_gateway
done

say "result"
if [ "${FAILURES}" = 0 ]; then echo "istio: all checks passed (work directory ${WORK})"
else echo "istio: ${FAILURES} check(s) failed (work directory ${WORK})" >&2; exit 1; fi
