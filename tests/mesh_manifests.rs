//! The deployment files in deploy/, checked without a cluster:
//! - every manifest parses, and uses only fields and values its API has
//!   (transcribed from Istio's extensions/v1alpha1 wasm.proto and
//!   traffic_extension.proto, networking/v1alpha3 envoy_filter.proto, and
//!   Envoy Gateway's wasm_types.go);
//! - each manifest's plugin configuration is accepted by the module's own
//!   parser, with the secret from the variables the manifest exposes;
//! - the Secret reaches the gateway's environment under the names the
//!   manifests read;
//! - the Wasm filter each manifest implies (built the way Istio or Envoy
//!   Gateway builds it, or taken verbatim from the EnvoyFilter), put into the
//!   shipped Envoy configuration in place of its own filter, starts a real
//!   Envoy that rewrites a refresh exactly;
//! - the same filter on a gateway with Keycloak's host and another service's
//!   sends the secret only to Keycloak (tests/support/two_hosts.rs);
//! - the OCI image recipe is the compat layout of the release module, and
//!   `make image` without a builder says so and fails.

mod support;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use serde_yaml::Value as Yaml;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::http1::{self, form_post};
use support::upstream::Upstream;
use support::{repo_root, EnvoySpec, TempDir};

const TARGET: &str = "spring-boot-admin-client";
const CALLER: &str = "mobile-app-client";
const SECRET_ENV: &str = "ADMIN_CLIENT_SECRET";
use support::TOKEN_PATH;
/// The secret the tests put in the gateway's environment, and how it looks form-encoded.
const SECRET: &str = "mesh-s3cret/+&=";
const SECRET_FORM: &str = "mesh-s3cret%2F%2B%26%3D";
const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";

// --- reading deploy/ ---

fn deploy_files() -> Vec<PathBuf> {
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

fn relative(path: &Path) -> String {
    path.strip_prefix(repo_root()).unwrap().display().to_string()
}

/// Every YAML document of a file (a file may hold several, separated by `---`).
fn documents(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Yaml::deserialize(doc).unwrap_or_else(|e| panic!("{} does not parse: {e}", relative(path))))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn read_yaml(rel: &str) -> Yaml {
    let docs = documents(&repo_root().join(rel));
    assert_eq!(docs.len(), 1, "{rel} holds one document");
    docs.into_iter().next().unwrap()
}

/// A Kubernetes resource in deploy/: (file, document).
struct Resource {
    file: String,
    doc: Yaml,
}

impl Resource {
    fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or("")
    }

    fn name(&self) -> String {
        format!("{} {}", self.kind(), self.file)
    }

    fn namespace(&self) -> &str {
        self.doc["metadata"]["namespace"].as_str().unwrap()
    }
}

fn resources() -> Vec<Resource> {
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
fn resource_in(kind: &str, dir: Option<&str>) -> Resource {
    let mut found: Vec<Resource> = resources()
        .into_iter()
        .filter(|r| r.kind() == kind && dir.is_none_or(|d| r.file.starts_with(d)))
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind} in deploy/ ({dir:?})");
    found.pop().unwrap()
}

fn resource(kind: &str) -> Resource {
    resource_in(kind, None)
}

fn str_at<'a>(value: &'a Yaml, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

fn keys(value: &Yaml) -> Vec<String> {
    value
        .as_mapping()
        .unwrap_or_else(|| panic!("not a mapping: {value:?}"))
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

fn only_fields(value: &Yaml, what: &str, known: &[&str]) {
    for key in keys(value) {
        assert!(
            known.contains(&key.as_str()),
            "{what}: `{key}` is not a field (known: {known:?})"
        );
    }
}

fn one_of(value: &Yaml, what: &str, allowed: &[&str]) {
    let value = str_at(value, what);
    assert!(allowed.contains(&value), "{what}: {value:?} is not one of {allowed:?}");
}

fn to_json(value: &Yaml) -> Json {
    serde_json::to_value(value).unwrap()
}

// --- what each manifest implies ---

/// The Wasm HTTP filter a manifest makes the proxy run, as Envoy sees it once
/// the module has been fetched (the Istio agent, or Envoy Gateway, turns the
/// remote module into a local file).
struct Implied {
    source: String,
    /// The filter's `typed_config` (envoy.extensions.filters.http.wasm.v3.Wasm).
    typed_config: Json,
}

impl Implied {
    fn config(&self) -> &Json {
        &self.typed_config["config"]
    }

    /// The plugin configuration as the module receives it.
    fn plugin_json(&self) -> String {
        let configuration = &self.config()["configuration"];
        assert_eq!(configuration["@type"], STRING_VALUE_TYPE, "{}", self.source);
        configuration["value"].as_str().unwrap().to_owned()
    }

    fn host_env_keys(&self) -> Vec<String> {
        self.config()["vm_config"]["environment_variables"]["host_env_keys"]
            .as_array()
            .map(|keys| keys.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    fn holds_headers(&self) -> bool {
        self.config()["allow_on_headers_stop_iteration"] == json!(true)
    }

    fn plugin(&self) -> Json {
        serde_json::from_str(&self.plugin_json()).unwrap()
    }

    /// Keycloak's Envoy cluster as the manifest names it (`upstream_clusters`).
    fn keycloak_cluster(&self) -> Option<String> {
        self.plugin()["upstream_clusters"][0].as_str().map(str::to_owned)
    }

    /// Keycloak's host as the manifest names it (`authorities`).
    fn keycloak_host(&self) -> Option<String> {
        self.plugin()["authorities"][0].as_str().map(str::to_owned)
    }
}

/// Istio's failStrategy as Envoy's failure_policy (pilot/pkg/model/extensions.go).
fn failure_policy(fail_strategy: Option<&Yaml>) -> &'static str {
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
fn istio_wasm_config(resource: &Resource, wasm: &Yaml) -> Implied {
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

fn wasmplugin() -> Implied {
    let r = resource("WasmPlugin");
    let spec = r.doc["spec"].clone();
    istio_wasm_config(&r, &spec)
}

fn trafficextension() -> Implied {
    let r = resource("TrafficExtension");
    let wasm = r.doc["spec"]["wasm"].clone();
    istio_wasm_config(&r, &wasm)
}

/// The EnvoyFilter's extension config, verbatim, with the remote module
/// replaced by the local file the Istio agent would have downloaded.
fn envoyfilter() -> Implied {
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
fn envoy_extension_policy() -> Implied {
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

fn all_implied() -> Vec<Implied> {
    vec![
        wasmplugin(),
        trafficextension(),
        envoyfilter(),
        envoy_extension_policy(),
    ]
}

// --- a real Envoy running what a manifest implies ---

/// The shipped Envoy configuration (envoy/azp-bridge.yaml) with its azp_bridge
/// filter replaced by the one `implied` describes; the listener, admin and
/// upstream placeholders stay for EnvoySpec to fill.
fn envoy_spec(implied: &Implied, upstream_port: u16, dir: &TempDir) -> EnvoySpec {
    // Placeholders become plain tokens so that the template parses as YAML,
    // and become placeholders again in the JSON written below.
    let text = std::fs::read_to_string(repo_root().join("envoy/azp-bridge.yaml")).unwrap();
    let names: BTreeSet<&str> = text
        .split("${")
        .skip(1)
        .map(|rest| &rest[..rest.find('}').unwrap()])
        .collect();
    let tokens: HashMap<&str, String> = names.iter().map(|&n| (n, format!("AZP_PLACEHOLDER_{n}"))).collect();
    let template: Yaml = serde_yaml::from_str(&support::render(&text, &tokens)).unwrap();
    let mut config = to_json(&template);
    let mut replaced = 0;
    for listener in config["static_resources"]["listeners"].as_array_mut().unwrap() {
        for chain in listener["filter_chains"].as_array_mut().unwrap() {
            for filter in chain["filters"].as_array_mut().unwrap() {
                let Some(http_filters) = filter["typed_config"]["http_filters"].as_array_mut() else {
                    continue;
                };
                for http_filter in http_filters.iter_mut().filter(|f| f["name"] == "azp_bridge") {
                    http_filter["typed_config"] = implied.typed_config.clone();
                    replaced += 1;
                }
            }
        }
    }
    assert_eq!(replaced, 1, "envoy/azp-bridge.yaml has one azp_bridge filter");
    let mut text = serde_json::to_string_pretty(&config).unwrap();
    // Keycloak's cluster under the name the mesh gives it.
    if let Some(cluster) = implied.keycloak_cluster() {
        for field in ["cluster", "name", "cluster_name"] {
            text = text.replace(
                &format!("\"{field}\": \"keycloak\""),
                &format!("\"{field}\": \"{cluster}\""),
            );
        }
    }
    for name in names {
        let placeholder = format!("${{{name}}}");
        // Ports are numbers; everything else left (addresses) is a string.
        let to = if name.ends_with("_PORT") {
            placeholder
        } else {
            format!("\"{placeholder}\"")
        };
        text = text.replace(&format!("\"AZP_PLACEHOLDER_{name}\""), &to);
    }
    assert!(!text.contains("AZP_PLACEHOLDER_"), "{text}");
    let path = dir.path.join("mesh-envoy-template.json");
    std::fs::write(&path, text).unwrap();
    let mut spec = EnvoySpec::new("{}", upstream_port);
    // An absolute path: EnvoySpec joins it to the repository root.
    spec.template = path.display().to_string();
    spec
}

fn refresh_token(azp: &str) -> String {
    let payload =
        format!(r#"{{"iss":"https://sso.example.test/realms/demo","azp":"{azp}","typ":"Refresh","sid":"s1"}}"#);
    format!("eyJhbGciOiJIUzUxMiJ9.{}.c2lnbmF0dXJl", URL_SAFE_NO_PAD.encode(payload))
}

/// Runs the filter `implied` describes, with the secret in Envoy's
/// environment under every host key it exposes, sends the mobile app's
/// refresh of a token issued to the admin client, and returns what reached
/// the upstream.
fn refresh_through(implied: &Implied) -> http1::Message {
    let dir = TempDir::new("mesh");
    let upstream = Upstream::start();
    let mut spec = envoy_spec(implied, upstream.port, &dir);
    for key in implied.host_env_keys() {
        spec = spec.env(&key, SECRET);
    }
    let envoy = spec.start();
    let body = format!(
        "grant_type=refresh_token&client_id={CALLER}&refresh_token={}&scope=openid",
        refresh_token(TARGET)
    );
    let resp = http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
    assert_eq!(resp.status, 200, "{}", implied.source);
    let forwarded = upstream.single();
    assert_eq!(envoy.counter("rewritten"), 1, "{}", implied.source);
    envoy.assert_log_clean(&[SECRET, SECRET_FORM, &refresh_token(TARGET)]);
    forwarded
}

fn assert_posted_target(forwarded: &http1::Message, source: &str) {
    assert_eq!(
        forwarded.body_str(),
        format!(
            "grant_type=refresh_token&refresh_token={}&scope=openid&client_id={TARGET}&client_secret={SECRET_FORM}",
            refresh_token(TARGET)
        ),
        "{source}"
    );
}

// --- tests: the manifests ---

#[test]
fn every_manifest_parses_and_names_its_api() {
    let files = deploy_files();
    assert!(files.len() >= 7, "{files:?}");
    let mut kinds = BTreeSet::new();
    for path in &files {
        for doc in documents(path) {
            let Some(kind) = doc.get("kind") else {
                continue; // Helm values and patches are not resources
            };
            let kind = str_at(kind, "kind");
            let expected_api = match kind {
                "WasmPlugin" | "TrafficExtension" => "extensions.istio.io/v1alpha1",
                "EnvoyFilter" => "networking.istio.io/v1alpha3",
                "EnvoyExtensionPolicy" | "EnvoyProxy" => "gateway.envoyproxy.io/v1alpha1",
                "Secret" => "v1",
                other => panic!("{}: unexpected kind {other}", relative(path)),
            };
            assert_eq!(doc["apiVersion"], expected_api, "{}", relative(path));
            assert!(doc["metadata"]["name"].is_string(), "{}", relative(path));
            assert!(doc["metadata"]["namespace"].is_string(), "{}", relative(path));
            kinds.insert(kind.to_owned());
        }
    }
    let expected: BTreeSet<String> = [
        "WasmPlugin",
        "TrafficExtension",
        "EnvoyFilter",
        "EnvoyExtensionPolicy",
        "EnvoyProxy",
        "Secret",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds, expected);
}

fn check_vm_config(vm_config: &Yaml, what: &str) {
    only_fields(vm_config, what, &["env"]);
    for env in vm_config["env"].as_sequence().unwrap() {
        only_fields(env, &format!("{what}.env[]"), &["name", "valueFrom", "value"]);
        one_of(
            &env["valueFrom"],
            &format!("{what}.env[].valueFrom"),
            &["INLINE", "HOST"],
        );
        if env["valueFrom"] == "HOST" {
            assert!(env.get("value").is_none(), "{what}: a HOST variable has no value");
        }
    }
}

/// `oci://REGISTRY/azp-bridge:<crate version>` and the digest placeholder:
/// no registry is named, and the tag follows the crate. Between releases the
/// crate is the next release with `-dev` (CHANGELOG.md): the manifests name
/// that release already.
fn check_module_reference(url: &Yaml, sha256: &Yaml, what: &str, scheme: &str) {
    let release = env!("CARGO_PKG_VERSION").trim_end_matches("-dev");
    assert_eq!(
        str_at(url, "url"),
        format!("{scheme}REGISTRY/azp-bridge:{release}"),
        "{what}"
    );
    assert_eq!(str_at(sha256, "sha256"), "IMAGE_DIGEST", "{what}");
}

#[test]
fn wasmplugin_uses_only_wasmplugin_fields() {
    let r = resource("WasmPlugin");
    let spec = &r.doc["spec"];
    only_fields(
        spec,
        "WasmPlugin.spec",
        &[
            "selector",
            "targetRef",
            "targetRefs",
            "url",
            "sha256",
            "imagePullPolicy",
            "imagePullSecret",
            "verificationKey",
            "pluginConfig",
            "pluginName",
            "phase",
            "priority",
            "failStrategy",
            "vmConfig",
            "match",
            "type",
        ],
    );
    for field in ["url", "sha256", "phase", "pluginConfig", "failStrategy", "vmConfig"] {
        assert!(spec.get(field).is_some(), "the WasmPlugin sets {field}");
    }
    one_of(
        &spec["phase"],
        "phase",
        &["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"],
    );
    one_of(
        &spec["failStrategy"],
        "failStrategy",
        &["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"],
    );
    one_of(
        &spec["imagePullPolicy"],
        "imagePullPolicy",
        &["UNSPECIFIED_POLICY", "IfNotPresent", "Always"],
    );
    check_vm_config(&spec["vmConfig"], "WasmPlugin.spec.vmConfig");
    check_module_reference(&spec["url"], &spec["sha256"], &r.file, "oci://");
}

#[test]
fn trafficextension_uses_only_trafficextension_fields() {
    let r = resource("TrafficExtension");
    let spec = &r.doc["spec"];
    only_fields(
        spec,
        "TrafficExtension.spec",
        &["selector", "targetRefs", "phase", "priority", "match", "wasm", "lua"],
    );
    assert!(
        spec.get("wasm").is_some() && spec.get("lua").is_none(),
        "exactly one of wasm or lua"
    );
    one_of(&spec["phase"], "phase", &["UNSPECIFIED", "AUTHN", "AUTHZ", "STATS"]);
    let wasm = &spec["wasm"];
    only_fields(
        wasm,
        "TrafficExtension.spec.wasm",
        &[
            "url",
            "sha256",
            "imagePullPolicy",
            "imagePullSecret",
            "verificationKey",
            "pluginConfig",
            "pluginName",
            "failStrategy",
            "vmConfig",
            "type",
        ],
    );
    // Not in WasmConfig: hold_headers cannot be expressed here either.
    assert!(wasm.get("allowOnHeadersStopIteration").is_none());
    one_of(
        &wasm["failStrategy"],
        "failStrategy",
        &["FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"],
    );
    check_vm_config(&wasm["vmConfig"], "TrafficExtension.spec.wasm.vmConfig");
    check_module_reference(&wasm["url"], &wasm["sha256"], &r.file, "oci://");

    // The same deployment as the WasmPlugin, in the new API.
    let plugin = resource("WasmPlugin");
    for (field, value) in wasm.as_mapping().unwrap() {
        assert_eq!(&plugin.doc["spec"][field.as_str().unwrap()], value, "wasm.{field:?}");
    }
    assert_eq!(spec["selector"], plugin.doc["spec"]["selector"]);
    assert_eq!(spec["phase"], plugin.doc["spec"]["phase"]);
}

#[test]
fn envoyfilter_adds_the_extension_config_and_its_http_filter() {
    let r = resource("EnvoyFilter");
    let spec = &r.doc["spec"];
    only_fields(
        spec,
        "EnvoyFilter.spec",
        &["workloadSelector", "targetRefs", "configPatches", "priority"],
    );
    let patches = spec["configPatches"].as_sequence().unwrap();
    assert_eq!(patches.len(), 2);
    for patch in patches {
        only_fields(patch, "configPatches[]", &["applyTo", "match", "patch"]);
        only_fields(
            &patch["patch"],
            "configPatches[].patch",
            &["operation", "value", "filterClass"],
        );
    }
    let (extension, http_filter) = (&patches[0], &patches[1]);
    assert_eq!(extension["applyTo"], "EXTENSION_CONFIG");
    assert_eq!(extension["patch"]["operation"], "ADD");
    assert_eq!(http_filter["applyTo"], "HTTP_FILTER");
    assert_eq!(http_filter["patch"]["operation"], "INSERT_BEFORE");
    assert_eq!(http_filter["match"]["context"], "GATEWAY");
    assert_eq!(
        http_filter["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"],
        "envoy.filters.http.router"
    );

    // The HTTP filter loads the extension config by name, over ADS.
    let ecds = &extension["patch"]["value"];
    let name = str_at(&ecds["name"], "extension config name");
    let filter = &http_filter["patch"]["value"];
    assert_eq!(filter["name"], name);
    assert!(filter["config_discovery"]["config_source"]["ads"].is_mapping());
    assert_eq!(filter["config_discovery"]["type_urls"][0], WASM_TYPE);
    assert_eq!(ecds["typed_config"]["@type"], WASM_TYPE);

    // Envoy's PluginConfig and VmConfig fields (Envoy 1.35+).
    let config = &ecds["typed_config"]["config"];
    only_fields(
        config,
        "Wasm.config",
        &[
            "name",
            "root_id",
            "vm_config",
            "configuration",
            "failure_policy",
            "reload_config",
            "capability_restriction_config",
            "allow_on_headers_stop_iteration",
        ],
    );
    assert_eq!(config["allow_on_headers_stop_iteration"], true);
    one_of(
        &config["failure_policy"],
        "failure_policy",
        &["FAIL_CLOSED", "FAIL_OPEN", "FAIL_RELOAD"],
    );
    let remote = &config["vm_config"]["code"]["remote"];
    check_module_reference(&remote["http_uri"]["uri"], &remote["sha256"], &r.file, "oci://");

    // The same gateway, failure policy and root id as the WasmPlugin.
    let plugin = resource("WasmPlugin");
    assert_eq!(
        spec["workloadSelector"]["labels"],
        plugin.doc["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(r.namespace(), plugin.namespace());
    assert_eq!(
        str_at(&config["failure_policy"], "failure_policy"),
        failure_policy(plugin.doc["spec"].get("failStrategy"))
    );
    assert_eq!(config["root_id"], plugin.doc["spec"]["pluginName"]);
}

#[test]
fn envoy_gateway_policy_uses_only_its_fields() {
    let r = resource("EnvoyExtensionPolicy");
    let spec = &r.doc["spec"];
    only_fields(
        spec,
        "EnvoyExtensionPolicy.spec",
        &[
            "targetRef",
            "targetRefs",
            "targetSelectors",
            "mergeType",
            "wasm",
            "extProc",
            "lua",
            "dynamicModule",
        ],
    );
    let wasm = &spec["wasm"][0];
    only_fields(wasm, "wasm[]", &["name", "rootID", "code", "config", "failOpen", "env"]);
    only_fields(&wasm["env"], "wasm[].env", &["hostKeys"]);
    assert_eq!(wasm["code"]["type"], "Image");
    only_fields(
        &wasm["code"]["image"],
        "wasm[].code.image",
        &["url", "sha256", "pullSecretRef", "tls"],
    );
    check_module_reference(
        &wasm["code"]["image"]["url"],
        &wasm["code"]["image"]["sha256"],
        &r.file,
        "",
    );
    assert_eq!(wasm["failOpen"], true);
}

#[test]
fn plugin_configs_are_accepted_by_the_plugins_own_parser() {
    for implied in all_implied() {
        let exposed = implied.host_env_keys();
        let json = implied.plugin_json();
        // The module sees only the variables the manifest exposes.
        let config = azp_bridge::config::parse(json.as_bytes(), &|name| {
            exposed.iter().any(|k| k == name).then(|| SECRET.to_owned())
        })
        .unwrap_or_else(|e| panic!("{}: {e}", implied.source));

        assert_eq!(config.clients.len(), 1, "{}", implied.source);
        let client = &config.clients[0];
        assert_eq!(client.client_id, TARGET, "{}", implied.source);
        assert_eq!(client.allowed_callers, vec![CALLER], "{}", implied.source);
        assert_eq!(client.realms, Some(vec!["demo".to_owned()]), "{}", implied.source);
        assert_eq!(
            client.secret.expose(),
            SECRET,
            "{}: secret from the mesh",
            implied.source
        );
        // The secret comes from the environment, never inline.
        let raw: Json = serde_json::from_str(&json).unwrap();
        assert_eq!(raw["clients"][0]["client_secret_env"], SECRET_ENV, "{}", implied.source);
        assert!(raw["clients"][0].get("client_secret").is_none(), "{}", implied.source);
        // hold_headers only where the filter may hold headers.
        assert_eq!(config.hold_headers, implied.holds_headers(), "{}", implied.source);

        // Without the variable exposed, the configuration is refused.
        let err = azp_bridge::config::parse(json.as_bytes(), &|_| None).unwrap_err();
        assert_eq!(err.field, "clients[0].client_secret_env", "{}", implied.source);
    }
}

#[test]
fn the_secret_reaches_the_gateway_environment() {
    // Istio: Secret -> gateway Deployment env (Helm values or patch) -> vmConfig.env HOST.
    let secret = resource_in("Secret", Some("deploy/istio/"));
    assert_eq!(secret.file, "deploy/istio/secret.yaml");
    let secret_name = str_at(&secret.doc["metadata"]["name"], "Secret name");
    let secret_keys = keys(&secret.doc["stringData"]);
    let plugin = resource("WasmPlugin");
    assert_eq!(secret.namespace(), plugin.namespace());

    let values = read_yaml("deploy/istio/gateway-values.yaml");
    let patch = read_yaml("deploy/istio/gateway-env-patch.yaml");
    let container = &patch["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "istio-proxy");
    let selector = &plugin.doc["spec"]["selector"]["matchLabels"];
    assert_eq!(&values["labels"], selector);

    for (what, env) in [
        ("gateway-values.yaml envVarFrom", &values["envVarFrom"]),
        ("gateway-env-patch.yaml env", &container["env"]),
    ] {
        let env = env.as_sequence().unwrap();
        for implied in [wasmplugin(), trafficextension(), envoyfilter()] {
            for key in implied.host_env_keys() {
                let var = env
                    .iter()
                    .find(|v| v["name"] == key.as_str())
                    .unwrap_or_else(|| panic!("{what} does not set {key} ({})", implied.source));
                let from = &var["valueFrom"]["secretKeyRef"];
                assert_eq!(from["name"], secret_name, "{what}");
                assert!(secret_keys.contains(&str_at(&from["key"], "key").to_owned()), "{what}");
            }
        }
    }

    // Envoy Gateway: Secret (proxies' namespace) -> EnvoyProxy container env -> env.hostKeys.
    let eg_docs = documents(&repo_root().join("deploy/envoy-gateway/azp-bridge.yaml"));
    let eg_secret = eg_docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    let proxy = eg_docs.iter().find(|d| d["kind"] == "EnvoyProxy").unwrap();
    let env = proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"]
        .as_sequence()
        .unwrap();
    for key in envoy_extension_policy().host_env_keys() {
        let var = env.iter().find(|v| v["name"] == key.as_str()).unwrap();
        let from = &var["valueFrom"]["secretKeyRef"];
        assert_eq!(from["name"], eg_secret["metadata"]["name"]);
        assert!(eg_secret["stringData"].get(str_at(&from["key"], "key")).is_some());
    }
}

// --- tests: a real Envoy running what each manifest implies ---

#[test]
fn wasmplugin_config_rewrites_a_refresh_in_a_real_envoy() {
    let implied = wasmplugin();
    assert_eq!(implied.config()["failure_policy"], "FAIL_OPEN");
    let forwarded = refresh_through(&implied);
    assert_posted_target(&forwarded, &implied.source);
    // Default mode: Content-Length dropped, the body went chunked.
    assert!(forwarded.chunked);
}

#[test]
fn trafficextension_config_rewrites_a_refresh_in_a_real_envoy() {
    let implied = trafficextension();
    assert_posted_target(&refresh_through(&implied), &implied.source);
}

#[test]
fn envoy_gateway_config_rewrites_a_refresh_in_a_real_envoy() {
    let implied = envoy_extension_policy();
    assert_posted_target(&refresh_through(&implied), &implied.source);
}

#[test]
fn envoyfilter_hold_headers_config_sends_the_target_as_basic_in_a_real_envoy() {
    let implied = envoyfilter();
    assert!(implied.holds_headers());
    let forwarded = refresh_through(&implied);
    let expected = format!(
        "grant_type=refresh_token&refresh_token={}&scope=openid",
        refresh_token(TARGET)
    );
    assert_eq!(forwarded.body_str(), expected);
    assert_eq!(
        forwarded.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
    assert!(!forwarded.chunked);
    let basic = format!("Basic {}", STANDARD.encode(format!("{TARGET}:{SECRET_FORM}")));
    assert_eq!(forwarded.header_all("authorization"), vec![basic.as_str()]);
}

/// Each manifest's filter on a gateway with Keycloak's host and another
/// service's (as a gateway-wide WasmPlugin or TrafficExtension runs it):
/// forged tokens sent to the other host, to the other cluster through a
/// path route, and with host variations, over HTTP/1.1 and HTTP/2, never
/// bring the secret to the other service; Keycloak still gets the rewrite.
#[test]
fn every_manifest_sends_the_secret_only_to_keycloak() {
    use support::two_hosts::{self, Gateway};
    for implied in all_implied() {
        let clusters = implied.keycloak_cluster();
        assert!(
            clusters.is_some() || implied.keycloak_host().is_some(),
            "{}: says where Keycloak is",
            implied.source
        );
        let gateway = Gateway::new(
            clusters.as_deref().unwrap_or("keycloak"),
            &implied
                .keycloak_host()
                .unwrap_or_else(|| "keycloak.example.com".to_owned()),
        );
        let env: Vec<(String, &str)> = implied.host_env_keys().into_iter().map(|k| (k, SECRET)).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let running = two_hosts::start(&gateway, &implied.typed_config, &env);
        let probes = two_hosts::probes(&gateway, TOKEN_PATH, clusters.is_some());
        let body = format!(
            "grant_type=refresh_token&client_id={CALLER}&refresh_token={}",
            refresh_token(TARGET)
        );
        let secrets = [
            SECRET.to_owned(),
            SECRET_FORM.to_owned(),
            STANDARD.encode(format!("{TARGET}:{SECRET_FORM}")),
            "client_secret".to_owned(),
        ];
        two_hosts::check(&running, &probes, body.as_bytes(), &secrets);
        let counters = running.envoy.counters();
        let elsewhere = probes.iter().filter(|p| !p.to_keycloak).count() as u64;
        assert_eq!(counters["passed.upstream_not_allowed"], elsewhere, "{}", implied.source);
        assert_eq!(
            counters["rewritten"],
            probes.len() as u64 - elsewhere,
            "{}",
            implied.source
        );
        running.envoy.assert_log_clean(&[SECRET, SECRET_FORM]);
    }
}

#[test]
fn failing_open_does_not_hide_a_secret_missing_from_the_gateway() {
    // The Secret never reached the gateway's environment: with failStrategy
    // FAIL_OPEN the configuration is still refused (Envoy does not start; in
    // Istio the update is rejected), instead of running without the bridge.
    // That holds for a local module, which is what the Istio agent hands
    // Envoy; a module Envoy fetches itself (code.remote) with FAIL_OPEN runs
    // without the bridge instead (tests/lost_bridge.rs).
    let implied = wasmplugin();
    let dir = TempDir::new("mesh-no-secret");
    let log = envoy_spec(&implied, support::free_port(), &dir).expect_refused();
    assert!(
        log.contains("`clients[0].client_secret_env` names environment variable ADMIN_CLIENT_SECRET, which is not set"),
        "{log}"
    );
}

// --- tests: the OCI image ---

#[test]
fn oci_image_is_the_compat_layout_of_the_release_module() {
    let dockerfile = std::fs::read_to_string(repo_root().join("deploy/oci/Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        instructions,
        [
            "FROM scratch",
            "COPY target/wasm32-wasip1/release/azp_bridge.wasm ./plugin.wasm"
        ]
    );

    // The OCI-artifact variant's runtime config names the root id the manifests use.
    let runtime: Json =
        serde_json::from_str(&std::fs::read_to_string(repo_root().join("deploy/oci/runtime-config.json")).unwrap())
            .unwrap();
    assert_eq!(runtime["type"], "envoy_proxy");
    assert_eq!(runtime["config"]["root_ids"], json!(["azp_bridge"]));
    assert_eq!(resource("WasmPlugin").doc["spec"]["pluginName"], "azp_bridge");

    let makefile = std::fs::read_to_string(repo_root().join("Makefile")).unwrap();
    assert!(
        makefile.contains("deploy/oci/build-image.sh"),
        "`make image` runs the build script"
    );
    assert!(
        makefile.contains("scripts/test-matrix.sh"),
        "`make test-matrix` runs the matrix"
    );
}

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

// --- other consumers of the rewritten request (issue 23, finding 3) ---

/// Every mirror in a manifest: Envoy's `request_mirror_policies` (and the old
/// `request_mirror_policy`), Istio's VirtualService `mirror`/`mirrors`, and
/// Gateway API `RequestMirror` filters. A mirror copies the request after the
/// filter rewrote it, secret included, to another cluster that the filter
/// cannot see (no attribute names a route's mirrors).
fn mirrors_in(value: &Yaml, at: &str, found: &mut Vec<String>) {
    match value {
        Yaml::Mapping(map) => {
            for (key, child) in map {
                let key = key.as_str().unwrap_or("?");
                let here = format!("{at}.{key}");
                if matches!(
                    key,
                    "request_mirror_policies" | "request_mirror_policy" | "mirror" | "mirrors"
                ) && !child.is_null()
                {
                    found.push(here.clone());
                }
                if key == "type" && child.as_str() == Some("RequestMirror") {
                    found.push(here.clone());
                }
                mirrors_in(child, &here, found);
            }
        }
        Yaml::Sequence(items) => {
            for (i, item) in items.iter().enumerate() {
                mirrors_in(item, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// The manifests the project ships, and what they attach to: every route in
/// them leads to Keycloak, so a mirror in any is on a Keycloak route.
fn shipped_manifests() -> Vec<PathBuf> {
    let mut files = deploy_files();
    for dir in ["envoy", "tests/fixtures/envoy-gateway"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                files.push(path);
            }
        }
    }
    files
}

/// A manifest's documents, with `${NAME}` placeholders (envoy/azp-bridge.yaml
/// is a template for scripts/render-envoy.sh) read as the word NAME.
fn template_documents(path: &Path) -> Vec<Yaml> {
    let mut text = std::fs::read_to_string(path).unwrap();
    while let Some(start) = text.find("${") {
        let end = text[start..].find('}').map(|e| start + e).unwrap();
        let name = text[start + 2..end].to_owned();
        text.replace_range(start..=end, &name);
    }
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Yaml::deserialize(doc).unwrap_or_else(|e| panic!("{} does not parse: {e}", relative(path))))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `make check-manifests` runs this too (scripts/check-manifests.sh).
#[test]
fn no_shipped_keycloak_route_is_mirrored() {
    for path in shipped_manifests() {
        let mut found = Vec::new();
        for (i, doc) in template_documents(&path).iter().enumerate() {
            mirrors_in(doc, &format!("document {i}"), &mut found);
        }
        assert!(
            found.is_empty(),
            "{}: a mirror copies the rewritten request, secret included, to another cluster \
             (SECURITY.md, \"Other consumers of the rewritten request\"): {found:?}",
            relative(&path)
        );
    }
}

/// The check finds each way a mirror is written (so it can fail).
#[test]
fn the_mirror_check_finds_each_kind_of_mirror() {
    let cases = [
        "route: {cluster: keycloak, request_mirror_policies: [{cluster: shadow}]}",
        "route: {cluster: keycloak, request_mirror_policy: {cluster: shadow}}",
        "spec: {http: [{route: [{destination: {host: keycloak}}], mirror: {host: shadow}}]}",
        "spec: {http: [{route: [{destination: {host: keycloak}}], mirrors: [{destination: {host: shadow}}]}]}",
        "spec: {rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: shadow}}}]}]}",
    ];
    for case in cases {
        let doc: Yaml = serde_yaml::from_str(case).unwrap();
        let mut found = Vec::new();
        mirrors_in(&doc, "doc", &mut found);
        assert!(!found.is_empty(), "{case}");
    }
    let mut found = Vec::new();
    mirrors_in(
        &serde_yaml::from_str("route: {cluster: keycloak, timeout: 30s}").unwrap(),
        "doc",
        &mut found,
    );
    assert!(found.is_empty());
}

/// Nothing between the filter and the router sees the rewritten request in
/// the shipped plain Envoy configurations (ext_authz, ext_proc or tap placed
/// after it would: SECURITY.md, "Other consumers of the rewritten request").
#[test]
fn the_filter_is_the_last_before_the_router_in_plain_envoy() {
    for rel in ["envoy/azp-bridge.yaml", "envoy/docker-compose.envoy.yaml"] {
        let docs = template_documents(&repo_root().join(rel));
        let mut chains = Vec::new();
        fn http_filters(value: &Yaml, out: &mut Vec<Vec<String>>) {
            match value {
                Yaml::Mapping(map) => {
                    for (key, child) in map {
                        if key.as_str() == Some("http_filters") {
                            let names = child
                                .as_sequence()
                                .unwrap()
                                .iter()
                                .map(|f| f["name"].as_str().unwrap().to_owned())
                                .collect();
                            out.push(names);
                        }
                        http_filters(child, out);
                    }
                }
                Yaml::Sequence(items) => items.iter().for_each(|i| http_filters(i, out)),
                _ => {}
            }
        }
        docs.iter().for_each(|d| http_filters(d, &mut chains));
        assert!(!chains.is_empty(), "{rel}");
        for chain in chains {
            assert_eq!(
                chain.iter().rev().take(2).collect::<Vec<_>>(),
                ["envoy.filters.http.router", "azp_bridge"],
                "{rel}"
            );
        }
    }
}
