//! What the operator documentation promises, checked against the files
//! (no Envoy here; the behaviour behind each point is tested elsewhere):
//! placeholder commands stop on an unset variable instead of deploying an
//! unpinned module, the failure-policy summaries say what
//! e2e/tests/e2e/envoy/lost_bridge.rs shows for a remote module, and docs/compatibility.md
//! names the tool versions scripts/check-manifests.sh pins.

mod support;

use std::path::PathBuf;
use support::{files_under, read, repo_root};

/// README.md, docs/ and every file in deploy/.
fn operator_files() -> Vec<PathBuf> {
    let mut files = vec![repo_root().join("README.md")];
    files.extend(files_under("docs"));
    files.extend(files_under("deploy"));
    files
}

#[test]
fn placeholder_commands_stop_on_an_unset_variable() {
    let mut commands = 0;
    for path in operator_files() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines().filter(|l| l.contains("sed ") || l.contains("-e \"s|")) {
            for (placeholder, variable) in [("IMAGE_DIGEST|", "DIGEST"), ("REGISTRY|", "REGISTRY")] {
                if !line.contains(placeholder) {
                    continue;
                }
                commands += 1;
                assert!(
                    line.contains(&format!("${{{variable}:?")),
                    "{}: `{}` fills {placeholder} without a ${{{variable}:?}} guard (an unset variable leaves it empty)",
                    path.display(),
                    line.trim()
                );
                assert!(
                    !line.contains(&format!("${variable}|")) && !line.contains(&format!("${{{variable}}}|")),
                    "{}: `{}`",
                    path.display(),
                    line.trim()
                );
            }
        }
    }
    assert!(commands >= 4, "found {commands} placeholder substitutions");
}

#[test]
fn oras_digests_lose_their_sha256_prefix() {
    let guide = read("docs/deployment.md");
    let resolve = guide.lines().position(|l| l.contains("oras resolve")).unwrap();
    let next = guide.lines().nth(resolve + 1).unwrap();
    assert!(next.contains("${DIGEST#sha256:}"), "{next}");
    assert!(guide.contains("`oras resolve` prints `sha256:<hex>`"));
}

#[test]
fn failure_policy_summaries_say_what_a_remote_module_does() {
    for path in operator_files() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            !text.contains("refused under every policy: failing open does not hide it"),
            "{} repeats the claim e2e/tests/e2e/envoy/lost_bridge.rs disproves for a remote module",
            path.display()
        );
    }
    for (file, needles) in [
        // The README's summary; the chapter is docs/deployment.md's "Failure policy".
        (
            "README.md",
            &[
                "starts and serves **without the bridge**",
                "answers **500 to every request on that listener**",
                "docs/deployment.md#failure-policy",
            ][..],
        ),
        (
            "docs/deployment.md",
            &[
                "**the filter is skipped: refreshes pass unbridged, silently**",
                "e2e/tests/e2e/envoy/lost_bridge.rs",
                "from Istio 1.27",
            ][..],
        ),
        (
            "deploy/envoy-gateway/azp-bridge.yaml",
            &[
                "refused configuration is NOT refused here",
                "e2e/tests/e2e/envoy/lost_bridge.rs",
            ][..],
        ),
        (
            "deploy/istio/wasmplugin.yaml",
            &[
                "answers 500 to every request on the",
                "FAIL_RELOAD exists from Istio 1.27",
            ][..],
        ),
        (
            "deploy/istio/envoyfilter-hold-headers.yaml",
            &["Istio 1.27 or", "only if it is new enough to know it"][..],
        ),
    ] {
        // Line breaks and comment markers aside: prose is rewrapped.
        let flat = |t: &str| t.split_whitespace().filter(|w| *w != "#").collect::<Vec<_>>().join(" ");
        let text = flat(&read(file));
        for needle in needles {
            assert!(text.contains(&flat(needle)), "{file} does not say {needle:?}");
        }
    }
}

#[test]
fn compatibility_doc_names_the_tool_versions_check_manifests_pins() {
    let script = read("scripts/check-manifests.sh");
    let pinned = |name: &str| {
        script
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or_else(|| panic!("scripts/check-manifests.sh sets {name}"))
            .to_owned()
    };
    let doc = read("docs/compatibility.md");
    for (name, module) in [
        ("ISTIO_VERSION", "istio.io/istio"),
        ("EG_VERSION", "github.com/envoyproxy/gateway"),
    ] {
        let version = pinned(name);
        let row = format!("`{module}` `{version}`");
        assert!(doc.contains(&row), "docs/compatibility.md does not name {row}");
    }
    assert!(doc.contains("make check-manifests"));
    let makefile = read("Makefile");
    assert!(makefile.contains("scripts/check-manifests.sh"));
    assert!(read("scripts/test-matrix.sh").contains("scripts/check-manifests.sh"));
}
