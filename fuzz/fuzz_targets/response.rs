//! The bridged response edit (src/response.rs) on any bytes: only the
//! `id_token` member of a JSON object goes, and nothing panics.
#![no_main]
#[path = "../../tests/support/invariants.rs"]
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    invariants::check_response(data);
});
