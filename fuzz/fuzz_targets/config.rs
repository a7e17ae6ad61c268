#![no_main]
#[path = "../../tests/support/invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|json: &[u8]| invariants::check_config(json, "EnvSecretValue42"));
