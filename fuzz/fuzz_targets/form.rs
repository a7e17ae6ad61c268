#![no_main]
#[path = "../../tests/support/invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|body: &[u8]| invariants::check_form(body));
