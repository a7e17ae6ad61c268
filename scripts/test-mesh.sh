#!/usr/bin/env bash
# azp-bridge delivered by the real control planes (`make test-mesh`; part of
# `make test-matrix`, not of `make test`): Envoy Gateway in standalone mode
# and istiod + istio-agent without Kubernetes, each pulling the image that
# `make image PUSH=1` pushes to a local docker-registry into the project's
# Envoy, with a real Keycloak behind. docs/deployment.md, "Verified with the
# real control planes", says what each run shows and where a path stops.
#
#   scripts/test-mesh.sh                 # install (first run), both control planes
#   scripts/test-mesh.sh install         # only build the control planes (Go, into .cache/tools/)
#   scripts/test-mesh.sh envoy-gateway   # only Envoy Gateway
#   scripts/test-mesh.sh istio           # only Istio
#
# Needs what scripts/setup.sh installs (the Makefile target runs it and
# `make build` first), Go 1.26+, and a JDK and Maven for Keycloak
# (scripts/keycloak.sh). The first run builds envoy-gateway, pilot-discovery
# and pilot-agent from their Go modules (about an hour on 2 busy cores); the
# module and build caches are .cache/go/, as scripts/check-manifests.sh keeps
# them. Each run writes its logs, config dumps and observations under
# .cache/test-mesh/<control plane>/.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "test-mesh: Go 1.26 or newer is needed (go install)" >&2; exit 1; }
for tool in jq curl skopeo docker-registry; do
  command -v "${tool}" >/dev/null || { echo "test-mesh: ${tool} is missing: run scripts/setup.sh" >&2; exit 1; }
done

case "${1:-all}" in
  install) scripts/mesh/envoy-gateway.sh install; scripts/mesh/istio.sh install ;;
  envoy-gateway) scripts/mesh/envoy-gateway.sh ;;
  istio) scripts/mesh/istio.sh ;;
  all)
    scripts/mesh/envoy-gateway.sh install; scripts/mesh/istio.sh install
    rc=0
    scripts/mesh/envoy-gateway.sh || rc=1
    scripts/mesh/istio.sh || rc=1
    exit "${rc}" ;;
  *) echo "usage: $0 [install|envoy-gateway|istio]" >&2; exit 2 ;;
esac
