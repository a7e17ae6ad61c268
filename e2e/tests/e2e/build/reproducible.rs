//! The release module is reproducible: two clean clones of HEAD, in two
//! directories of different lengths, each built by scripts/build-wasm.sh
//! into its own target directory, give byte-identical modules. This is what a
//! user does to verify a published module (README: "Verifying a release").
//!
//! It clones HEAD, so it works with a work tree that has changes (and then
//! checks the last commit, not them). Cargo runs offline: `cargo test` has
//! fetched every crate the module needs. The clones are removed on failure too.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use support::{repo_root, TempDir};

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn sha256(path: &Path) -> String {
    let line = run(Command::new("sha256sum").arg(path));
    line.split_whitespace().next().unwrap().to_owned()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// Clones HEAD into `clone` and builds the release module there, as a user
/// would: its own target directory, nothing shared but the cargo home.
fn clone_and_build(commit: &str, clone: &Path) -> PathBuf {
    run(Command::new("git")
        .args(["clone", "--quiet"])
        .arg(repo_root())
        .arg(clone));
    run(Command::new("git")
        .args(["-c", "advice.detachedHead=false", "checkout", "--quiet", commit])
        .current_dir(clone));
    let target = clone.join("target");
    run(Command::new(clone.join("scripts/build-wasm.sh"))
        .arg("--target-dir")
        .arg(&target)
        .current_dir(clone)
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("AZP_BRIDGE_COMMIT"));
    target.join("wasm32-wasip1/release/azp_bridge.wasm")
}

#[test]
fn two_clones_in_different_directories_build_identical_modules() {
    let root = repo_root();
    if !root.join(".git").exists() {
        eprintln!("not a git checkout: nothing to clone, skipped");
        return;
    }
    let commit = run(Command::new("git").args(["rev-parse", "HEAD"]).current_dir(&root));
    let dir = TempDir::new("reproducible");

    let mut modules = Vec::new();
    for name in ["a", "clone-in-a-longer-directory"] {
        let started = Instant::now();
        let clone = dir.path.join(name);
        let module = clone_and_build(&commit, &clone);
        let bytes = std::fs::read(&module).unwrap();
        eprintln!(
            "{}: {} bytes, sha256 {}, built in {:.0?}",
            module.display(),
            bytes.len(),
            sha256(&module),
            started.elapsed()
        );
        modules.push((clone, module, bytes));
    }

    let (clone_a, module_a, a) = &modules[0];
    let (clone_b, module_b, b) = &modules[1];
    if a != b {
        // Keep both for a diff (e.g. wasm-objdump, or `cmp -l`); the clones go.
        let keep = root.join("target/reproducible-mismatch");
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(module_a, keep.join("a.wasm")).unwrap();
        std::fs::copy(module_b, keep.join("b.wasm")).unwrap();
        panic!(
            "the two builds of {commit} differ ({} and {} bytes); both modules are in {}",
            a.len(),
            b.len(),
            keep.display()
        );
    }

    // The module says which commit it is, clean; and no build path is in it.
    let short = &commit[..7];
    assert!(contains(a, short.as_bytes()), "the module does not carry {short}");
    assert!(
        !contains(a, format!("{short}-dirty").as_bytes()),
        "a clean clone built as dirty"
    );
    for clone in [clone_a, clone_b] {
        let path = clone.to_string_lossy();
        assert!(!contains(a, path.as_bytes()), "the module holds the build path {path}");
    }
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo").into_os_string()))
    {
        let home = home.to_string_lossy().into_owned();
        assert!(!contains(a, home.as_bytes()), "the module holds the cargo home {home}");
    }
    eprintln!(
        "reproducible: {commit} gives the same {} bytes from both clones",
        a.len()
    );
}
