#!/usr/bin/env bash
# Renders envoy/azp-bridge.yaml (or the template given as $1) to stdout from
# environment variables. Unset ones get the local defaults used by `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
template="${1:-envoy/azp-bridge.yaml}"

export LISTEN_ADDRESS="${LISTEN_ADDRESS:-127.0.0.1}"
export LISTEN_PORT="${LISTEN_PORT:-10000}"
export ADMIN_ADDRESS="${ADMIN_ADDRESS:-127.0.0.1}"
export ADMIN_PORT="${ADMIN_PORT:-9901}"
export UPSTREAM_HOST="${UPSTREAM_HOST:-127.0.0.1}"
export UPSTREAM_PORT="${UPSTREAM_PORT:-18080}"
export WASM_PATH="${WASM_PATH:-$PWD/target/wasm32-wasip1/release/azp_bridge.wasm}"
export HOLD_HEADERS="${HOLD_HEADERS:-false}"
export HOST_ENV_KEYS="${HOST_ENV_KEYS:-[\"ADMIN_CLIENT_SECRET\"]}"
# The plugin configuration, from a JSON file, joined onto one line.
PLUGIN_CONFIG="$(tr -d '\n' < "${PLUGIN_CONFIG_FILE:-envoy/demo-plugin-config.json}" | tr -s ' ')"
export PLUGIN_CONFIG
case "${PLUGIN_CONFIG}" in *"'"*) echo "render-envoy: the plugin configuration may not contain a single quote" >&2; exit 1 ;; esac

envsubst '${LISTEN_ADDRESS} ${LISTEN_PORT} ${ADMIN_ADDRESS} ${ADMIN_PORT} ${UPSTREAM_HOST} ${UPSTREAM_PORT} ${WASM_PATH} ${PLUGIN_CONFIG} ${HOLD_HEADERS} ${HOST_ENV_KEYS}' < "${template}"
