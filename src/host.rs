//! What the core needs from Envoy, as one trait: the shell (`src/filter.rs`)
//! implements it with proxy-wasm host calls, the tests with [`fake::FakeHost`].
//!
//! Every method is one host call (or none), made only when the core asks:
//! the request headers come all at once, so the policy can read several and
//! count repeated ones with one call. A host that refuses an edit says so
//! (`Err(Refused)`); the core logs it and carries on, never panics.

use crate::policy::HeaderPairs;
use std::time::Duration;

/// The host refused or failed a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// What a callback tells Envoy to do with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on: headers (or body) travel on.
    Continue,
    /// Hold what came so far (headers, or the body being buffered).
    Pause,
}

/// Envoy, as the core sees it.
pub trait Host {
    /// All request headers, names lower case, pseudo-headers included. Only
    /// readable in the request headers callback (later the SDK would trap).
    fn request_headers(&self) -> HeaderPairs;
    /// The Envoy cluster the request was routed to (`xds.cluster_name`).
    fn routed_cluster(&self) -> Option<Vec<u8>>;
    /// The host's wall clock since the Unix epoch.
    fn now(&self) -> Option<Duration>;
    /// Fills `bytes` from the host's random source (WASI `random_get`).
    fn random(&self, bytes: &mut [u8]) -> Result<(), Refused>;
    /// An environment variable of the VM (`vm_config.environment_variables`).
    fn env(&self, name: &str) -> Option<String>;
    /// Sets a property of the stream (`set_property`): Envoy keeps it in
    /// the stream's filter state, as `wasm.<name>`, for the access log.
    fn set_property(&mut self, name: &str, value: &[u8]) -> Result<(), Refused>;

    /// The first `len` bytes of the buffered request body (fewer, or none,
    /// if the host gives less).
    fn request_body(&self, len: usize) -> Vec<u8>;
    /// Replaces the whole buffered request body, `len` bytes long (Envoy
    /// accepts only `(0, full length)`).
    fn set_request_body(&mut self, len: usize, body: &[u8]) -> Result<(), Refused>;
    /// Sets (`Some`) or removes (`None`) a request header.
    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> Result<(), Refused>;
    /// Answers the request locally; the request goes no further.
    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> Result<(), Refused>;

    /// The response's `:status`.
    fn response_status(&self) -> Option<Vec<u8>>;
    /// Sets (`Some`) or removes (`None`) a response header.
    fn set_response_header(&mut self, name: &str, value: Option<&str>) -> Result<(), Refused>;
    /// The first `len` bytes of the buffered response body.
    fn response_body(&self, len: usize) -> Vec<u8>;
    /// Replaces the whole buffered response body, `len` bytes long.
    fn set_response_body(&mut self, len: usize, body: &[u8]) -> Result<(), Refused>;
}

/// Wall-clock milliseconds, 0 if the host has no clock.
pub fn now_ms<H: Host + ?Sized>(host: &H) -> u64 {
    host.now()
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
pub mod fake;
