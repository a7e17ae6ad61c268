//! The deployment files in deploy/, checked without a cluster (and without
//! Envoy: the e2e tier runs what they imply in a real Envoy,
//! e2e/tests/e2e/envoy/mesh_manifests.rs):
//! - every manifest parses, and uses only fields and values its API has
//!   (transcribed from Istio's extensions/v1alpha1 wasm.proto and
//!   traffic_extension.proto, networking/v1alpha3 envoy_filter.proto, and
//!   Envoy Gateway's wasm_types.go);
//! - each manifest's plugin configuration is accepted by the module's own
//!   parser, with the secret from the variables the manifest exposes;
//! - the Secret reaches the gateway's environment under the names the
//!   manifests read;
//! - the OCI image recipe is the compat layout of the release module;
//! - no shipped Keycloak route is mirrored, and the filter is the last before
//!   the router.

mod support;

use serde::Deserialize;
use serde_json::{json, Value as Json};
use serde_yaml::Value as Yaml;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::mesh::*;
use support::repo_root;

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
