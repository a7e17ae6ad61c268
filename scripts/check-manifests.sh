#!/usr/bin/env bash
# Checks the mesh manifests in deploy/ with the meshes' own tools, offline:
#
#   istio          istioctl validate -f and istioctl analyze --use-kube=false
#                  over deploy/istio/ (each of the three alternatives with the
#                  Secret);
#   envoy-gateway  egctl x translate over deploy/envoy-gateway/azp-bridge.yaml
#                  and tests/fixtures/envoy-gateway/: the resources' statuses,
#                  the xDS Envoy Gateway builds, and the Wasm filter its xDS
#                  translator builds for the policy (see below); then
#                  the e2e tier's mesh_tools::egctl_translate runs that filter
#                  chain in a real Envoy in front of a recording upstream.
#
#   scripts/check-manifests.sh                 # install (first run), both checks
#   scripts/check-manifests.sh install         # only build the pinned tools
#   scripts/check-manifests.sh istio           # only the Istio check
#   scripts/check-manifests.sh envoy-gateway   # only the translation (no Rust test)
#   scripts/check-manifests.sh mirrors         # only: no shipped Keycloak route is mirrored
#
# The tools are built from the meshes' Go modules with `go install` at pinned
# versions (below) into .cache/tools/, with the module and build caches in
# .cache/go/ (all ignored by git, reused when present). The first run builds
# both tools (30 minutes in a fresh clone on a busy 2-core machine; see
# docs/compatibility.md, "Checking the mesh manifests").
# Exits non-zero on any error from either tool, on an unexplained warning, or
# when a translated resource is not accepted.
set -euo pipefail
cd "$(dirname "$0")/.."

# istio.io/istio has no tagged versions on the Go module proxy (Istio tags
# releases as 1.x.y, not as Go module versions), only pseudo-versions of its
# master branch; this one is Istio master of 2026-08-27, which knows
# TrafficExtension (its istio.io/api dependency is past v1.31.0-rc.0).
ISTIO_VERSION="v0.0.0-20260827124520-eed52ebb66ad"
# Envoy Gateway's newest release on the Go module proxy.
EG_VERSION="v1.9.1"

TOOLS=.cache/tools
ISTIOCTL="${TOOLS}/istioctl-${ISTIO_VERSION}/istioctl"
EGCTL="${TOOLS}/egctl-${EG_VERSION}/egctl"
OUT=.cache/check-manifests
# Project-local Go caches; -modcacherw keeps the module cache deletable (rm -rf .cache).
export GOMODCACHE="${PWD}/.cache/go/mod" GOCACHE="${PWD}/.cache/go/build"
export GOFLAGS="${GOFLAGS:-} -modcacherw"
export GOTOOLCHAIN=local

say() { printf '\n== %s\n' "$*"; }

install_tools() {
  command -v go >/dev/null || { echo "check-manifests: Go 1.26 or newer is needed (go install)" >&2; exit 1; }
  # jq reads egctl's JSON output and edits its IR.
  if ! command -v jq >/dev/null; then
    echo "check-manifests: installing jq from Debian"
    if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
    "${apt_get[@]}" install -y -q jq >/dev/null || { "${apt_get[@]}" update -q >/dev/null && "${apt_get[@]}" install -y -q jq >/dev/null; }
  fi
  if [ ! -x "${ISTIOCTL}" ]; then
    echo "check-manifests: building istioctl ${ISTIO_VERSION} (first run only; about 15 minutes on 2 cores)"
    GOBIN="${PWD}/${ISTIOCTL%/*}" go install "istio.io/istio/istioctl/cmd/istioctl@${ISTIO_VERSION}"
  fi
  if [ ! -x "${EGCTL}" ]; then
    echo "check-manifests: building egctl ${EG_VERSION} (first run only; about 15 minutes on 2 cores)"
    GOBIN="${PWD}/${EGCTL%/*}" go install "github.com/envoyproxy/gateway/cmd/egctl@${EG_VERSION}"
  fi
}

versions() {
  say "versions"
  go version
  # Built with go install, the tools do not know their release (istioctl says
  # "unknown", egctl nothing); the binaries record the module they came from.
  local tool
  for tool in "${ISTIOCTL}" "${EGCTL}"; do
    echo "${tool##*/}: $(go version -m "${tool}" | awk '$1 == "mod" {print $2, $3}') (${tool}, $(go version "${tool}" | awk '{print $2}'))"
  done
}

# The manifests as docs/deployment.md's sed commands fill them: a raw IMAGE_DIGEST is
# refused by istioctl ("sha256 field must be 64 characters long"), as it should.
SAMPLE_REGISTRY="registry.example.test/team"
SAMPLE_DIGEST="$(printf '%064d' 0 | tr 0 a)"
filled() {
  sed -e "s|REGISTRY|${SAMPLE_REGISTRY}|" -e "s|IMAGE_DIGEST|${SAMPLE_DIGEST}|" "$1"
}

# The one warning the Istio check accepts, and why: EnvoyFilter is the only
# Istio API that can set allow_on_headers_stop_iteration, which hold_headers
# needs (WasmPlugin and TrafficExtension cannot), so hold mode is an
# EnvoyFilter or nothing. istioctl says this of every EnvoyFilter (IST0133 in
# analyze, the same text in validate). Any other warning fails the check.
ENVOYFILTER_WARNING="EnvoyFilter exposes internal implementation details that may change at any time"
ENVOYFILTER_SUPPRESS="IST0133=EnvoyFilter istio-ingress/azp-bridge-hold-headers"

check_istio() {
  local dir="${OUT}/istio" f out alt
  rm -rf "${dir}"; mkdir -p "${dir}"
  for f in deploy/istio/*.yaml; do filled "${f}" > "${dir}/${f##*/}"; done

  say "istioctl validate -f (deploy/istio/, placeholders filled as docs/deployment.md's sed does)"
  # gateway-values.yaml (Helm values) and gateway-env-patch.yaml (a strategic
  # merge patch) are no resources: validate reads them as empty and says valid.
  for f in "${dir}"/*.yaml; do
    out="$("${ISTIOCTL}" validate -f "${f}" 2>&1)" || { echo "${out}"; echo "check-manifests: istioctl validate refused ${f}" >&2; return 1; }
    echo "${out}"
    if grep -q "has warnings" <<<"${out}"; then
      if [ "${f##*/}" != envoyfilter-hold-headers.yaml ] || [ "$(grep -c '^	\* ' <<<"${out}")" != 1 ] \
         || ! grep -q "${ENVOYFILTER_WARNING}" <<<"${out}"; then
        echo "check-manifests: unexpected warning from istioctl validate for ${f}" >&2; return 1
      fi
      echo "   (accepted: the EnvoyFilter warning, see ENVOYFILTER_WARNING in ${0##*/})"
    fi
  done

  # One analysis per alternative (the manifests say: apply exactly one of
  # the three), each with the Secret. -A: the resources are in istio-ingress,
  # and analyze looks only at `default` otherwise. With --use-kube=false,
  # analyze ignores Services, Pods, Namespaces, Nodes and Secrets read from
  # files (they are cluster state to it), so the analyzers that check
  # references to them are skipped and no fixture can bring them in; what runs
  # on these files is schema validation, the EnvoyFilter patch analyzer and
  # the deprecation analyzer.
  for alt in wasmplugin trafficextension envoyfilter-hold-headers; do
    say "istioctl analyze --use-kube=false: ${alt}.yaml with secret.yaml"
    local suppress=()
    [ "${alt}" = envoyfilter-hold-headers ] && suppress=(--suppress "${ENVOYFILTER_SUPPRESS}")
    # The accepted warning, shown once, unsuppressed:
    [ "${alt}" = envoyfilter-hold-headers ] && { "${ISTIOCTL}" analyze -A --use-kube=false --color=false \
      "${dir}/${alt}.yaml" "${dir}/secret.yaml" 2>&1 || true; echo "   (accepted: IST0133, see ENVOYFILTER_WARNING in ${0##*/}; now suppressed, any other message fails)"; }
    "${ISTIOCTL}" analyze -A --use-kube=false --color=false --failure-threshold Info "${suppress[@]}" \
      "${dir}/${alt}.yaml" "${dir}/secret.yaml"
  done
}

# Envoy Gateway. egctl's translator has no Wasm module cache (v1.9.1:
# internal/cmd/egctl/translate.go builds its gatewayapi.Translator without a
# WasmCache), so for an EnvoyExtensionPolicy with Wasm it reports "wasm cache is
# not initialized" and builds no filter. The cache is what pulls the image,
# checks its digest, takes the module's sha256 and serves the module to Envoy
# over HTTPS from the controller; it needs a registry and a running
# controller, which this offline check has neither of. So the check runs in
# two parts, both Envoy Gateway's own code:
#  1. egctl x translate: the statuses (every resource accepted, the policy
#     attached to the HTTPRoute, the Wasm step failing only for the cache), the
#     xDS and the intermediate representation (IR) of the Gateway and route.
#     That IR route answers 500 (a direct response), failOpen or not: with
#     no cache, buildWasms returns before it reads failOpen. In a cluster the
#     cache exists, and a failed pull with failOpen: true drops the filter
#     instead; so this 500 is egctl's, not the manifest's;
#  2. the Wasm extension the gateway-api translator adds to the route's IR
#     when the module is in the cache (buildWasm in
#     internal/gatewayapi/envoyextensionpolicy.go: name, rootID, config,
#     failOpen, env.hostKeys, the cache's serving URL and the module's
#     sha256), put into that IR in place of the 500 (what
#     translateEnvoyExtensionPolicyForRoute does without an error), and Envoy
#     Gateway's xDS translator
#     (internal/xds/translator, run through its own TestTranslateXds with
#     -override-testdata on a scratch copy of the module) turns it into xDS.
# mesh_tools::egctl_translate (e2e/tests/e2e/mesh_tools/egctl_translate.rs)
# then runs part 2's listener, route and cluster in a
# real Envoy, with the module's code source (a remote fetch from the cache)
# replaced by the local file, and checks that part 2 matches part 1 apart from
# the Wasm filter and that 500.
EG_GATEWAY_KEY="keycloak/keycloak"
EG_NO_CACHE="Wasm: wasm cache is not initialized."
EG_ROUTE_PREFIX="httproute/keycloak/keycloak/"
# A stand-in for the URL the cache serves the module at (in a cluster, the
# controller's Service envoy-gateway.envoy-gateway-system on port 18002 and an
# unguessable path).
EG_SERVING_URL="https://envoy-gateway.envoy-gateway-system.svc.cluster.local:18002/azp-bridge-stand-in.wasm"

check_envoy_gateway() {
  local dir="${OUT}/envoy-gateway"
  rm -rf "${dir}"; mkdir -p "${dir}"
  filled deploy/envoy-gateway/azp-bridge.yaml > "${dir}/azp-bridge.yaml"
  { cat "${dir}/azp-bridge.yaml"; echo "---"; cat tests/fixtures/envoy-gateway/keycloak-route.yaml; } > "${dir}/input.yaml"

  say "egctl x validate -f deploy/envoy-gateway/azp-bridge.yaml (placeholders filled)"
  local out
  out="$("${EGCTL}" x validate -f "${dir}/azp-bridge.yaml" 2>&1)"
  echo "${out}"
  # It prints OK or each refused resource with the reason, and exits 0 either way.
  [ "$(sed 's/\x1b\[[0-9;]*m//g' <<<"${out}")" = OK ] || { echo "check-manifests: egctl x validate refused the manifest" >&2; return 1; }

  say "egctl x translate --from gateway-api --to gateway-api: the statuses"
  "${EGCTL}" x translate --from gateway-api --to gateway-api -o json -f "${dir}/input.yaml" > "${dir}/gateway-api.json"
  local conditions='[.status.conditions[]?, (.status.parents[]?, .status.ancestors[]?, .status.listeners[]? | .conditions[]?)]'
  jq -r ".. | objects | select(has(\"kind\") and has(\"status\")) |
    \"\(.kind) \(.metadata.namespace // \"-\")/\(.metadata.name)\",
    (${conditions} | .[] | \"    \(.type)=\(.status) \(.reason): \(.message)\")" "${dir}/gateway-api.json"
  # Every condition True, but for the one thing egctl cannot do (see above).
  local refused
  refused="$(jq -r ".. | objects | select(has(\"kind\") and has(\"status\")) | . as \$r | ${conditions} | .[]
    | select(.status != \"True\")
    | select(\$r.kind != \"EnvoyExtensionPolicy\" or .message != \"${EG_NO_CACHE}\")
    | \"\(\$r.kind) \(\$r.metadata.name): \(.type)=\(.status) \(.message)\"" "${dir}/gateway-api.json")"
  [ -z "${refused}" ] || { echo "check-manifests: Envoy Gateway refused: ${refused}" >&2; return 1; }
  [ "$(jq "[.envoyExtensionPolicies[].status.ancestors[] | select(.ancestorRef.kind == \"Gateway\" and .ancestorRef.name == \"keycloak\")] | length" "${dir}/gateway-api.json")" = 1 ] \
    || { echo "check-manifests: the EnvoyExtensionPolicy is not attached to Gateway keycloak's route" >&2; return 1; }
  echo "   (accepted: \"${EG_NO_CACHE}\", egctl has no Wasm cache; see the comment above check_envoy_gateway)"

  say "egctl x translate --from gateway-api --to xds"
  "${EGCTL}" x translate --from gateway-api --to xds -t all -o json -f "${dir}/input.yaml" > "${dir}/xds.json"
  jq -r '.xds | to_entries[] | "gateway \(.key):", (.value.configs[] |
      (.dynamicListeners[]?.activeState.listener | "  listener \(.name) \(.address.socketAddress.address):\(.address.socketAddress.portValue)"),
      (.dynamicRouteConfigs[]?.routeConfig | "  route configuration \(.name): \([.virtualHosts[].routes[] | "\(.match) -> \(.route.cluster // "direct response \(.directResponse.status)")"] | join(", "))"),
      (.dynamicActiveClusters[]?.cluster | "  cluster \(.name) (\(.type))"),
      (.dynamicEndpointConfigs[]?.endpointConfig | "  endpoints \(.clusterName): \([.endpoints[].lbEndpoints[].endpoint.address.socketAddress | "\(.address):\(.portValue)"] | join(", "))"))' \
    "${dir}/xds.json"
  echo "(all of it: ${dir}/xds.json)"

  say "egctl x translate --from gateway-api --to ir"
  "${EGCTL}" x translate --from gateway-api --to ir -o json -f "${dir}/input.yaml" > "${dir}/ir.json"
  jq -r --arg k "${EG_GATEWAY_KEY}" '.xdsIR[$k].http[] | "listener \(.name): routes \([.routes[].name])"' "${dir}/ir.json"

  translate_wasm "${dir}"
}

# Part 2: the policy's Wasm extension in the route's IR, through Envoy
# Gateway's xDS translator.
translate_wasm() {
  local dir="$1" src="${OUT}/eg-src-${EG_VERSION}" module_sha256
  module_sha256="$(sha256sum "${AZP_BRIDGE_WASM:-target/wasm32-wasip1/release/azp_bridge.wasm}" 2>/dev/null | cut -d' ' -f1 || true)"
  # Without a built module (`make check-manifests` builds it first), zeros.
  module_sha256="${module_sha256:-$(printf '%064d' 0)}"
  # The policy as egctl read it, and the IR buildWasm makes of its Wasm entry.
  jq --arg url "${EG_SERVING_URL}" --arg sha "${module_sha256}" '
    [.. | objects | select(.kind? == "EnvoyExtensionPolicy")][0] as $p
    | $p.spec.wasm | to_entries | map(.key as $i | .value | {
        name: "envoyextensionpolicy/\($p.metadata.namespace)/\($p.metadata.name)/wasm/\($i)",
        rootID: .rootID,
        wasmName: (.name // "envoyextensionpolicy/\($p.metadata.namespace)/\($p.metadata.name)/wasm/\($i)"),
        config: .config,
        failOpen: (.failOpen // false),
        httpWasmCode: {
          servingURL: $url,
          sha256: $sha,
          originalDownloadingURL: (if (.code.image.url | startswith("oci://")) then .code.image.url else "oci://\(.code.image.url)" end)
        },
        hostKeys: .env.hostKeys
      })' "${dir}/gateway-api.json" > "${dir}/wasm-ir.json"
  jq --arg k "${EG_GATEWAY_KEY}" --arg p "${EG_ROUTE_PREFIX}" --slurpfile w "${dir}/wasm-ir.json" '
    .xdsIR[$k] | .http |= map(.routes |= map(
      if (.name | startswith($p)) then
        if .directResponse != {statusCode: 500} then error("route \(.name): no 500 from the missing cache") else . end
        | del(.directResponse) | .envoyExtensions.wasms = $w[0]
      else . end))' \
    "${dir}/ir.json" > "${dir}/ir-with-wasm.json"
  say "the Wasm extension added to the IR of the routes ${EG_ROUTE_PREFIX}*"
  jq . "${dir}/wasm-ir.json"

  # A fresh scratch copy each time: the test embeds testdata/ when it is
  # compiled and, with -override-testdata, compares what it writes with the
  # embedded outputs of an earlier run, and deletes every other output.
  rm -rf "${src}"
  go mod download "github.com/envoyproxy/gateway@${EG_VERSION}"
  cp -r "$(go list -m -f '{{.Dir}}' "github.com/envoyproxy/gateway@${EG_VERSION}")" "${src}"
  chmod -R u+w "${src}"
  cp "${dir}/ir-with-wasm.json" "${src}/internal/xds/translator/testdata/in/xds-ir/azp-bridge.yaml"
  say "Envoy Gateway's xDS translator (internal/xds/translator TestTranslateXds) on that IR"
  (cd "${src}" && go test ./internal/xds/translator -count=1 -run '^TestTranslateXds$/^azp-bridge$' -override-testdata)
  mkdir -p "${dir}/xds-with-wasm"
  for kind in listeners routes clusters endpoints; do
    cp "${src}/internal/xds/translator/testdata/out/xds-ir/azp-bridge.${kind}.yaml" "${dir}/xds-with-wasm/"
  done
  echo "xDS with the Wasm filter: ${dir}/xds-with-wasm/; its Wasm HTTP filter:"
  awk '/- disabled: true/ {p = 1} p && /- name: envoy.filters.http.router/ {exit} p' \
    "${dir}/xds-with-wasm/azp-bridge.listeners.yaml"
  echo "the route:"
  sed -n '/^    routes:/,$p' "${dir}/xds-with-wasm/azp-bridge.routes.yaml"
}

run_rust_test() {
  say "e2e mesh_tools::egctl_translate: the translated filter chain in a real Envoy"
  CHECK_MANIFESTS_DONE=1 "${CARGO:-cargo}" test -p azp-bridge-e2e --test e2e -- mesh_tools::egctl_translate:: --include-ignored
}

# A mirror on a Keycloak route copies the rewritten request, secret
# included, to another cluster the filter cannot see (SECURITY.md, "Other
# consumers of the rewritten request"): refused in every shipped manifest.
check_mirrors() {
  say "no shipped Keycloak route is mirrored (tests/mesh_manifests.rs)"
  "${CARGO:-cargo}" test --test mesh_manifests -- --exact no_shipped_keycloak_route_is_mirrored \
    the_mirror_check_finds_each_kind_of_mirror
}

case "${1:-all}" in
  install) install_tools; versions ;;
  istio) install_tools; check_istio; check_mirrors ;;
  envoy-gateway) install_tools; check_envoy_gateway; check_mirrors ;;
  mirrors) check_mirrors ;;
  all) install_tools; versions; check_istio; check_envoy_gateway; check_mirrors; run_rust_test ;;
  *) echo "usage: $0 [install|istio|envoy-gateway|mirrors]" >&2; exit 2 ;;
esac
