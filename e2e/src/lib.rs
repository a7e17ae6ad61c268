//! Nothing here: the package is its test binary, `tests/e2e/main.rs` (run by
//! `make e2e`, or `cargo test -p azp-bridge-e2e`).
