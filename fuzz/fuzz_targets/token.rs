#![no_main]
#[path = "../../tests/support/invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|token: &[u8]| invariants::check_token(token));
