//! Any `:authority`, through a listener that strips no port, any port or its
//! own: a forged refresh is rewritten only when Envoy routes it to
//! Keycloak's virtual host (tests/support/invariants.rs, `check_authority`).
#![no_main]
#[path = "../../tests/support/invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    invariants::check_authority(data);
});
