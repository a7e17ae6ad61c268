#!/usr/bin/env bash
# `make image`: packages the release module as a "compat" Wasm image
# (deploy/oci/Dockerfile: FROM scratch, the module as plugin.wasm) with docker
# buildx or buildah, whichever is present, and prints the checksums the
# manifests need:
#   - the module's sha256: the WasmPlugin `sha256` for an http(s):// or file:// url;
#   - after a push, the image manifest digest: the `sha256` for an oci:// url
#     (Istio compares it with the pulled image's digest, not the module's).
#
#   IMAGE=REGISTRY/azp-bridge:0.2.0 PUSH=1 make image
#
# OCI_ARCHIVE=FILE writes the image to FILE as an OCI archive (tar of an OCI
# image layout) instead of loading or pushing it (`make release`).
#
# TLS_VERIFY=0 pushes to a registry over plain HTTP or with a certificate this
# machine does not trust (a local test registry, e.g. 127.0.0.1:5000): buildah
# only; docker takes insecure registries from the engine's configuration.
#
# With buildah, PUSH=1 and OCI_ARCHIVE build in a throwaway image store in a
# temporary directory (driver vfs: plain directories, no mounts): the machine's
# store is neither used nor changed. A plain `make image` keeps the image in the
# machine's store, to push later with `buildah push`.
#
# Without docker buildx (and a running engine) or buildah it builds nothing,
# says what to do instead, and exits 2.
set -euo pipefail
cd "$(dirname "$0")/../.."

WASM="${WASM:-target/wasm32-wasip1/release/azp_bridge.wasm}"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
IMAGE="${IMAGE:-azp-bridge:${VERSION}}"
PUSH="${PUSH:-0}"
OCI_ARCHIVE="${OCI_ARCHIVE:-}"
TLS_VERIFY="${TLS_VERIFY:-1}"
DOCKER="${DOCKER:-docker}"
BUILDAH="${BUILDAH:-buildah}"

if [ ! -f "${WASM}" ]; then
  echo "make image: ${WASM} is missing: run \`make build\` first" >&2
  exit 1
fi
module_sha256="$(sha256sum "${WASM}" | cut -d ' ' -f 1)"
echo "module:        ${WASM} ($(wc -c < "${WASM}") bytes)"
echo "module sha256: ${module_sha256}"
echo "               (the WasmPlugin sha256 when the url is http(s):// or file://)"

builder=""
if command -v "${DOCKER}" > /dev/null 2>&1 \
  && "${DOCKER}" buildx version > /dev/null 2>&1 \
  && "${DOCKER}" info > /dev/null 2>&1; then
  builder="docker buildx"
elif command -v "${BUILDAH}" > /dev/null 2>&1; then
  builder="buildah"
fi

if [ -z "${builder}" ]; then
  cat >&2 << EOF

make image: no image builder here, so no image was built.
  It needs docker with the buildx plugin and a running engine, or buildah.
  The module above is ready all the same. Without a builder you can
  - push it as an OCI artifact with oras (docs/deployment.md, "OCI artifact"), or
  - serve it over https:// and put the module sha256 above in the WasmPlugin.
EOF
  exit 2
fi

# The build context holds the module and nothing else, with a fixed mtime, so
# the layer depends on the module's bytes only. Everything else the build
# writes stays in ${work}, outside the context.
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
context="${work}/context"
mkdir -p "${context}/target/wasm32-wasip1/release"
cp "${WASM}" "${context}/target/wasm32-wasip1/release/azp_bridge.wasm"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2> /dev/null || echo 0)}"
touch -d "@${epoch}" "${context}/target/wasm32-wasip1/release/azp_bridge.wasm"

digest=""
echo "image:         ${IMAGE} (${builder})"
case "${builder}" in
  "docker buildx")
    if [ "${TLS_VERIFY}" = 0 ]; then
      echo "make image: TLS_VERIFY=0 is for buildah; docker pushes over plain HTTP only to a registry the engine lists as insecure" >&2
    fi
    # One plain manifest (no attestation index), so the pushed digest is the
    # image digest Istio computes.
    output=--load
    [ "${PUSH}" = 1 ] && output=--push
    # The oci exporter needs a builder other than the plain docker driver
    # (e.g. `docker buildx create --use`) or the containerd image store.
    [ -n "${OCI_ARCHIVE}" ] && output="--output=type=oci,dest=${OCI_ARCHIVE}"
    SOURCE_DATE_EPOCH="${epoch}" "${DOCKER}" buildx build --provenance=false --sbom=false \
      -f deploy/oci/Dockerfile -t "${IMAGE}" "${output}" \
      --metadata-file "${work}/metadata.json" "${context}"
    if [ "${PUSH}" = 1 ]; then
      digest="$(grep -o '"containerimage.digest": *"sha256:[0-9a-f]*"' "${work}/metadata.json" \
        | grep -o '[0-9a-f]\{64\}' || true)"
    fi
    ;;
  buildah)
    storage=()
    if [ "${PUSH}" = 1 ] || [ -n "${OCI_ARCHIVE}" ]; then
      storage=(--root "${work}/storage" --runroot "${work}/run" --storage-driver vfs)
    fi
    # An OCI manifest with the compat variant's annotation; the creation time
    # is the commit's and buildah's version label is left out, so the image
    # depends on the module and the commit time only. FROM scratch and a COPY
    # run nothing: no container runtime, no daemon.
    "${BUILDAH}" "${storage[@]}" build --quiet --format oci --timestamp "${epoch}" --identity-label=false \
      --annotation module.wasm.image/variant=compat \
      -f deploy/oci/Dockerfile -t "${IMAGE}" "${context}" > /dev/null
    # Istio reads a compat image's layer as tar+gzip: gzip, whatever the
    # machine's containers.conf prefers.
    if [ -n "${OCI_ARCHIVE}" ]; then
      "${BUILDAH}" "${storage[@]}" push --quiet --compression-format gzip "${IMAGE}" "oci:${work}/layout:${IMAGE}"
      # The layout as a tar with fixed order, owners, modes and times: the
      # same image gives the same archive bytes (dist/SHA256SUMS).
      tar --create --file "${OCI_ARCHIVE}" --directory "${work}/layout" --format gnu --sort name \
        --mtime "@${epoch}" --owner 0 --group 0 --numeric-owner --mode u=rwX,go=rX \
        oci-layout index.json blobs
      digest="$(grep -o '"digest":"sha256:[0-9a-f]*"' "${work}/layout/index.json" | grep -o '[0-9a-f]\{64\}')"
    fi
    if [ "${PUSH}" = 1 ]; then
      tls=()
      [ "${TLS_VERIFY}" = 0 ] && tls=(--tls-verify=false)
      "${BUILDAH}" "${storage[@]}" push --quiet --compression-format gzip "${tls[@]}" \
        --digestfile "${work}/digest" "${IMAGE}"
      digest="$(grep -o '[0-9a-f]\{64\}' "${work}/digest" || true)"
    fi
    ;;
esac

if [ "${PUSH}" = 1 ] && [ -z "${digest}" ]; then
  echo "make image: pushed ${IMAGE}, but the builder reported no digest" >&2
  exit 1
fi
if [ -n "${OCI_ARCHIVE}" ]; then
  echo "oci archive:   ${OCI_ARCHIVE} (${IMAGE})"
  if [ -n "${digest}" ]; then
    echo "image digest:  ${digest}"
    echo "               (the WasmPlugin sha256 once the archive is copied unchanged to a registry,"
    echo "               e.g. skopeo copy oci-archive:${OCI_ARCHIVE}:${IMAGE} docker://REGISTRY/${IMAGE})"
  fi
elif [ -n "${digest}" ]; then
  echo "image digest:  ${digest}"
  echo "               (the WasmPlugin sha256 for url oci://${IMAGE})"
else
  echo "not pushed:    run \`IMAGE=REGISTRY/azp-bridge:${VERSION} PUSH=1 make image\` to push it"
  echo "               and print the image digest the WasmPlugin's sha256 needs."
fi
