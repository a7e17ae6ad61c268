//! A configuration pushed to a running Envoy (a file-based dynamic listener,
//! as xDS would) that azp-bridge refuses is rejected as a whole, and the old
//! configuration keeps serving; a valid one is applied.

use crate::support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::http1::{self, form_post};
use support::upstream::Upstream;
use support::{envoy_bin, free_port, local_values, render, repo_root, wasm_path, TempDir};

use support::TOKEN_PATH;

fn plugin(secret: &str) -> String {
    format!(
        r#"{{"upstream_clusters":["keycloak"],"clients":[{{"client_id":"admin","client_secret":"{secret}","allowed_callers":["mobile"]}}]}}"#
    )
}

/// The shipped template's listener, as an LDS resource file.
fn lds(listen_port: u16, plugin_config: &str) -> String {
    let template = std::fs::read_to_string(repo_root().join("envoy/azp-bridge.yaml")).unwrap();
    let values = local_values([listen_port, 0, 0], plugin_config, false, &[], &wasm_path());
    let config = render(&template, &values);
    let start = config.find("  - name: keycloak_front").unwrap();
    let end = config.find("  clusters:").unwrap();
    let listener: String = config[start..end]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    let listener = listener.replacen(
        "- name: keycloak_front",
        "- \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n  name: keycloak_front",
        1,
    );
    format!("resources:\n{listener}")
}

fn lds_stat(admin_port: u16, name: &str) -> u64 {
    let Ok(stats) = http1::get(admin_port, "/stats?filter=listener_manager.lds") else {
        return 0;
    };
    let stats = stats.body_str();
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("listener_manager.lds.{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_refused_configuration_keeps_the_old_one_serving() {
    let upstream = Upstream::start();
    let dir = TempDir::new("lds");
    std::fs::create_dir_all(dir.path.join("tmp")).unwrap();
    let (listen_port, admin_port) = (free_port(), free_port());
    std::fs::write(dir.path.join("lds.yaml"), lds(listen_port, &plugin("first-secret"))).unwrap();
    std::fs::write(
        dir.path.join("bootstrap.yaml"),
        support::lds::bootstrap(&dir.path, admin_port, "azp-bridge-test", &[("keycloak", upstream.port)]),
    )
    .unwrap();
    let log = dir.path.join("envoy.log");
    let _envoy = Child(
        Command::new(envoy_bin())
            .arg("-c")
            .arg(dir.path.join("bootstrap.yaml"))
            .args(["--concurrency", "1", "--disable-hot-restart", "--log-path"])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the first listener", || {
        lds_stat(admin_port, "update_success") >= 1 && http1::get(listen_port, "/").is_ok()
    });

    let payload = r#"{"iss":"http://k/realms/demo","azp":"admin"}"#;
    let body = format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token=h.{}.s",
        URL_SAFE_NO_PAD.encode(payload)
    );
    let expect =
        |secret: &str| body.replace("&client_id=mobile", "") + &format!("&client_id=admin&client_secret={secret}");
    let refresh = || {
        let before = upstream.requests().len();
        assert_eq!(
            http1::exchange(listen_port, &form_post(TOKEN_PATH, &[], body.as_bytes())).status,
            200
        );
        upstream.wait_for(before + 1)[before].body_str()
    };
    assert_eq!(refresh(), expect("first-secret"));

    // Refused: allowed_callers missing.
    let rejected_before = lds_stat(admin_port, "update_rejected");
    support::lds::replace(
        &dir.path,
        &lds(
            listen_port,
            r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"bad-secret"}]}"#,
        ),
    );
    wait_for("the rejection", || {
        lds_stat(admin_port, "update_rejected") > rejected_before
    });
    assert_eq!(refresh(), expect("first-secret"), "the old configuration keeps serving");
    wait_for("the refusal in the log", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("`clients[0].allowed_callers` is missing")
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("bad-secret") && !text.contains("first-secret"),
        "a secret in the log"
    );

    // Applied: a valid new configuration.
    let success_before = lds_stat(admin_port, "update_success");
    support::lds::replace(&dir.path, &lds(listen_port, &plugin("second-secret")));
    wait_for("the update", || lds_stat(admin_port, "update_success") > success_before);
    wait_for("the new secret in use", || refresh() == expect("second-secret"));
}
