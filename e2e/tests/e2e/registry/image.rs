//! `make image` end to end, on 127.0.0.1 only. deploy/oci/build-image.sh
//! builds the compat image of the shipped module with buildah and pushes it to
//! a docker-registry (the reference registry) that the test starts; skopeo
//! reads it back. This is what an Istio WasmPlugin with an `oci://` url
//! relies on:
//!
//! - the digest `make image` prints is the manifest digest the registry serves
//!   for the tag: Docker-Content-Digest, skopeo's Digest and the sha256 of the
//!   manifest bytes (what Istio's agent compares with the WasmPlugin `sha256`);
//! - the manifest is the compat variant Istio reads: an OCI manifest, exactly
//!   one `tar+gzip` layer, the `module.wasm.image/variant: compat` annotation;
//! - that layer holds `plugin.wasm` and nothing else, byte for byte the module;
//! - TLS is checked unless TLS_VERIFY=0 says otherwise;
//! - the same module gives the same digest again, and the OCI archive that
//!   `make release` writes is byte-identical each time and, copied unchanged to
//!   a registry, is served under that same digest.
//!
//! Every registry is stopped and every directory removed when the test ends,
//! also on failure. The builds use throwaway image stores (the script's own,
//! in a temporary directory), so the machine's store is not touched.

use crate::support;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, http1, repo_root, TempDir};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The one layer media type Istio accepts for an OCI compat image.
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn require(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is missing: run `make setup` (scripts/setup.sh installs it)"
    );
}

/// A docker-registry on 127.0.0.1 with its storage in a temporary directory,
/// stopped (and the directory removed) on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Registry {
    fn start() -> Registry {
        require("docker-registry");
        let dir = TempDir::new("registry");
        let port = free_port();
        let config = dir.path.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.path.join("storage").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry starts");
        let mut registry = Registry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if http1::get(port, "/v2/").is_ok_and(|r| r.status == 200) {
                return registry;
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!("docker-registry exited ({status}):\n{}", registry.log());
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry not ready:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path.join("registry.log")).unwrap_or_default()
    }

    fn reference(&self, tag: &str) -> String {
        format!("127.0.0.1:{}/azp-bridge:{tag}", self.port)
    }

    /// GET /v2/azp-bridge/manifests/TAG as an OCI client asks for it.
    fn manifest(&self, tag: &str) -> http1::Response {
        let request = format!(
            "GET /v2/azp-bridge/manifests/{tag} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\naccept: {OCI_MANIFEST}\r\nconnection: close\r\n\r\n",
            self.port
        );
        http1::exchange(self.port, request.as_bytes())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What deploy/oci/build-image.sh printed.
struct Built {
    module_sha256: String,
    image_digest: String,
    stdout: String,
}

/// deploy/oci/build-image.sh as `make image` runs it (the module already
/// built), with buildah whether or not a Docker engine is around.
fn build_image(env: &[(&str, &str)]) -> Output {
    require("buildah");
    let mut command = Command::new(repo_root().join("deploy/oci/build-image.sh"));
    command
        .env("WASM", support::wasm_path())
        .env("DOCKER", "azp-bridge-test-no-docker")
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("TLS_VERIFY")
        .env_remove("OCI_ARCHIVE")
        .env_remove("PUSH");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn build_image_ok(env: &[(&str, &str)]) -> Built {
    let output = build_image(env);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "build-image.sh {env:?} failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let value = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no `{label}` line in:\n{stdout}"))
            .trim()
            .to_owned()
    };
    let built = Built {
        module_sha256: value("module sha256:"),
        image_digest: value("image digest:"),
        stdout: stdout.clone(),
    };
    for hex in [&built.module_sha256, &built.image_digest] {
        assert!(
            hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "not 64 lower-case hex digits (a WasmPlugin sha256): {hex:?}"
        );
    }
    built
}

/// An OCI image layout on disk: its one manifest (raw bytes) and blobs.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        let bytes = std::fs::read(self.dir.join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(sha256_hex(&bytes), hex, "blob {digest} does not match its digest");
        bytes
    }

    /// The digest index.json names and the manifest's bytes.
    fn manifest(&self) -> (String, Vec<u8>) {
        let index: Json = serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).unwrap()).unwrap();
        let manifests = index["manifests"].as_array().expect("index.json lists manifests");
        assert_eq!(manifests.len(), 1, "{index}");
        assert_eq!(manifests[0]["mediaType"], OCI_MANIFEST, "{index}");
        let digest = manifests[0]["digest"].as_str().unwrap().to_owned();
        let bytes = self.blob(&digest);
        (digest, bytes)
    }
}

/// The entries of an uncompressed tar stream: (name, type flag, content).
/// PAX extended headers describe the entry after them and are skipped.
fn tar_entries(tar: &[u8]) -> Vec<(String, u8, Vec<u8>)> {
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let text = |range: std::ops::Range<usize>| {
            let field = &header[range];
            let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
            String::from_utf8_lossy(&field[..end]).into_owned()
        };
        let size = usize::from_str_radix(text(124..136).trim(), 8).expect("octal size");
        let (prefix, name) = (text(345..500), text(0..100));
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = header[156];
        let content = tar[at + 512..at + 512 + size].to_vec();
        if !matches!(kind, b'x' | b'g') {
            entries.push((name, kind, content));
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    entries
}

fn gunzip(path: &Path) -> Vec<u8> {
    run(Command::new("gzip").arg("-dc").arg(path)).stdout
}

/// The commit time the script stamps the image with, as an OCI `created`.
fn commit_time() -> String {
    let epoch = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "0".to_owned());
    let date = run(Command::new("date").args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"]));
    String::from_utf8_lossy(&date.stdout).trim().to_owned()
}

#[test]
fn make_image_pushes_the_compat_image_whose_digest_istio_pins() {
    require("skopeo");
    let started = Instant::now();
    let module = std::fs::read(support::wasm_path()).unwrap();
    let registry = Registry::start();
    let image = registry.reference("test");

    // The registry speaks plain HTTP: without TLS_VERIFY=0 the push is refused
    // and no digest is printed.
    let refused = build_image(&[("IMAGE", &image), ("PUSH", "1")]);
    let refused_out = String::from_utf8_lossy(&refused.stdout);
    let refused_err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "pushed over plain HTTP with TLS on:\n{refused_out}"
    );
    assert!(!refused_out.contains("image digest:"), "{refused_out}");
    assert!(
        refused_err.contains("server gave HTTP response to HTTPS client"),
        "{refused_err}"
    );
    assert_eq!(registry.manifest("test").status, 404, "a refused push left a tag");

    let built = build_image_ok(&[("IMAGE", &image), ("PUSH", "1"), ("TLS_VERIFY", "0")]);
    eprintln!("{}", built.stdout);
    assert_eq!(built.module_sha256, sha256_hex(&module), "the module sha256 printed");
    assert!(
        built
            .stdout
            .contains(&format!("(the WasmPlugin sha256 for url oci://{image})")),
        "{}",
        built.stdout
    );

    // (c) The digest printed is the manifest digest the registry serves.
    let served = registry.manifest("test");
    assert_eq!(served.status, 200, "{}", served.body_str());
    assert_eq!(served.message.header("content-type"), Some(OCI_MANIFEST));
    let header_digest = format!("sha256:{}", built.image_digest);
    assert_eq!(
        served.message.header("docker-content-digest"),
        Some(header_digest.as_str())
    );
    assert_eq!(
        sha256_hex(&served.body),
        built.image_digest,
        "sha256 of the manifest bytes"
    );
    let inspect = run(Command::new("skopeo").args(["inspect", "--tls-verify=false", &format!("docker://{image}")]));
    let inspect: Json = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect["Digest"], header_digest.as_str(), "skopeo inspect");

    // Pulled back as an OCI layout: the same manifest, byte for byte.
    let pulled = TempDir::new("image-pull");
    let layout = Layout {
        dir: pulled.path.join("layout"),
    };
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{image}"),
        &format!("oci:{}:test", layout.dir.display()),
    ]));
    let (digest, manifest_bytes) = layout.manifest();
    assert_eq!(digest, header_digest, "the pulled manifest's digest");
    assert_eq!(manifest_bytes, served.body, "the pulled manifest");

    // The compat variant as Istio reads it (pkg/wasm/imagefetcher.go): an OCI
    // manifest whose one layer is tar+gzip, annotated as the spec asks.
    let manifest: Json = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"], "compat",
        "{manifest}"
    );
    // (a) Exactly one layer.
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(layers[0]["mediaType"], OCI_LAYER_GZIP, "{manifest}");
    let layer_digest = layers[0]["digest"].as_str().unwrap();
    let layer = layout.blob(layer_digest);
    assert_eq!(layers[0]["size"], layer.len(), "{manifest}");
    assert_eq!(&layer[..2], [0x1f, 0x8b], "the layer is gzip");

    // (b) The layer holds plugin.wasm, a regular file, and nothing else:
    // byte for byte the shipped module.
    let tar = gunzip(&layout.dir.join("blobs/sha256").join(&layer_digest["sha256:".len()..]));
    let entries = tar_entries(&tar);
    let names: Vec<(&str, char)> = entries.iter().map(|(n, k, _)| (n.as_str(), *k as char)).collect();
    assert_eq!(names, [("plugin.wasm", '0')], "the layer's entries");
    assert!(entries[0].2 == module, "plugin.wasm differs from the shipped module");

    // The config: the layer's uncompressed digest, the commit's time, and no
    // builder version label (the digest does not follow buildah's version).
    let config_ref = &manifest["config"];
    assert_eq!(config_ref["mediaType"], OCI_CONFIG);
    let config: Json = serde_json::from_slice(&layout.blob(config_ref["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([format!("sha256:{}", sha256_hex(&tar))]),
        "{config}"
    );
    assert_eq!(config["created"], commit_time(), "{config}");
    assert!(
        config["config"]["Labels"].get("io.buildah.version").is_none(),
        "{config}"
    );

    eprintln!(
        "image: {image} digest {} (module {}), {} layer bytes, {:.1?}",
        built.image_digest,
        built.module_sha256,
        layer.len(),
        started.elapsed()
    );
    drop(registry);
}

#[test]
fn the_same_module_gives_the_same_digest_pushed_again_or_archived_for_a_release() {
    require("skopeo");
    let started = Instant::now();
    let registry = Registry::start();
    let first = build_image_ok(&[
        ("IMAGE", &registry.reference("first")),
        ("PUSH", "1"),
        ("TLS_VERIFY", "0"),
    ]);
    let second = build_image_ok(&[
        ("IMAGE", &registry.reference("second")),
        ("PUSH", "1"),
        ("TLS_VERIFY", "0"),
    ]);
    assert_eq!(first.image_digest, second.image_digest, "two builds of one module");
    for tag in ["first", "second"] {
        let served = registry.manifest(tag);
        assert_eq!(
            served.message.header("docker-content-digest"),
            Some(format!("sha256:{}", first.image_digest).as_str()),
            "{tag}"
        );
    }

    // `make release` writes the image as an OCI archive (OCI_ARCHIVE): the same
    // bytes each time, the same manifest digest, and skopeo copies it to a
    // registry unchanged.
    let dir = TempDir::new("image-archive");
    let version = String::from_utf8_lossy(
        &run(Command::new("sed")
            .args(["-n", r#"s/^version = "\(.*\)"$/\1/p"#])
            .arg(repo_root().join("Cargo.toml")))
        .stdout,
    )
    .lines()
    .next()
    .unwrap()
    .to_owned();
    let name = format!("azp-bridge:{version}");
    let mut archives = Vec::new();
    for n in 1..=2 {
        let archive = dir.path.join(format!("azp-bridge-{n}.oci.tar"));
        let built = build_image_ok(&[("IMAGE", &name), ("OCI_ARCHIVE", archive.to_str().unwrap())]);
        assert_eq!(built.image_digest, first.image_digest, "the archive's manifest digest");
        archives.push((archive.clone(), std::fs::read(&archive).unwrap()));
    }
    assert!(archives[0].1 == archives[1].1, "two archives of one module differ");

    let unpacked = Layout {
        dir: dir.path.join("unpacked"),
    };
    std::fs::create_dir_all(&unpacked.dir).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&archives[0].0)
        .arg("-C")
        .arg(&unpacked.dir));
    assert_eq!(unpacked.manifest().0, format!("sha256:{}", first.image_digest));
    let index = std::fs::read_to_string(unpacked.dir.join("index.json")).unwrap();
    assert!(
        index.contains(&format!("\"org.opencontainers.image.ref.name\":\"{name}\"")),
        "{index}"
    );

    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci-archive:{}:{name}", archives[0].0.display()),
        &format!("docker://{}", registry.reference("from-archive")),
    ]));
    let served = registry.manifest("from-archive");
    assert_eq!(
        served.message.header("docker-content-digest"),
        Some(format!("sha256:{}", first.image_digest).as_str()),
        "the archive copied to a registry"
    );
    eprintln!(
        "reproducible image: digest {} from two pushes and two archives ({} bytes), {:.1?}",
        first.image_digest,
        archives[0].1.len(),
        started.elapsed()
    );
    drop(registry);
}

/// `make image` without a builder (needs only the built module; moved here
/// from tests/mesh_manifests.rs with the rest of `make image`).
#[test]
fn make_image_without_a_builder_says_so_and_fails() {
    let wasm = support::wasm_path();
    let output = Command::new(repo_root().join("deploy/oci/build-image.sh"))
        .env("WASM", &wasm)
        .env("DOCKER", "azp-bridge-test-no-docker")
        .env("BUILDAH", "azp-bridge-test-no-buildah")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("no image builder here, so no image was built"),
        "{stderr}"
    );
    assert!(
        stderr.contains("docker with the buildx plugin") && stderr.contains("buildah"),
        "{stderr}"
    );
    assert!(stderr.contains("oras"), "{stderr}");

    // It still prints the module's sha256, the same as sha256sum's.
    let sha256sum = Command::new("sha256sum").arg(&wasm).output().unwrap();
    let expected = String::from_utf8_lossy(&sha256sum.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(expected.len(), 64);
    assert!(stdout.contains(&format!("module sha256: {expected}")), "{stdout}");
}
