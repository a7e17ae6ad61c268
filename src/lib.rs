//! azp-bridge: an Envoy proxy-wasm filter that lets one Keycloak client
//! refresh (revoke, log out with) tokens issued to another, by swapping the
//! caller's client credentials for those of the token's `azp` client.
//!
//! Everything that decides lives in plain Rust modules, tested natively:
//! [`policy`] (pure: which requests, and what the forwarded one looks like)
//! and the parsers it uses; [`stream`] (the request and response state
//! machines, with the [`header_mode`] rules) and [`plugin`] (what one
//! configuration's requests share, with the [`counters`]), which reach Envoy
//! only through the [`host::Host`] trait. `filter` implements that trait
//! with proxy-wasm host calls and forwards the callbacks; it is only built
//! for wasm.

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

pub mod access_log;
pub mod assertion;
pub mod basic;
pub mod config;
pub mod content_type;
pub mod counters;
pub mod endpoint;
pub mod form;
pub mod header_mode;
pub mod held;
pub mod host;
pub mod json_members;
pub mod plugin;
pub mod policy;
pub mod redact;
pub mod response;
pub mod stream;
pub mod throttle;
pub mod token;

#[cfg(target_arch = "wasm32")]
mod filter;
