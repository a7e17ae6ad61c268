//! End-to-end test support, compiled once for the whole e2e binary: the built
//! module, a real Envoy from the project's virtualenv, a recording upstream
//! and raw HTTP clients. Every process a test starts is stopped when its
//! handle drops, also when the test fails.
#![allow(dead_code)]

pub mod h2client;
pub mod http1;
pub mod keycloak;
pub mod lds;
pub mod load;
/// The shipped mesh manifests as the meshes read them (shared with the native tier).
#[path = "../../../../tests/support/mesh.rs"]
pub mod mesh;
#[path = "../../../../tests/support/temp_dir.rs"]
mod temp_dir;

pub use temp_dir::TempDir;
pub mod two_hosts;
pub mod upstream;

use std::collections::HashMap;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The demo realm's token endpoint, where every suite sends its refreshes.
pub const TOKEN_PATH: &str = "/realms/demo/protocol/openid-connect/token";

/// The repository root: this package (azp-bridge-e2e) is its `e2e/`.
pub fn repo_root() -> PathBuf {
    let e2e = Path::new(env!("CARGO_MANIFEST_DIR"));
    e2e.parent().expect("e2e/ is inside the repository").to_path_buf()
}

/// The azp-bridge package's version (the root Cargo.toml's, which the module
/// reports), read the way scripts/release.sh reads it.
pub fn package_version() -> String {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \"")?.strip_suffix('"'))
        .expect("Cargo.toml has a version")
        .to_owned()
}

/// The release module as shipped (cargo, then wasm-opt), built once per
/// test binary.
pub fn wasm_path() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Ok(path) = std::env::var("AZP_BRIDGE_WASM") {
                return PathBuf::from(path);
            }
            let status = Command::new(repo_root().join("scripts/build-wasm.sh"))
                .current_dir(repo_root())
                .status()
                .expect("scripts/build-wasm.sh runs");
            assert!(status.success(), "building the wasm module failed");
            repo_root().join("target/wasm32-wasip1/release/azp_bridge.wasm")
        })
        .clone()
}

/// A build of the module with the `test-trap` feature: it panics on a
/// request carrying `x-azp-bridge-test-trap`. Only tests build it; it is
/// never shipped.
pub fn trapping_wasm_path() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target_dir = repo_root().join("target/test-trap");
            let status = Command::new(repo_root().join("scripts/build-wasm.sh"))
                .args(["--features", "test-trap", "--target-dir"])
                .arg(&target_dir)
                .current_dir(repo_root())
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the trapping module failed");
            target_dir.join("wasm32-wasip1/release/azp_bridge.wasm")
        })
        .clone()
}

/// The pinned Envoy, installed by `make setup` into `.venv`.
pub fn envoy_bin() -> PathBuf {
    let path = std::env::var("ENVOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".venv/bin/envoy"));
    assert!(path.exists(), "{} is missing: run `make setup`", path.display());
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Fills `${NAME}` placeholders; every placeholder must be given.
pub fn render(template: &str, values: &HashMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed placeholder") + start;
        let name = &rest[start + 2..end];
        out.push_str(values.get(name).unwrap_or_else(|| panic!("no value for ${{{name}}}")));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Values for every placeholder of envoy/azp-bridge.yaml, everything on
/// 127.0.0.1: `ports` are the listener's, the admin's and the upstream's.
pub fn local_values(
    ports: [u16; 3],
    plugin_config: &str,
    hold_headers: bool,
    host_env_keys: &[&str],
    wasm: &Path,
) -> HashMap<&'static str, String> {
    let [listen, admin, upstream] = ports;
    let keys: Vec<String> = host_env_keys.iter().map(|k| format!("\"{k}\"")).collect();
    HashMap::from([
        ("LISTEN_ADDRESS", "127.0.0.1".to_owned()),
        ("LISTEN_PORT", listen.to_string()),
        ("ADMIN_ADDRESS", "127.0.0.1".to_owned()),
        ("ADMIN_PORT", admin.to_string()),
        ("UPSTREAM_HOST", "127.0.0.1".to_owned()),
        ("UPSTREAM_PORT", upstream.to_string()),
        ("WASM_PATH", wasm.display().to_string()),
        ("PLUGIN_CONFIG", plugin_config.to_owned()),
        ("HOLD_HEADERS", hold_headers.to_string()),
        ("HOST_ENV_KEYS", format!("[{}]", keys.join(", "))),
    ])
}

/// How to start an Envoy with azp-bridge.
#[derive(Clone)]
pub struct EnvoySpec {
    pub plugin_config: String,
    pub hold_headers: bool,
    pub upstream_port: u16,
    pub host_env_keys: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Text replacements applied to the rendered config (for variants).
    pub edits: Vec<(String, String)>,
    pub template: String,
    /// Another build of the module (default: the release build).
    pub wasm: Option<PathBuf>,
    /// The listener's port (default: a free one).
    pub listen_port: Option<u16>,
}

impl EnvoySpec {
    pub fn new(plugin_config: &str, upstream_port: u16) -> Self {
        EnvoySpec {
            plugin_config: plugin_config.to_owned(),
            hold_headers: false,
            upstream_port,
            host_env_keys: Vec::new(),
            env: Vec::new(),
            edits: Vec::new(),
            template: "envoy/azp-bridge.yaml".to_owned(),
            wasm: None,
            listen_port: None,
        }
    }

    pub fn hold_headers(mut self) -> Self {
        self.hold_headers = true;
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn host_env_key(mut self, name: &str) -> Self {
        self.host_env_keys.push(name.to_owned());
        self
    }

    /// Listens on this port (e.g. one a Keycloak's `--hostname` names).
    pub fn listen_port(mut self, port: u16) -> Self {
        self.listen_port = Some(port);
        self
    }

    pub fn wasm(mut self, path: PathBuf) -> Self {
        self.wasm = Some(path);
        self
    }

    pub fn edit(mut self, from: &str, to: &str) -> Self {
        self.edits.push((from.to_owned(), to.to_owned()));
        self
    }

    fn render(&self, listen_port: u16, admin_port: u16) -> String {
        let template = std::fs::read_to_string(repo_root().join(&self.template)).unwrap();
        assert!(
            !self.plugin_config.contains('\''),
            "plugin config goes in a single-quoted YAML string"
        );
        let keys: Vec<&str> = self.host_env_keys.iter().map(String::as_str).collect();
        let values = local_values(
            [listen_port, admin_port, self.upstream_port],
            &self.plugin_config,
            self.hold_headers,
            &keys,
            &self.wasm.clone().unwrap_or_else(wasm_path),
        );
        let mut config = render(&template, &values);
        for (from, to) in &self.edits {
            assert!(config.contains(from.as_str()), "edit target {from:?} not in config");
            config = config.replace(from.as_str(), to);
        }
        config
    }

    fn command(&self, config_path: &Path, log_path: &Path) -> Command {
        let mut cmd = Command::new(envoy_bin());
        cmd.arg("-c")
            .arg(config_path)
            .args(["--concurrency", "1", "--disable-hot-restart", "-l", "info"])
            .args(["--component-log-level", "wasm:debug"])
            // The log file is flushed every 10 s by default: wait_log would wait that long.
            .args(["--file-flush-interval-msec", "100"])
            .arg("--log-path")
            .arg(log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Starts Envoy and waits until it is ready.
    pub fn start(&self) -> Envoy {
        let dir = TempDir::new("envoy");
        let (listen_port, admin_port) = (self.listen_port.unwrap_or_else(free_port), free_port());
        let config_path = dir.path.join("envoy.yaml");
        std::fs::write(&config_path, self.render(listen_port, admin_port)).unwrap();
        let log_path = dir.path.join("envoy.log");
        let child = self.command(&config_path, &log_path).spawn().expect("envoy starts");
        let mut envoy = Envoy {
            child,
            port: listen_port,
            admin_port,
            log_path,
            _dir: dir,
        };
        envoy.wait_ready();
        envoy
    }

    /// Runs Envoy expecting it to refuse the configuration; returns its log.
    pub fn expect_refused(&self) -> String {
        let dir = TempDir::new("envoy-refused");
        let config_path = dir.path.join("envoy.yaml");
        std::fs::write(&config_path, self.render(free_port(), free_port())).unwrap();
        let log_path = dir.path.join("envoy.log");
        let mut child = self.command(&config_path, &log_path).spawn().expect("envoy starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("envoy did not refuse the configuration within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(!status.success(), "envoy accepted a configuration it should refuse");
        std::fs::read_to_string(&log_path).unwrap_or_default()
    }
}

pub struct Envoy {
    child: Child,
    pub port: u16,
    pub admin_port: u16,
    log_path: PathBuf,
    _dir: TempDir,
}

impl Envoy {
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("envoy exited ({status}) while starting:\n{}", self.log());
            }
            if let Ok(resp) = http1::get(self.admin_port, "/ready") {
                if resp.status == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "envoy not ready in 30 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Envoy's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }

    /// The azp-bridge counters, by name without the `wasmcustom.azp_bridge.` prefix.
    /// The filter hands its counts to Envoy once a second; this waits for that.
    pub fn counters(&self) -> HashMap<String, u64> {
        std::thread::sleep(Duration::from_millis(1500));
        let resp = http1::get(self.admin_port, "/stats?filter=azp_bridge").unwrap();
        // Counters only: the gauge (memory_bytes) is not a count of requests.
        let gauges = azp_bridge::counters::gauge_names();
        String::from_utf8_lossy(&resp.body)
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                let name = name.strip_prefix("wasmcustom.azp_bridge.")?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .filter(|(name, _)| !gauges.contains(name))
            .collect()
    }

    pub fn counter(&self, name: &str) -> u64 {
        *self.counters().get(name).unwrap_or_else(|| panic!("no counter {name}"))
    }

    /// The log holds none of these (secrets, tokens) and no sign of a trap.
    pub fn assert_log_clean(&self, never: &[&str]) {
        let log = self.log();
        for secret in never {
            assert!(
                !log.contains(secret),
                "envoy log contains a secret or token ({} chars)",
                secret.len()
            );
        }
        for sign in [
            "panicked",
            "Function: proxy_on",
            "wasm trap",
            "failed to run",
            "VM restart",
            "restarting",
        ] {
            assert!(!log.contains(sign), "envoy log shows {sign:?}:\n{log}");
        }
    }

    /// Waits until the log contains `needle` (log lines are flushed async).
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(Instant::now() < deadline, "log never showed {needle:?}:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads until `done` says the bytes so far are complete, or EOF / timeout.
pub fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, done: impl Fn(&[u8]) -> Option<usize>) -> Option<usize> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(n) = done(buf) {
            return Some(n);
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return done(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A process's resident memory, in KiB (0 once it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
