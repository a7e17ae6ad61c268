//! azp-bridge's second test tier, one binary: the suites that need more than
//! the Rust toolchain, in modules named by what they need. The first tier,
//! `cargo test` at the repository root, needs none of it.
//!
//! - `envoy`: a real Envoy (the project's `.venv`, or `ENVOY_BIN`) running the
//!   release module, which `support::wasm_path` builds once (scripts/build-wasm.sh)
//!   unless `AZP_BRIDGE_WASM` names one;
//! - `keycloak`: a real Keycloak (scripts/keycloak.sh) behind Envoy, one server
//!   for every scenario;
//! - `registry`: `make image` pushed to a local docker-registry (buildah, skopeo);
//! - `mesh_tools`: Envoy Gateway's own translation (`egctl`; ignored unless
//!   asked for: `make check-manifests`);
//! - `build`: the release module built from two clean clones.
//!
//! `make e2e` runs it all (Keycloak after the rest, so that its start-up does
//! not compete with the Envoy suites); `cargo test -p azp-bridge-e2e -- envoy::`
//! picks one module. Every process a test starts, it stops, also on failure.

mod build;
mod envoy;
mod keycloak;
mod mesh_tools;
mod registry;
mod soak;
mod support;
