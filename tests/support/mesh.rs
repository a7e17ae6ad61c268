//! The shipped mesh manifests in deploy/ as the meshes read them, shared by
//! the native checks (tests/mesh_manifests.rs) and the e2e tier's runs in a
//! real Envoy (e2e/tests/e2e/envoy/mesh_manifests.rs, which includes this file):
//! every manifest's resources, and the Wasm filter each one implies.

use super::repo_root;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use serde_yaml::Value as Yaml;
use std::path::{Path, PathBuf};

pub const TARGET: &str = "spring-boot-admin-client";
pub const CALLER: &str = "mobile-app-client";
pub const SECRET_ENV: &str = "ADMIN_CLIENT_SECRET";
/// The secret the tests put in the gateway's environment, and how it looks form-encoded.
pub const SECRET: &str = "mesh-s3cret/+&=";
pub const SECRET_FORM: &str = "mesh-s3cret%2F%2B%26%3D";
pub const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
pub const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";

// --- reading deploy/ ---

pub fn deploy_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join("deploy"), &mut files);
    files.sort();
    files
}

pub fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root()).unwrap().display().to_string()
}

/// Every YAML document of a file (a file may hold several, separated by `---`).
pub fn documents(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Yaml::deserialize(doc).unwrap_or_else(|e| panic!("{} does not parse: {e}", relative(path))))
        .filter(|doc| !doc.is_null())
        .collect()
}

pub fn read_yaml(rel: &str) -> Yaml {
    let docs = documents(&repo_root().join(rel));
    assert_eq!(docs.len(), 1, "{rel} holds one document");
    docs.into_iter().next().unwrap()
}

/// A Kubernetes resource in deploy/: (file, document).
pub struct Resource {
    pub file: String,
    pub doc: Yaml,
}

impl Resource {
    pub fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or("")
    }

    pub fn name(&self) -> String {
        format!("{} {}", self.kind(), self.file)
    }

    pub fn namespace(&self) -> &str {
        self.doc["metadata"]["namespace"].as_str().unwrap()
    }
}

pub fn resources() -> Vec<Resource> {
    deploy_files()
        .iter()
        .flat_map(|path| {
            documents(path)
                .into_iter()
                .filter(|doc| doc.get("kind").is_some())
                .map(|doc| Resource {
                    file: relative(path),
                    doc,
                })
        })
        .collect()
}

/// The one resource of this kind in deploy/ (in `dir`, when given).
pub fn resource_in(kind: &str, dir: Option<&str>) -> Resource {
    let mut found: Vec<Resource> = resources()
        .into_iter()
        .filter(|r| r.kind() == kind && dir.is_none_or(|d| r.file.starts_with(d)))
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind} in deploy/ ({dir:?})");
    found.pop().unwrap()
}

pub fn resource(kind: &str) -> Resource {
    resource_in(kind, None)
}

pub fn str_at<'a>(value: &'a Yaml, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

pub fn keys(value: &Yaml) -> Vec<String> {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("not a mapping: {value:?}"))
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

pub fn only_fields(value: &Yaml, what: &str, known: &[&str]) {
    for key in keys(value) {
        assert!(
            known.contains(&key.as_str()),
            "{what}: `{key}` is not a field (known: {known:?})"
        );
    }
}

pub fn one_of(value: &Yaml, what: &str, allowed: &[&str]) {
    let value = str_at(value, what);
    assert!(allowed.contains(&value), "{what}: {value:?} is not one of {allowed:?}");
}

pub fn to_json(value: &Yaml) -> Json {
    serde_json::to_value(value).unwrap()
}
// --- what each manifest implies ---

/// The Wasm HTTP filter a manifest makes the proxy run, as Envoy sees it once
/// the module has been fetched (the Istio agent, or Envoy Gateway, turns the
/// remote module into a local file).
pub struct Implied {
    pub source: String,
    /// The filter's `typed_config` (envoy.extensions.filters.http.wasm.v3.Wasm).
    pub typed_config: Json,
}

impl Implied {
    pub fn config(&self) -> &Json {
        &self.typed_config["config"]
    }

    /// The plugin configuration as the module receives it.
    pub fn plugin_json(&self) -> String {
        let configuration = &self.config()["configuration"];
        assert_eq!(configuration["@type"], STRING_VALUE_TYPE, "{}", self.source);
        configuration["value"].as_str().unwrap().to_owned()
    }

    pub fn host_env_keys(&self) -> Vec<String> {
        self.config()["vm_config"]["environment_variables"]["host_env_keys"]
            .as_array()
            .map(|keys| keys.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    pub fn holds_headers(&self) -> bool {
        self.config()["allow_on_headers_stop_iteration"] == json!(true)
    }

    pub fn plugin(&self) -> Json {
        serde_json::from_str(&self.plugin_json()).unwrap()
    }

    /// Keycloak's Envoy cluster as the manifest names it (`upstream_clusters`).
    pub fn keycloak_cluster(&self) -> Option<String> {
        self.plugin()["upstream_clusters"][0].as_str().map(str::to_owned)
    }

    /// Keycloak's host as the manifest names it (`authorities`).
    pub fn keycloak_host(&self) -> Option<String> {
        self.plugin()["authorities"][0].as_str().map(str::to_owned)
    }
}

/// Istio's failStrategy as Envoy's failure_policy (pilot/pkg/model/extensions.go).
pub fn failure_policy(fail_strategy: Option<&Yaml>) -> &'static str {
    match fail_strategy.and_then(Yaml::as_str) {
        None | Some("FAIL_CLOSE") => "FAIL_CLOSED",
        Some("FAIL_OPEN") => "FAIL_OPEN",
        Some("FAIL_RELOAD") => "FAIL_RELOAD",
        Some(other) => panic!("unknown failStrategy {other}"),
    }
}

/// The Wasm config Istio builds from a WasmPlugin's (or a TrafficExtension's
/// `wasm`) fields: name `namespace.name`, root id from pluginName, the
/// pluginConfig as a JSON string, the V8 runtime, inline env as key_values and
/// HOST env as host_env_keys, failStrategy as failure_policy.
pub fn istio_wasm_config(resource: &Resource, wasm: &Yaml) -> Implied {
    let mut key_values = serde_json::Map::new();
    let mut host_env_keys = Vec::new();
    for env in wasm["vmConfig"]["env"].as_sequence().cloned().unwrap_or_default() {
        let name = str_at(&env["name"], "vmConfig.env[].name").to_owned();
        match env.get("valueFrom").and_then(Yaml::as_str) {
            Some("HOST") => host_env_keys.push(json!(name)),
            None | Some("INLINE") => {
                key_values.insert(name, json!(env["value"].as_str().unwrap_or("")));
            }
            Some(other) => panic!("unknown valueFrom {other}"),
        }
    }
    let plugin_config = serde_json::to_string(&to_json(&wasm["pluginConfig"])).unwrap();
    let name = format!(
        "{}.{}",
        resource.namespace(),
        str_at(&resource.doc["metadata"]["name"], "name")
    );
    Implied {
        source: resource.name(),
        typed_config: json!({
            "@type": WASM_TYPE,
            "config": {
                "name": name,
                "root_id": wasm["pluginName"].as_str().unwrap_or(""),
                "configuration": { "@type": STRING_VALUE_TYPE, "value": plugin_config },
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": { "local": { "filename": "${WASM_PATH}" } },
                    "environment_variables": { "host_env_keys": host_env_keys, "key_values": key_values },
                },
                "failure_policy": failure_policy(wasm.get("failStrategy")),
            }
        }),
    }
}

pub fn wasmplugin() -> Implied {
    let r = resource("WasmPlugin");
    let spec = r.doc["spec"].clone();
    istio_wasm_config(&r, &spec)
}

pub fn trafficextension() -> Implied {
    let r = resource("TrafficExtension");
    let wasm = r.doc["spec"]["wasm"].clone();
    istio_wasm_config(&r, &wasm)
}

/// The EnvoyFilter's extension config, verbatim, with the remote module
/// replaced by the local file the Istio agent would have downloaded.
pub fn envoyfilter() -> Implied {
    let r = resource("EnvoyFilter");
    let patches = r.doc["spec"]["configPatches"].as_sequence().unwrap();
    let extension = patches
        .iter()
        .find(|p| p["applyTo"] == "EXTENSION_CONFIG")
        .expect("an EXTENSION_CONFIG patch");
    let mut typed_config = to_json(&extension["patch"]["value"]["typed_config"]);
    let code = &mut typed_config["config"]["vm_config"]["code"];
    assert!(
        code.get("remote").is_some(),
        "the EnvoyFilter loads a remote (oci://) module"
    );
    *code = json!({ "local": { "filename": "${WASM_PATH}" } });
    Implied {
        source: r.name(),
        typed_config,
    }
}

/// What Envoy Gateway's translator (internal/xds/translator/wasm.go) builds
/// from an EnvoyExtensionPolicy's first Wasm extension. It writes failOpen as
/// the deprecated `fail_open`; `failure_policy` is its current equivalent.
pub fn envoy_extension_policy() -> Implied {
    let r = resource("EnvoyExtensionPolicy");
    let wasm = &r.doc["spec"]["wasm"][0];
    let name = str_at(&wasm["name"], "wasm[0].name");
    let host_keys: Vec<Json> = wasm["env"]["hostKeys"]
        .as_sequence()
        .map(|keys| keys.iter().map(to_json).collect())
        .unwrap_or_default();
    let fail_open = wasm["failOpen"].as_bool().unwrap_or(false);
    Implied {
        source: r.name(),
        typed_config: json!({
            "@type": WASM_TYPE,
            "config": {
                "name": name,
                "root_id": wasm["rootID"].as_str().unwrap_or(""),
                "configuration": {
                    "@type": STRING_VALUE_TYPE,
                    "value": serde_json::to_string(&to_json(&wasm["config"])).unwrap(),
                },
                "vm_config": {
                    "vm_id": name,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": { "local": { "filename": "${WASM_PATH}" } },
                    "environment_variables": { "host_env_keys": host_keys },
                },
                "failure_policy": if fail_open { "FAIL_OPEN" } else { "FAIL_CLOSED" },
            }
        }),
    }
}

pub fn all_implied() -> Vec<Implied> {
    vec![
        wasmplugin(),
        trafficextension(),
        envoyfilter(),
        envoy_extension_policy(),
    ]
}
