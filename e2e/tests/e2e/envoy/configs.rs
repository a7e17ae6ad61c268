//! Every Envoy configuration the project ships passes `envoy --mode validate`
//! with the real module loaded (so the plugin configuration is checked too).

use crate::support;

use std::collections::HashMap;
use std::process::Command;
use support::{envoy_bin, local_values, render, repo_root, wasm_path, TempDir};

const PLUGIN_CONFIG: &str = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"spring-boot-admin-client","client_secret_env":"ADMIN_CLIENT_SECRET","allowed_callers":["mobile-app-client"]}]}"#;

fn validate(config: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = TempDir::new("validate");
    let path = dir.path.join("envoy.yaml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(envoy_bin())
        .args(["--mode", "validate", "-c"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn template_values(hold_headers: bool) -> HashMap<&'static str, String> {
    local_values(
        [10000, 9901, 8080],
        PLUGIN_CONFIG,
        hold_headers,
        &["ADMIN_CLIENT_SECRET"],
        &wasm_path(),
    )
}

#[test]
fn shipped_template_validates_in_both_modes() {
    let template = std::fs::read_to_string(repo_root().join("envoy/azp-bridge.yaml")).unwrap();
    for hold_headers in [false, true] {
        let config = render(&template, &template_values(hold_headers));
        let (ok, output) = validate(&config, &[("ADMIN_CLIENT_SECRET", "x")]);
        assert!(ok, "hold_headers={hold_headers}:\n{output}");
        assert_identifies_itself(&output);
    }
}

/// The module's one info line says which build runs, and no client id:
/// `azp-bridge <crate version> (<commit>) configured: ...` (PLUGIN_CONFIG
/// leaves `hold_headers` at its default in both Envoy modes).
fn assert_identifies_itself(output: &str) {
    let prefix = format!("azp-bridge {} (", support::package_version());
    let line = output
        .lines()
        .find(|line| line.contains(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line:\n{output}"));
    let rest = &line[line.find(&prefix).unwrap() + prefix.len()..];
    let (commit, rest) = rest.split_once(") ").unwrap();
    let hex = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(
        commit == "unknown" || (hex.len() == 7 && hex.bytes().all(|b| b.is_ascii_hexdigit())),
        "{line}"
    );
    assert_eq!(
        rest, "configured: 1 client(s), hold_headers=false, max_body_bytes=65536",
        "{line}"
    );
    assert!(
        !line.contains("spring-boot-admin-client") && !line.contains("mobile-app-client"),
        "{line}"
    );
}

#[test]
fn validation_catches_a_bad_plugin_configuration() {
    let template = std::fs::read_to_string(repo_root().join("envoy/azp-bridge.yaml")).unwrap();
    let config = render(&template, &template_values(false));
    // The secret's environment variable is not set: the module refuses.
    let (ok, output) = validate(&config, &[]);
    assert!(!ok, "{output}");
    assert!(
        output.contains("`clients[0].client_secret_env` names environment variable ADMIN_CLIENT_SECRET"),
        "{output}"
    );
}
