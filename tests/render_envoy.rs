//! scripts/render-envoy.sh as an operator runs it: relative paths from where
//! they stand, values kept byte for byte, every variable documented. (TLS to
//! Keycloak through the rendered configuration runs in a real Envoy:
//! e2e/tests/e2e/envoy/render_tls.rs.)

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use support::{repo_root, TempDir};

/// An inline secret with two spaces: a squeezing renderer would change it.
const SPACED_SECRET: &str = "pa  ss";

fn render(dir: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(repo_root().join("scripts/render-envoy.sh"))
        .current_dir(dir)
        .env_remove("PLUGIN_CONFIG_FILE")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn rendered(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// The plugin configuration line of a rendered configuration.
fn plugin_value(config: &str) -> String {
    let line = config.lines().find(|l| l.trim_start().starts_with("value: '")).unwrap();
    line.trim_start()
        .strip_prefix("value: '")
        .unwrap()
        .strip_suffix('\'')
        .unwrap()
        .to_owned()
}

/// A plugin configuration file as people write them: indented, on many lines.
fn write_plugin_config(dir: &Path) -> &'static str {
    std::fs::write(
        dir.join("my-config.json"),
        format!(
            "{{\r\n  \"upstream_clusters\": [\"keycloak\"],\n\n  \"clients\": [\n    {{\n      \"client_id\": \"admin\",\n      \"client_secret\": \"{SPACED_SECRET}\",\t\n      \"allowed_callers\": [\"mobile\"]\n    }}\n  ]\n}}\n"
        ),
    )
    .unwrap();
    "my-config.json"
}

#[test]
fn a_relative_plugin_config_file_is_read_from_where_you_stand_and_kept_exactly() {
    let dir = TempDir::new("render");
    let file = write_plugin_config(&dir.path);
    let config = rendered(&render(&dir.path, &[("PLUGIN_CONFIG_FILE", file)]));
    assert_eq!(
        plugin_value(&config),
        format!(
            r#"{{ "upstream_clusters": ["keycloak"], "clients": [ {{ "client_id": "admin", "client_secret": "{SPACED_SECRET}", "allowed_callers": ["mobile"] }} ] }}"#
        )
    );
    // A path that exists only in the repository is not read from there.
    let output = render(&dir.path, &[("PLUGIN_CONFIG_FILE", "envoy/demo-plugin-config.json")]);
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "render-envoy: PLUGIN_CONFIG_FILE {0}/envoy/demo-plugin-config.json: no such file (a relative path is read from {0})\n",
            dir.path.display()
        )
    );
    // Without it, the demo's configuration (the repository's file).
    let demo = rendered(&render(&dir.path, &[]));
    assert!(plugin_value(&demo).contains(r#""client_id": "spring-boot-admin-client""#));
}

#[test]
fn bad_switches_are_refused() {
    let dir = TempDir::new("render-bad");
    for (env, message) in [
        (
            vec![("HOLD_HEADERS", "yes")],
            "render-envoy: HOLD_HEADERS must be true or false\n",
        ),
        (
            vec![("UPSTREAM_TLS", "1")],
            "render-envoy: UPSTREAM_TLS must be true or false\n",
        ),
        (
            vec![("UPSTREAM_TLS", "true"), ("UPSTREAM_TLS_CERT_FILE", "/c.pem")],
            "render-envoy: set both UPSTREAM_TLS_CERT_FILE and UPSTREAM_TLS_KEY_FILE, or neither\n",
        ),
        (
            vec![("UPSTREAM_TLS", "true"), ("UPSTREAM_TLS_SNI", "a\"b")],
            "render-envoy: UPSTREAM_TLS_SNI must be a host name\n",
        ),
    ] {
        let output = render(&dir.path, &env);
        assert!(!output.status.success(), "{env:?}");
        assert_eq!(String::from_utf8_lossy(&output.stderr), message, "{env:?}");
    }
    // A template without the plain-HTTP line TLS replaces.
    std::fs::write(dir.path.join("other.yaml"), "static_resources: {}\n").unwrap();
    let output = Command::new(repo_root().join("scripts/render-envoy.sh"))
        .arg("other.yaml")
        .current_dir(&dir.path)
        .env("UPSTREAM_TLS", "true")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "render-envoy: template {}/other.yaml has no \"    transport_socket: null\" line for UPSTREAM_TLS\n",
            dir.path.display()
        )
    );
    // Off: plain HTTP, the template's line as it is.
    let plain = rendered(&render(&dir.path, &[("UPSTREAM_TLS", "false")]));
    assert!(plain.contains("\n    transport_socket: null\n"), "{plain}");
    assert!(!plain.contains("transport_sockets.tls"), "{plain}");
}

/// Every variable the script reads, and every placeholder of the template,
/// is documented in docs/configuration.md ("Running against your own Keycloak").
#[test]
fn every_variable_is_documented() {
    let script = std::fs::read_to_string(repo_root().join("scripts/render-envoy.sh")).unwrap();
    let template = std::fs::read_to_string(repo_root().join("envoy/azp-bridge.yaml")).unwrap();
    let doc = std::fs::read_to_string(repo_root().join("docs/configuration.md")).unwrap();
    let mut names = BTreeSet::new();
    for text in [&script, &template] {
        for piece in text.split("${").skip(1) {
            let name: String = piece
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            if name.len() > 2 {
                names.insert(name);
            }
        }
    }
    // Built by the script from PLUGIN_CONFIG_FILE, not a setting.
    names.remove("PLUGIN_CONFIG");
    for expected in [
        "LISTEN_ADDRESS",
        "PLUGIN_CONFIG_FILE",
        "HOST_ENV_KEYS",
        "HOLD_HEADERS",
        "UPSTREAM_TLS",
        "UPSTREAM_TLS_CA_FILE",
    ] {
        assert!(
            names.contains(expected),
            "{expected} not found in the script: {names:?}"
        );
    }
    for name in &names {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "docs/configuration.md does not document {name} (a table row `| `{name}` |`)"
        );
    }
}
