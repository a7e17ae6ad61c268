//! A refused configuration (the secret's variable is not set) under each way
//! of loading the module, and the alerts that notice a lost bridge:
//! - a local module: Envoy refuses to start, whatever the failure policy;
//! - a remote module (`code.remote`, as Envoy Gateway and some xDS setups
//!   deliver it) with FAIL_OPEN (or the old `fail_open: true`): Envoy starts,
//!   refreshes pass unbridged, no azp_bridge_* series exists and
//!   `envoy_wasm_wasm_vm_count` is 0; with FAIL_RELOAD the filter's routes
//!   answer 503;
//! - every azp_bridge_* and envoy_* name in deploy/prometheus/azp-bridge-alerts.yaml
//!   and in the panels of deploy/grafana/azp-bridge-dashboard.json
//!   is what a real Envoy's /stats/prometheus exports, and the alerts for a
//!   lost bridge read series that are there when it runs and not when lost.

use crate::support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::http1::{self, form_post};
use support::upstream::Upstream;
use support::{repo_root, wasm_path, Envoy, EnvoySpec};

use support::TOKEN_PATH;
/// A variable nobody sets: the Secret never reached the proxy.
const SECRET_ENV: &str = "AZP_LOST_BRIDGE_SECRET";

fn plugin_config() -> String {
    format!(
        r#"{{"upstream_clusters":["keycloak"],"clients":[{{"client_id":"admin","client_secret_env":"{SECRET_ENV}","allowed_callers":["mobile"]}}]}}"#
    )
}

fn refresh_body() -> String {
    let payload = r#"{"iss":"http://keycloak.test/realms/demo","azp":"admin","typ":"Refresh"}"#;
    format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token=h.{}.s",
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// Serves one file to every GET, on 127.0.0.1, until dropped.
struct FileServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl FileServer {
    fn start(bytes: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if thread_stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    bytes.len()
                );
                let _ = stream.write_all(response.as_bytes());
                let _ = stream.write_all(&bytes);
            }
        });
        FileServer { port, stop }
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn sha256_hex(path: &std::path::Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    let hex = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(hex.len(), 64);
    hex
}

/// The shipped configuration with `policy` for failure_policy (or a whole
/// replacement line, such as `fail_open: true`).
fn spec(upstream_port: u16, policy_line: &str) -> EnvoySpec {
    EnvoySpec::new(&plugin_config(), upstream_port)
        .host_env_key(SECRET_ENV)
        .edit("failure_policy: FAIL_RELOAD", policy_line)
}

/// The same, with the module fetched by Envoy over HTTP (`code.remote`) from `files`.
fn remote_spec(upstream_port: u16, policy_line: &str, files: &FileServer) -> EnvoySpec {
    let wasm = wasm_path();
    spec(upstream_port, policy_line)
        .edit(
            &format!("local: {{ filename: {} }}", wasm.display()),
            &format!(
                "remote: {{ http_uri: {{ uri: \"http://127.0.0.1:{}/azp_bridge.wasm\", cluster: wasm_modules, timeout: 10s }}, sha256: {} }}",
                files.port,
                sha256_hex(&wasm)
            ),
        )
        .edit(
            "  clusters:\n",
            &format!(
                "  clusters:
  - name: wasm_modules
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: wasm_modules
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }} }}
",
                files.port
            ),
        )
}

/// Envoy's /stats/prometheus as series name -> value (labels dropped; the
/// values of one name summed).
fn prometheus(envoy: &Envoy) -> BTreeMap<String, f64> {
    let text = http1::get(envoy.admin_port, "/stats/prometheus").unwrap().body_str();
    let mut series = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name_labels, value) = line.rsplit_once(' ').unwrap();
        let name = name_labels.split('{').next().unwrap().to_owned();
        *series.entry(name).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    series
}

const REFUSED: &str =
    "`clients[0].client_secret_env` names environment variable AZP_LOST_BRIDGE_SECRET, which is not set in the VM";

#[test]
fn a_local_module_refuses_to_start_under_every_policy() {
    for policy in [
        "failure_policy: FAIL_OPEN",
        "fail_open: true",
        "failure_policy: FAIL_RELOAD",
        "failure_policy: FAIL_CLOSED",
    ] {
        let log = spec(support::free_port(), policy).expect_refused();
        assert!(log.contains(REFUSED), "{policy}:\n{log}");
    }
}

#[test]
fn a_remote_module_failing_open_passes_refreshes_unbridged() {
    let files = FileServer::start(std::fs::read(wasm_path()).unwrap());
    for policy in ["failure_policy: FAIL_OPEN", "fail_open: true"] {
        let upstream = Upstream::start();
        let envoy = remote_spec(upstream.port, policy, &files).start();
        let body = refresh_body();
        let response = http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
        assert_eq!(response.status, 200, "{policy}");
        assert_eq!(upstream.single().body_str(), body, "{policy}: forwarded unbridged");
        let log = envoy.wait_log(REFUSED);
        assert!(log.contains("Plugin azp_bridge failed to load"), "{policy}:\n{log}");
        // Nothing of the bridge to scrape; no Wasm VM.
        let series = prometheus(&envoy);
        assert_eq!(
            series.get("envoy_wasm_remote_load_fetch_successes"),
            Some(&1.0),
            "{policy}"
        );
        assert_eq!(series.get("envoy_wasm_wasm_vm_count"), Some(&0.0), "{policy}");
        let bridge: Vec<&String> = series.keys().filter(|n| n.starts_with("azp_bridge_")).collect();
        assert!(bridge.is_empty(), "{policy}: {bridge:?}");
    }
}

#[test]
fn a_remote_module_failing_closed_or_reloading_answers_503_on_its_routes() {
    let files = FileServer::start(std::fs::read(wasm_path()).unwrap());
    let upstream = Upstream::start();
    let envoy = remote_spec(upstream.port, "failure_policy: FAIL_RELOAD", &files).start();
    let body = refresh_body();
    let token = http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
    assert_eq!(token.status, 503);
    // The filter is off on other routes (disabled: true): they still work.
    let other = http1::exchange(envoy.port, &form_post("/realms/demo/account", &[], b"x=1"));
    assert_eq!(other.status, 200);
    assert_eq!(upstream.single().start_line, "POST /realms/demo/account HTTP/1.1");
}

// --- the alerts ---

fn alert_rules() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_root().join("deploy/prometheus/azp-bridge-alerts.yaml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    doc["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_sequence().unwrap().clone())
        .map(|rule| {
            (
                rule["alert"].as_str().unwrap().to_owned(),
                rule["expr"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The Envoy and azp-bridge metric names an expression reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| t.starts_with("azp_bridge_") || t.starts_with("envoy_"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_documented_alerts_read_series_that_exist_and_fire_on_a_lost_bridge() {
    let rules = alert_rules();
    let expr = |alert: &str| {
        rules
            .iter()
            .find(|(name, _)| name == alert)
            .unwrap_or_else(|| panic!("no alert {alert}"))
            .1
            .clone()
    };
    // The rules for a lost bridge, as the docs describe them.
    let missing = expr("AzpBridgeMissing");
    assert!(
        missing.contains("count by (namespace, pod) (envoy_server_live{"),
        "{missing}"
    );
    assert!(missing.contains("unless on (namespace, pod)"), "{missing}");
    assert!(
        missing.contains("count by (namespace, pod) (azp_bridge_rewritten{"),
        "{missing}"
    );
    assert!(expr("AzpBridgeNoWasmVm").starts_with("envoy_wasm_wasm_vm_count{"));
    assert!(expr("AzpBridgeNoWasmVm").trim_end().ends_with("} == 0"));
    assert!(expr("AzpBridgeAbsent").starts_with("absent(azp_bridge_rewritten{"));

    // A healthy Envoy (2 workers): every name the rules read exists.
    let upstream = Upstream::start();
    let healthy = spec(upstream.port, "failure_policy: FAIL_RELOAD")
        .env(SECRET_ENV, "alert-test-secret")
        .start();
    let body = refresh_body();
    assert_eq!(
        http1::exchange(healthy.port, &form_post(TOKEN_PATH, &[], body.as_bytes())).status,
        200
    );
    assert_eq!(healthy.counter("rewritten"), 1);
    let series = prometheus(&healthy);
    for (alert, expr) in &rules {
        for name in metric_names(expr) {
            assert!(
                series.contains_key(&name),
                "{alert}: {name} is not exported:\n{series:?}"
            );
        }
    }
    // The dashboard (deploy/grafana/): every series its panels read exists.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/grafana/azp-bridge-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut read = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            for name in metric_names(target["expr"].as_str().unwrap()) {
                assert!(
                    series.contains_key(&name),
                    "dashboard panel {}: {name} is not exported:\n{series:?}",
                    panel["title"]
                );
                read += 1;
            }
        }
    }
    assert!(read >= 18, "the dashboard reads {read} series");
    // The memory gauge: the VMs' linear memory, at least a page each.
    assert!(series["azp_bridge_memory_bytes"] >= 65_536.0, "{series:?}");
    assert_eq!(series["azp_bridge_rewritten"], 1.0);
    assert_eq!(series["azp_bridge_held_without_body"], 0.0);
    assert_eq!(series["envoy_server_live"], 1.0);
    // Not firing: the bridge's series exist, and so do VMs.
    assert!(series["envoy_wasm_wasm_vm_count"] > 0.0, "{series:?}");

    // The bridge lost (remote module, FAIL_OPEN, the secret missing): firing.
    let files = FileServer::start(std::fs::read(wasm_path()).unwrap());
    let lost = remote_spec(upstream.port, "failure_policy: FAIL_OPEN", &files).start();
    let series = prometheus(&lost);
    assert_eq!(series["envoy_server_live"], 1.0, "Envoy is up ...");
    assert!(
        !series.contains_key("azp_bridge_rewritten"),
        "... the bridge's series are absent ..."
    );
    assert_eq!(series["envoy_wasm_wasm_vm_count"], 0.0, "... and no VM runs");
    healthy.assert_log_clean(&["alert-test-secret"]);
}
