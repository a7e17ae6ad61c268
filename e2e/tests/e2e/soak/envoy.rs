//! The soak's Envoy: the shipped listener twice (one per header mode) in an
//! LDS file that Envoy watches, so that a configuration push is a file
//! replaced, as a control plane's would be; the stats it is measured by.

use crate::support::http1;
use crate::support::{envoy_bin, free_port, local_values, render, repo_root, wasm_path, TempDir};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a replaced listener drains (Envoy's `--drain-time-s`; its
/// default, 600 s, would keep ten generations alive with a push a minute;
/// Istio's proxies use 45 s). Shorter than the push period, so at most one
/// old generation drains at a time.
pub const DRAIN_SECONDS: u64 = 20;

pub struct SoakEnvoy {
    child: Child,
    pub streamed_port: u16,
    pub held_port: u16,
    pub admin_port: u16,
    log_path: PathBuf,
    dir: TempDir,
}

/// The shipped template's listener (envoy/azp-bridge.yaml) as one LDS
/// resource, routed by the `x-soak-cluster` header (the load picks the real
/// Keycloak or the stand-in per request).
fn listener(name: &str, port: u16, plugin_config: &str, hold_headers: bool) -> String {
    let template = std::fs::read_to_string(repo_root().join("envoy/azp-bridge.yaml")).unwrap();
    let values = local_values([port, 0, 0], plugin_config, hold_headers, &[], &wasm_path());
    let config = render(&template, &values);
    let start = config
        .find("  - name: keycloak_front")
        .expect("the template's listener");
    let end = config.find("  clusters:").expect("the template's clusters");
    let text: String = config[start..end]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    let routed = "route: { cluster: keycloak, timeout: 30s }";
    assert_eq!(text.matches(routed).count(), 2, "the template's two routes");
    text.replace(routed, "route: { cluster_header: x-soak-cluster, timeout: 30s }")
        .replacen(
            "- name: keycloak_front",
            &format!("- \"@type\": type.googleapis.com/envoy.config.listener.v3.Listener\n  name: {name}"),
            1,
        )
}

/// Both listeners, (streamed, held), as the LDS file.
fn lds(streamed_port: u16, held_port: u16, (streamed, held): (&str, &str)) -> String {
    format!(
        "resources:\n{}{}",
        listener("soak_streamed", streamed_port, streamed, false),
        listener("soak_held", held_port, held, true)
    )
}

impl SoakEnvoy {
    /// Starts Envoy with `plugins` = (streamed, held) configurations; `workers` VMs.
    pub fn start(keycloak_port: u16, standin_port: u16, plugins: (&str, &str), workers: u32) -> SoakEnvoy {
        let dir = TempDir::new("soak-envoy");
        std::fs::create_dir_all(dir.path.join("tmp")).unwrap();
        let (streamed_port, held_port, admin_port) = (free_port(), free_port(), free_port());
        let config = dir.path.join("bootstrap.yaml");
        std::fs::write(
            &config,
            crate::support::lds::bootstrap(
                &dir.path,
                admin_port,
                "azp-bridge-soak",
                &[("keycloak", keycloak_port), ("standin", standin_port)],
            ),
        )
        .unwrap();
        let log_path = dir.path.join("envoy.log");
        std::fs::write(dir.path.join("lds.yaml"), lds(streamed_port, held_port, plugins)).unwrap();
        let mut envoy = SoakEnvoy {
            child: Command::new(envoy_bin())
                .arg("-c")
                .arg(&config)
                .args(["--concurrency", &workers.to_string(), "--disable-hot-restart"])
                .args(["--drain-time-s", &DRAIN_SECONDS.to_string()])
                .args(["-l", "info", "--component-log-level", "wasm:debug"])
                .arg("--log-path")
                .arg(&log_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("envoy starts"),
            streamed_port,
            held_port,
            admin_port,
            log_path,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while envoy.stat("listener_manager.lds.update_success") < 1
            || http1::get(envoy.held_port, "/").is_err()
            || http1::get(envoy.streamed_port, "/").is_err()
        {
            if let Some(status) = envoy.child.try_wait().unwrap() {
                panic!("envoy exited ({status}):\n{}", envoy.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "envoy not ready in 30 s:\n{}",
                envoy.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        envoy
    }

    /// Replaces the LDS file atomically (as the watcher expects) and waits
    /// until Envoy took it (true) or refused it (false).
    pub fn push(&self, plugins: (&str, &str)) -> bool {
        let (success, rejected) = (
            self.stat("listener_manager.lds.update_success"),
            self.stat("listener_manager.lds.update_rejected"),
        );
        crate::support::lds::replace(&self.dir.path, &lds(self.streamed_port, self.held_port, plugins));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.stat("listener_manager.lds.update_success") > success {
                return true;
            }
            if self.stat("listener_manager.lds.update_rejected") > rejected {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "envoy neither took nor refused a push in 30 s:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Every stat whose name contains `filter`, by name (0 if unreadable).
    pub fn stats(&self, filter: &str) -> HashMap<String, i64> {
        let Ok(resp) = http1::get(self.admin_port, &format!("/stats?filter={filter}")) else {
            return HashMap::new();
        };
        resp.body_str()
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect()
    }

    pub fn stat(&self, name: &str) -> i64 {
        self.stats(&format!("^{}$", name.replace('.', "\\.")))
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Envoy's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        crate::support::rss_kib(self.child.id())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for SoakEnvoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
