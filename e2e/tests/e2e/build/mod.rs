//! Needs the Rust toolchain with the wasm32-wasip1 target and git, and minutes:
//! whole release builds of the module.

mod reproducible;
