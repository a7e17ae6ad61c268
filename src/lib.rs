//! azp-bridge: an Envoy proxy-wasm filter that lets one Keycloak client
//! refresh (revoke, log out with) tokens issued to another, by swapping the
//! caller's client credentials for those of the token's `azp` client.
//!
//! Everything that decides lives in plain Rust modules ([`policy`] and the
//! parsers it uses), tested natively; `filter` adapts it to proxy-wasm (with
//! `host_headers`, its one raw host call) and is only built for wasm.

// A panic traps the VM and takes the filter down for every request on that
// worker: nothing outside tests may unwrap, index or panic.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::string_slice
)]

pub mod assertion;
pub mod basic;
pub mod config;
pub mod content_type;
pub mod endpoint;
pub mod form;
pub mod held;
pub mod policy;
pub mod redact;
pub mod response;
pub mod throttle;
pub mod token;

#[cfg(target_arch = "wasm32")]
mod filter;
