//! No Docker engine runs here, so docker-compose.yml is checked for what can
//! be checked: pinned versions agree and Keycloak runs as the tests' does.
//! That every mounted file exists (the module too) and that the Envoy
//! configuration it mounts is the shipped template's and passes validation is
//! checked by the e2e tier (e2e/tests/e2e/envoy/docker_compose.rs).

mod support;

use serde_yaml::Value;
use support::repo_root;

fn compose() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap()).unwrap()
}

fn pinned_keycloak_version() -> String {
    let script = std::fs::read_to_string(repo_root().join("scripts/keycloak.sh")).unwrap();
    let line = script.lines().find(|l| l.starts_with("KEYCLOAK_VERSION=")).unwrap();
    line.split(":-").nth(1).unwrap().trim_end_matches("}\"").to_owned()
}

#[test]
fn images_match_the_pinned_versions() {
    let compose = compose();
    let envoy_version = std::fs::read_to_string(repo_root().join("envoy/VERSION")).unwrap();
    assert_eq!(
        compose["services"]["keycloak"]["image"].as_str().unwrap(),
        format!("keycloak/keycloak:{}", pinned_keycloak_version())
    );
    assert_eq!(
        compose["services"]["envoy"]["image"].as_str().unwrap(),
        format!("envoyproxy/envoy:v{}", envoy_version.trim())
    );
}

#[test]
fn keycloak_runs_like_the_tests_keycloak() {
    let compose = compose();
    let command: Vec<&str> = compose["services"]["keycloak"]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let script = std::fs::read_to_string(repo_root().join("scripts/keycloak.sh")).unwrap();
    let features = command.iter().find(|c| c.starts_with("--features=")).unwrap();
    assert!(
        script.contains(features),
        "feature flags differ from scripts/keycloak.sh"
    );
    // The issuer is Envoy's published address.
    assert!(command.contains(&"--hostname=http://localhost:10000"));
    let ports = compose["services"]["envoy"]["ports"].as_sequence().unwrap();
    assert!(ports.iter().any(|p| p.as_str() == Some("127.0.0.1:10000:10000")));
}
