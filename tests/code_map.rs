//! The documents that name the code, checked against it (native, no Envoy):
//! ARCHITECTURE.md's code map names every module of src/, and the counter
//! names have one source, src/counters.rs, which the documented table and
//! every counter the documents, alerts and dashboards mention must match.

mod support;

use std::path::PathBuf;
use support::{files_under, read, repo_root};

/// Every `.rs` file under src/, relative to the repository (`src/x.rs`).
fn src_files() -> Vec<String> {
    files_under("src")
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| p.strip_prefix(repo_root()).unwrap().display().to_string())
        .collect()
}

#[test]
fn the_code_map_names_every_module() {
    let architecture = read("ARCHITECTURE.md");
    let map = architecture
        .split("## Code map")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("ARCHITECTURE.md has a `## Code map` section");
    let missing: Vec<String> = src_files()
        .into_iter()
        .filter(|file| !map.contains(&format!("`{file}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name {missing:?}"
    );
}

/// The rows of docs/operations.md's counter and gauge tables: `| `azp_bridge.<name>` | ... |`.
fn documented_counters() -> Vec<String> {
    read("docs/operations.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `azp_bridge."))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_owned()))
        .collect()
}

#[test]
fn the_metric_tables_are_what_the_code_exports() {
    let mut documented = documented_counters();
    let mut defined = azp_bridge::counters::names();
    defined.extend(azp_bridge::counters::gauge_names());
    assert_eq!(documented.len(), defined.len(), "{documented:?}\n{defined:?}");
    documented.sort();
    defined.sort();
    assert_eq!(documented, defined);
}

/// Every concrete counter a document, alert or dashboard names, in `/stats`
/// form (`azp_bridge.passed.ambiguous`) or Prometheus form
/// (`azp_bridge_passed_ambiguous`), is one the code defines.
#[test]
fn every_counter_mentioned_exists() {
    let mut defined = azp_bridge::counters::names();
    defined.extend(azp_bridge::counters::gauge_names());
    let prometheus: Vec<String> = defined.iter().map(|n| n.replace('.', "_")).collect();
    // Not counters: the module's file names, and the access log's property.
    let property = azp_bridge::access_log::PROPERTY.trim_start_matches("azp_bridge.");
    let not_counters = ["wasm", "cdx.json", property];
    let mut files: Vec<PathBuf> = ["README.md", "SECURITY.md", "ARCHITECTURE.md"]
        .iter()
        .map(|f| repo_root().join(f))
        .collect();
    files.extend(files_under("docs"));
    files.extend(files_under("deploy"));
    let mut checked = 0;
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (at, _) in text.match_indices("azp_bridge") {
            let rest = &text[at + "azp_bridge".len()..];
            let Some(separator) = rest.chars().next().filter(|c| *c == '.' || *c == '_') else {
                continue;
            };
            let name: String = rest[1..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == '.')
                .collect();
            let name = name.trim_end_matches(['.', '_']).to_owned();
            // Placeholders (`azp_bridge.<name>`, `azp_bridge_...`) and file names.
            if name.is_empty() || rest[1..].starts_with('<') || not_counters.contains(&name.as_str()) {
                continue;
            }
            let known = if separator == '.' {
                defined.contains(&name) || defined.iter().any(|d| d.starts_with(&format!("{name}.")))
            } else {
                prometheus.contains(&name) || prometheus.iter().any(|p| p.starts_with(&format!("{name}_")))
            };
            assert!(
                known,
                "{} names azp_bridge{separator}{name}, which src/counters.rs does not define",
                path.strip_prefix(repo_root()).unwrap().display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} counter mentions found");
}
