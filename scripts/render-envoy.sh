#!/usr/bin/env bash
# Renders envoy/azp-bridge.yaml (or the template given as $1) to stdout from
# environment variables; docs/configuration.md ("Running against your own Keycloak")
# documents each one. Unset ones get the local defaults used by `make demo`.
# Relative paths ($1, PLUGIN_CONFIG_FILE) are read from the directory this
# is run in, like any other command's arguments.
set -euo pipefail
here="$(pwd)"
repo="$(cd "$(dirname "$0")/.." && pwd)"
fail() { echo "render-envoy: $*" >&2; exit 1; }
from_here() { case "$1" in /*) printf '%s' "$1" ;; *) printf '%s/%s' "${here}" "$1" ;; esac; }

template="$(from_here "${1:-${repo}/envoy/azp-bridge.yaml}")"
[ -r "${template}" ] || fail "template ${template}: no such file"

export LISTEN_ADDRESS="${LISTEN_ADDRESS:-127.0.0.1}"
export LISTEN_PORT="${LISTEN_PORT:-10000}"
export ADMIN_ADDRESS="${ADMIN_ADDRESS:-127.0.0.1}"
export ADMIN_PORT="${ADMIN_PORT:-9901}"
export UPSTREAM_HOST="${UPSTREAM_HOST:-127.0.0.1}"
export UPSTREAM_PORT="${UPSTREAM_PORT:-18080}"
export WASM_PATH="${WASM_PATH:-${repo}/target/wasm32-wasip1/release/azp_bridge.wasm}"
export HOLD_HEADERS="${HOLD_HEADERS:-false}"
export HOST_ENV_KEYS="${HOST_ENV_KEYS:-[\"ADMIN_CLIENT_SECRET\"]}"
case "${HOLD_HEADERS}" in true | false) ;; *) fail "HOLD_HEADERS must be true or false" ;; esac

# The plugin configuration, from a JSON file, on one line. JSON strings
# cannot span lines, so whitespace at the start and end of a line is never
# inside a value: only that is removed, and values keep every space.
config_file="$(from_here "${PLUGIN_CONFIG_FILE:-${repo}/envoy/demo-plugin-config.json}")"
[ -r "${config_file}" ] || fail "PLUGIN_CONFIG_FILE ${config_file}: no such file (a relative path is read from ${here})"
PLUGIN_CONFIG="$(sed -e 's/\r$//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "${config_file}" | paste -sd ' ' -)"
export PLUGIN_CONFIG
case "${PLUGIN_CONFIG}" in *"'"*) fail "the plugin configuration may not contain a single quote" ;; esac

# TLS to Keycloak (off by default): the server certificate must chain to
# UPSTREAM_TLS_CA_FILE and name UPSTREAM_TLS_SNI; a client certificate is
# optional. Written as JSON, which is also YAML, in place of the template's
# "transport_socket: null" line.
transport_socket=""
case "${UPSTREAM_TLS:-false}" in
  false) ;;
  true)
    sni="${UPSTREAM_TLS_SNI:-${UPSTREAM_HOST}}"
    ca="${UPSTREAM_TLS_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}"
    cert="${UPSTREAM_TLS_CERT_FILE:-}"
    key="${UPSTREAM_TLS_KEY_FILE:-}"
    [[ "${sni}" =~ ^[A-Za-z0-9.-]+$ ]] || fail "UPSTREAM_TLS_SNI must be a host name"
    for file in "${ca}" "${cert}" "${key}"; do
      [[ -z "${file}" || "${file}" =~ ^[A-Za-z0-9._/+-]+$ ]] || fail "TLS file paths may hold only A-Z a-z 0-9 . _ / + -"
    done
    if [ -n "${cert}${key}" ] && { [ -z "${cert}" ] || [ -z "${key}" ]; }; then
      fail "set both UPSTREAM_TLS_CERT_FILE and UPSTREAM_TLS_KEY_FILE, or neither"
    fi
    client=""
    [ -z "${cert}" ] || client="\"tls_certificates\":[{\"certificate_chain\":{\"filename\":\"${cert}\"},\"private_key\":{\"filename\":\"${key}\"}}],"
    transport_socket="{\"name\":\"envoy.transport_sockets.tls\",\"typed_config\":{\"@type\":\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\",\"sni\":\"${sni}\",\"common_tls_context\":{${client}\"validation_context\":{\"trusted_ca\":{\"filename\":\"${ca}\"},\"match_typed_subject_alt_names\":[{\"san_type\":\"DNS\",\"matcher\":{\"exact\":\"${sni}\"}}]}}}}"
    ;;
  *) fail "UPSTREAM_TLS must be true or false" ;;
esac

rendered="$(envsubst '${LISTEN_ADDRESS} ${LISTEN_PORT} ${ADMIN_ADDRESS} ${ADMIN_PORT} ${UPSTREAM_HOST} ${UPSTREAM_PORT} ${WASM_PATH} ${PLUGIN_CONFIG} ${HOLD_HEADERS} ${HOST_ENV_KEYS}' < "${template}")"
if [ -n "${transport_socket}" ]; then
  plain=$'\n    transport_socket: null\n'
  [[ "${rendered}" == *"${plain}"* ]] || fail "template ${template} has no \"    transport_socket: null\" line for UPSTREAM_TLS"
  shopt -u patsub_replacement 2>/dev/null || true
  rendered="${rendered/"${plain}"/$'\n'"    transport_socket: ${transport_socket}"$'\n'}"
fi
printf '%s\n' "${rendered}"
