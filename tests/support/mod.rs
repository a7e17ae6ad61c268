//! Support for the native tier (`cargo test` at the root): no Envoy, no
//! Keycloak, no wasm build. The e2e tier has its own support module
//! (e2e/tests/e2e/support/), which includes `mesh` and `temp_dir` from here.
#![allow(dead_code, unused_imports)] // each test binary uses a part of it

pub mod invariants;
pub mod mesh;
mod temp_dir;

pub use temp_dir::TempDir;

use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the repository, by its path from the root.
pub fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap()
}

/// Every file under `dir` (a path from the repository's root), recursively.
pub fn files_under(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join(dir), &mut files);
    files.sort();
    files
}
