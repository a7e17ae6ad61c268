#!/usr/bin/env bash
# `make release`: the release files of the checked-out commit, in dist/:
#
#   azp_bridge.wasm               the module, built from scratch (scripts/build-wasm.sh
#                                 --locked, in target/dist): the same bytes as
#                                 any build of this commit with the pinned toolchain
#   azp_bridge.cdx.json           CycloneDX SBOM (JSON, spec 1.5) of the crates
#                                 compiled into the module: wasm32-wasip1, default
#                                 features, no dev- or build-dependencies
#   LICENSE, CHANGELOG.md         under what terms, and what this version holds
#   azp-bridge-VERSION.oci.tar    the compat image (deploy/oci/Dockerfile) as an OCI
#                                 archive, only when docker buildx or buildah is installed
#                                 (`make setup` installs buildah); with buildah the same
#                                 commit gives the same bytes, and its image digest is printed
#   SHA256SUMS                    `sha256sum -c SHA256SUMS` checks all of the above
#
# It refuses a work tree with changes: a release is the build of a commit.
set -euo pipefail
cd "$(dirname "$0")/.."

# The SBOM tool, installed into the project (.tools, ignored by git) on first use.
CYCLONEDX_VERSION=0.5.9
TOOLS="${PWD}/.tools"
DIST=dist

fail() {
  echo "make release: $*" >&2
  exit 1
}

[ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ] || fail "not a git checkout: a release is the build of a commit"
if [ -n "$(git status --porcelain)" ]; then
  git status --short >&2
  fail "the work tree has changes (above): commit or stash them first; a release is the build of a commit"
fi

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
commit="$(git rev-parse HEAD)"
case "${version}" in
  *-*) prerelease=1 ;;
  *)
    prerelease=0
    grep -q "^## \[${version//./\\.}\] - [0-9]\{4\}-[0-9]\{2\}-[0-9]\{2\}$" CHANGELOG.md \
      || fail "CHANGELOG.md has no \`## [${version}] - YYYY-MM-DD\` heading for the version in Cargo.toml"
    ;;
esac
tag="$(git tag --points-at HEAD | grep -x "v${version}" || true)"
echo "release: azp-bridge ${version} at ${commit}${tag:+ (tag ${tag})}"

rm -rf "${DIST}"
mkdir -p "${DIST}"
trap 'rm -f azp_bridge.cdx.json "${DIST}/.image.log"' EXIT

# The module, from scratch in its own target dir.
rm -rf target/dist
unset AZP_BRIDGE_COMMIT # the clean commit's own
scripts/build-wasm.sh --target-dir target/dist
cp target/dist/wasm32-wasip1/release/azp_bridge.wasm "${DIST}/azp_bridge.wasm"

# The SBOM. SOURCE_DATE_EPOCH (the commit's time) fixes its timestamp, and the
# checkout's path in the tool's references becomes /azp-bridge, as in the
# module: the same commit gives the same SBOM in any directory.
installed="$("${TOOLS}/bin/cargo-cyclonedx" cyclonedx --version 2>/dev/null | awk '{ print $NF }' || true)"
if [ "${installed}" != "${CYCLONEDX_VERSION}" ]; then
  echo "release: installing cargo-cyclonedx ${CYCLONEDX_VERSION} into .tools (first run only; compiles for a few minutes)"
  cargo install --locked --quiet cargo-cyclonedx --version "${CYCLONEDX_VERSION}" --root "${TOOLS}"
fi
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" PATH="${TOOLS}/bin:${PATH}" \
  cargo cyclonedx --quiet --format json --spec-version 1.5 --target wasm32-wasip1 \
  --no-build-deps --override-filename azp_bridge.cdx
root_pattern="$(pwd -P | sed 's/[][\.*^$|/]/\\&/g')"
sed "s/path+file:\/\/${root_pattern}/path+file:\/\/\/azp-bridge/g" azp_bridge.cdx.json > "${DIST}/azp_bridge.cdx.json"

cp LICENSE CHANGELOG.md "${DIST}/"

# The compat image as an OCI archive, when an image builder is installed.
archive="azp-bridge-${version}.oci.tar"
status=0
WASM="${DIST}/azp_bridge.wasm" IMAGE="azp-bridge:${version}" OCI_ARCHIVE="${PWD}/${DIST}/${archive}" \
  deploy/oci/build-image.sh > "${DIST}/.image.log" 2>&1 || status=$?
case "${status}" in
  0)
    echo "release: image azp-bridge:${version} written to ${DIST}/${archive}"
    image_digest="$(sed -n 's/^image digest: *//p' "${DIST}/.image.log")"
    if [ -n "${image_digest}" ]; then
      echo "release: image digest ${image_digest}: the WasmPlugin sha256 for an oci:// url once the"
      echo "         archive is copied unchanged to a registry (skopeo copy oci-archive:${DIST}/${archive}:azp-bridge:${version} docker://...)"
    fi
    ;;
  2) echo "release: no image builder here (docker buildx with a running engine, or buildah): no OCI archive in ${DIST}/; \`make image\` on a machine with one" ;;
  *)
    cat "${DIST}/.image.log" >&2
    fail "building the image failed (above)"
    ;;
esac

(cd "${DIST}" && sha256sum -- azp_bridge.wasm azp_bridge.cdx.json LICENSE CHANGELOG.md \
  $([ -f "${archive}" ] && echo "${archive}") > SHA256SUMS)

echo "release: built with $(rustc --version), $(wasm-opt --version), cargo-cyclonedx ${CYCLONEDX_VERSION}"
echo "release: the module says: azp-bridge ${version} (${commit:0:7}) configured: ..."
echo "release: ${DIST}/"
(cd "${DIST}" && ls -l --time-style=+ -- * | awk '{ printf "  %10s  %s\n", $5, $NF }')
echo "release: ${DIST}/SHA256SUMS"
sed 's/^/  /' "${DIST}/SHA256SUMS"
if [ "${prerelease}" = 1 ]; then
  echo "release: ${version} is a pre-release version: this dist/ is a snapshot of the way to ${version%%-*}, not that release (CHANGELOG.md says how to release)"
fi
