//! docker-compose.yml without a Docker engine, the part that needs the built
//! module and Envoy: every mounted file exists (the module too), and the Envoy
//! configuration it mounts is the shipped template's and passes validation.
//! (Pinned versions: tests/docker_compose.rs, in the native tier.)

use crate::support;

use serde_yaml::Value;
use std::process::Command;
use support::{envoy_bin, repo_root, wasm_path, TempDir};

fn compose() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo_root().join("docker-compose.yml")).unwrap()).unwrap()
}

#[test]
fn every_mounted_file_exists() {
    wasm_path(); // the module the Envoy service mounts
    let compose = compose();
    let mut mounts = 0;
    for service in compose["services"].as_mapping().unwrap().values() {
        for volume in service["volumes"].as_sequence().unwrap() {
            let host = volume.as_str().unwrap().split(':').next().unwrap();
            assert!(repo_root().join(host).exists(), "{host} is mounted but missing");
            mounts += 1;
        }
    }
    assert_eq!(mounts, 3);
}

#[test]
fn mounted_envoy_config_is_the_rendered_template_and_validates() {
    let shipped = std::fs::read_to_string(repo_root().join("envoy/docker-compose.envoy.yaml")).unwrap();
    let render = Command::new(repo_root().join("scripts/render-envoy.sh"))
        .envs([
            ("LISTEN_ADDRESS", "0.0.0.0"),
            ("ADMIN_ADDRESS", "0.0.0.0"),
            ("UPSTREAM_HOST", "keycloak"),
            ("UPSTREAM_PORT", "8080"),
            ("WASM_PATH", "/etc/envoy/azp_bridge.wasm"),
        ])
        .output()
        .unwrap();
    assert!(render.status.success());
    let (_generated_note, body) = shipped.split_once('\n').unwrap();
    assert_eq!(
        body,
        String::from_utf8(render.stdout).unwrap(),
        "run `make compose-config`"
    );

    let dir = TempDir::new("compose");
    let local = shipped.replace("/etc/envoy/azp_bridge.wasm", &wasm_path().display().to_string());
    let path = dir.path.join("envoy.yaml");
    std::fs::write(&path, local).unwrap();
    let output = Command::new(envoy_bin())
        .args(["--mode", "validate", "-c"])
        .arg(&path)
        .env("ADMIN_CLIENT_SECRET", "x")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned() + &String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
}
