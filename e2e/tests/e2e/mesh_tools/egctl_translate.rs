//! deploy/envoy-gateway/azp-bridge.yaml as Envoy Gateway itself translates it,
//! run in a real Envoy. scripts/check-manifests.sh (its `envoy-gateway` step,
//! which this test runs unless the script is running it) translates the
//! manifest with tests/fixtures/envoy-gateway/ through `egctl x translate`
//! (statuses, xDS, IR) and, since egctl has no Wasm module cache, adds the
//! policy's Wasm extension to the route's IR and runs Envoy Gateway's xDS
//! translator on it (the script says why and how). This test:
//! - checks that the Wasm filter Envoy Gateway built carries the manifest's
//!   plugin configuration, root id, failOpen, VM id, runtime and host key, and
//!   fetches the module from Envoy Gateway's cache;
//! - checks that, apart from the Wasm filter, that xDS is what egctl itself
//!   translated (the same listener, route and cluster);
//! - runs the translated listener (its whole HTTP filter chain), route and
//!   cluster in a real Envoy with only the module's code source replaced by
//!   the local file (the cache's fetch needs a controller), in front of the
//!   recording upstream, and checks the exact bytes of one rewritten refresh.
//!
//! The tests are ignored by a plain `make e2e` (and so by `make test`): the
//! first run builds istioctl and egctl, which took about 30 minutes on the
//! project's 2-core machine (README.md, "Checking the mesh manifests").
//! `make check-manifests` and `make test-matrix` run them, or
//! `cargo test -p azp-bridge-e2e -- mesh_tools:: --ignored`.

use crate::support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use support::http1::{self, form_post};
use support::upstream::Upstream;
use support::{repo_root, EnvoySpec, TempDir};

const TARGET: &str = "spring-boot-admin-client";
const CALLER: &str = "mobile-app-client";
const SECRET_ENV: &str = "ADMIN_CLIENT_SECRET";
use support::TOKEN_PATH;
const SECRET: &str = "eg-s3cret/+&=";
const SECRET_FORM: &str = "eg-s3cret%2F%2B%26%3D";
/// The cluster Envoy Gateway builds for rule 0 of HTTPRoute keycloak/keycloak.
const CLUSTER: &str = "httproute/keycloak/keycloak/rule/0";
const WASM_FILTER_PREFIX: &str = "envoy.filters.http.wasm/";
/// The Gateway's HTTP listener (Envoy Gateway also adds its readiness listener).
const LISTENER: &str = "keycloak/keycloak/http";

/// The script's output directory, after its `envoy-gateway` step ran once
/// for this test binary.
fn translated() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // `make check-manifests` runs this test right after the step.
        if std::env::var_os("CHECK_MANIFESTS_DONE").is_none() {
            let output = Command::new(repo_root().join("scripts/check-manifests.sh"))
                .arg("envoy-gateway")
                .env("AZP_BRIDGE_WASM", support::wasm_path())
                .current_dir(repo_root())
                .output()
                .expect("scripts/check-manifests.sh runs");
            assert!(
                output.status.success(),
                "scripts/check-manifests.sh envoy-gateway failed:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        repo_root().join(".cache/check-manifests/envoy-gateway")
    })
}

fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // The translator writes YAML; JSON is YAML too.
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    serde_json::to_value(yaml).unwrap()
}

/// One kind of xDS resource from Envoy Gateway's xDS translator (with Wasm).
fn with_wasm(kind: &str) -> Vec<Json> {
    let path = translated().join(format!("xds-with-wasm/azp-bridge.{kind}.yaml"));
    read_json(&path).as_array().cloned().unwrap_or_default()
}

/// One kind of xDS resource from `egctl x translate --to xds` (config dump).
fn from_egctl(kind: &str) -> Vec<Json> {
    let dump = read_json(&translated().join("xds.json"));
    let configs: Vec<&Json> = dump["xds"]
        .as_object()
        .expect("egctl's xds output has one entry per gateway")
        .values()
        .flat_map(|d| d["configs"].as_array().unwrap())
        .collect();
    let (type_suffix, list, field): (&str, &str, &str) = match kind {
        "listeners" => ("ListenersConfigDump", "dynamicListeners", "activeState.listener"),
        "routes" => ("RoutesConfigDump", "dynamicRouteConfigs", "routeConfig"),
        "clusters" => ("ClustersConfigDump", "dynamicActiveClusters", "cluster"),
        "endpoints" => ("EndpointsConfigDump", "dynamicEndpointConfigs", "endpointConfig"),
        other => panic!("no kind {other}"),
    };
    configs
        .iter()
        .filter(|c| c["@type"].as_str().unwrap_or("").ends_with(type_suffix))
        .flat_map(|c| c[list].as_array().cloned().unwrap_or_default())
        .map(|entry| {
            let mut resource = field.split('.').fold(entry, |v, f| v[f].clone());
            // A config dump wraps each resource in an Any.
            resource.as_object_mut().unwrap().remove("@type");
            resource
        })
        .collect()
}

fn policy_wasm() -> Json {
    let ir = read_json(&translated().join("wasm-ir.json"));
    assert_eq!(ir.as_array().unwrap().len(), 1, "one Wasm extension: {ir}");
    ir[0].clone()
}

/// The listener's HTTP connection manager (Envoy Gateway puts an HTTP
/// listener's chain in `defaultFilterChain`).
fn hcm(listener: &mut Json) -> &mut Json {
    let chain = if listener.get("defaultFilterChain").is_some() {
        &mut listener["defaultFilterChain"]
    } else {
        &mut listener["filterChains"][0]
    };
    let filters = chain["filters"].as_array_mut().unwrap();
    let hcm = filters
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.network.http_connection_manager")
        .expect("an HTTP connection manager");
    &mut hcm["typedConfig"]
}

fn wasm_filters(listener: &mut Json) -> Vec<&mut Json> {
    hcm(listener)["httpFilters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .filter(|f| f["name"].as_str().unwrap_or("").starts_with(WASM_FILTER_PREFIX))
        .collect()
}

fn http_listener(listeners: Vec<Json>) -> Json {
    only(
        listeners.into_iter().filter(|l| l["name"] == LISTENER).collect(),
        "HTTP listener",
    )
}

fn only(mut resources: Vec<Json>, what: &str) -> Json {
    assert_eq!(resources.len(), 1, "one {what}: {resources:?}");
    resources.pop().unwrap()
}

fn refresh_token(azp: &str) -> String {
    let payload =
        format!(r#"{{"iss":"https://sso.example.test/realms/demo","azp":"{azp}","typ":"Refresh","sid":"s1"}}"#);
    format!("eyJhbGciOiJIUzUxMiJ9.{}.c2lnbmF0dXJl", URL_SAFE_NO_PAD.encode(payload))
}

#[test]
#[ignore = "builds istioctl and egctl on first use: run by make check-manifests"]
fn envoy_gateway_builds_the_wasm_filter_from_the_policy() {
    let wasm_ir = policy_wasm();
    let mut listener = http_listener(with_wasm("listeners"));
    let filters = wasm_filters(&mut listener);
    assert_eq!(filters.len(), 1, "one Wasm filter");
    let filter = &filters[0];
    let name = wasm_ir["name"].as_str().unwrap();
    assert_eq!(name, "envoyextensionpolicy/keycloak/azp-bridge/wasm/0");
    assert_eq!(filter["name"], format!("{WASM_FILTER_PREFIX}{name}"));
    // On the listener but disabled: the route enables it (the policy targets the HTTPRoute).
    assert_eq!(filter["disabled"], true);

    let config = &filter["typedConfig"]["config"];
    assert_eq!(
        filter["typedConfig"]["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    );
    assert_eq!(config["name"], "azp-bridge");
    assert_eq!(config["rootId"], "azp_bridge");
    // failOpen: true becomes the deprecated fail_open, not failure_policy.
    assert_eq!(config["failOpen"], true);
    assert!(config.get("failurePolicy").is_none(), "{config}");
    assert_eq!(config["vmConfig"]["vmId"], name);
    assert_eq!(config["vmConfig"]["runtime"], "envoy.wasm.runtime.v8");
    assert_eq!(
        config["vmConfig"]["environmentVariables"]["hostEnvKeys"],
        json!([SECRET_ENV])
    );
    let remote = &config["vmConfig"]["code"]["remote"];
    assert_eq!(remote["httpUri"]["uri"], wasm_ir["httpWasmCode"]["servingURL"]);
    assert_eq!(remote["httpUri"]["cluster"], "wasm_cluster");
    assert_eq!(remote["sha256"], wasm_ir["httpWasmCode"]["sha256"]);

    // The plugin configuration is the manifest's `config`, as JSON.
    let configuration = &config["configuration"];
    assert_eq!(
        configuration["@type"],
        "type.googleapis.com/google.protobuf.StringValue"
    );
    let plugin: Json = serde_json::from_str(configuration["value"].as_str().unwrap()).unwrap();
    assert_eq!(plugin, wasm_ir["config"]);
    assert_eq!(plugin["upstream_clusters"], json!([CLUSTER]));
    assert_eq!(plugin["clients"][0]["client_secret_env"], SECRET_ENV);

    // The module's own parser accepts it with the secret from the host key.
    let parsed = azp_bridge::config::parse(configuration["value"].as_str().unwrap().as_bytes(), &|n| {
        (n == SECRET_ENV).then(|| SECRET.to_owned())
    })
    .unwrap();
    assert_eq!(parsed.clients[0].client_id, TARGET);

    // The route enables it, and routes to the cluster upstream_clusters names.
    let route_config = only(with_wasm("routes"), "route configuration");
    let routes = route_config["virtualHosts"][0]["routes"].as_array().unwrap();
    assert!(!routes.is_empty());
    for route in routes {
        assert_eq!(route["route"]["cluster"], CLUSTER, "{route}");
        let per_filter = &route["typedPerFilterConfig"][format!("{WASM_FILTER_PREFIX}{name}")];
        assert_eq!(
            per_filter["@type"], "type.googleapis.com/envoy.config.route.v3.FilterConfig",
            "{route}"
        );
    }
}

/// Drops what the Wasm extension changes: the filter, the routes' switch for
/// it, and the routes' action (egctl's own translation, without the module
/// cache, answers 500 there instead of routing: see scripts/check-manifests.sh).
fn without_wasm(kind: &str, mut resources: Vec<Json>) -> Vec<Json> {
    for resource in &mut resources {
        match kind {
            "listeners" => {
                hcm(resource)["httpFilters"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|f| !f["name"].as_str().unwrap_or("").starts_with(WASM_FILTER_PREFIX));
            }
            "routes" => {
                for host in resource["virtualHosts"].as_array_mut().unwrap() {
                    for route in host["routes"].as_array_mut().unwrap() {
                        let object = route.as_object_mut().unwrap();
                        object.remove("route");
                        object.remove("directResponse");
                        if let Some(per_filter) = route.get_mut("typedPerFilterConfig").and_then(Json::as_object_mut) {
                            per_filter.retain(|name, _| !name.starts_with(WASM_FILTER_PREFIX));
                            if per_filter.is_empty() {
                                route.as_object_mut().unwrap().remove("typedPerFilterConfig");
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    resources
}

#[test]
#[ignore = "builds istioctl and egctl on first use: run by make check-manifests"]
fn apart_from_the_wasm_filter_it_is_what_egctl_translated() {
    for kind in ["listeners", "routes", "clusters"] {
        let ours = without_wasm(kind, with_wasm(kind));
        let egctl = without_wasm(kind, from_egctl(kind));
        assert!(!egctl.is_empty(), "egctl translated no {kind}");
        assert_eq!(ours, egctl, "{kind}");
    }
    // egctl's own translation has no Wasm filter and answers 500 on the route
    // (no module cache: see the script); with the filter, the route routes.
    let mut listener = http_listener(from_egctl("listeners"));
    assert!(wasm_filters(&mut listener).is_empty());
    for (resource, action, expected) in [
        (from_egctl("routes"), "directResponse", json!({"status": 500})),
        (with_wasm("routes"), "route", json!(CLUSTER)),
    ] {
        let config = only(resource, "route configuration");
        let routes = config["virtualHosts"][0]["routes"].as_array().unwrap();
        assert!(!routes.is_empty());
        for route in routes {
            let got = if action == "route" {
                &route[action]["cluster"]
            } else {
                &route[action]
            };
            assert_eq!(got, &expected, "{route}");
        }
    }
}

/// Envoy Gateway's listener, route and cluster as a static Envoy
/// configuration on 127.0.0.1: the listener's address, the route inline
/// instead of over RDS, the cluster's endpoint (EDS) as the recording
/// upstream, the module's code source as the local file. Everything else is
/// as translated.
fn static_config() -> String {
    let mut listener = http_listener(with_wasm("listeners"));
    let route_config = only(with_wasm("routes"), "route configuration");
    let clusters = with_wasm("clusters");
    let mut cluster = clusters
        .into_iter()
        .find(|c| c["name"] == CLUSTER)
        .unwrap_or_else(|| panic!("no cluster {CLUSTER}"));
    let mut endpoints = with_wasm("endpoints")
        .into_iter()
        .find(|e| e["clusterName"] == CLUSTER)
        .unwrap_or_else(|| panic!("no endpoints for {CLUSTER}"));

    listener["address"]["socketAddress"] = json!({"address": "127.0.0.1", "portValue": "AZP_LISTEN_PORT"});
    {
        let hcm = hcm(&mut listener);
        assert_eq!(hcm["rds"]["routeConfigName"], route_config["name"]);
        hcm.as_object_mut().unwrap().remove("rds");
        hcm["routeConfig"] = route_config;
    }
    for filter in wasm_filters(&mut listener) {
        let code = &mut filter["typedConfig"]["config"]["vmConfig"]["code"];
        assert!(code.get("remote").is_some(), "Envoy Gateway fetches the module: {code}");
        *code = json!({"local": {"filename": "AZP_WASM_PATH"}});
    }
    assert_eq!(cluster["type"], "EDS", "{cluster}");
    let cluster_object = cluster.as_object_mut().unwrap();
    cluster_object.remove("edsClusterConfig");
    cluster_object.insert("type".into(), json!("STATIC"));
    let mut replaced = 0;
    for group in endpoints["endpoints"].as_array_mut().unwrap() {
        for lb in group["lbEndpoints"].as_array_mut().unwrap() {
            lb["endpoint"]["address"]["socketAddress"] =
                json!({"address": "127.0.0.1", "portValue": "AZP_UPSTREAM_PORT"});
            replaced += 1;
        }
    }
    assert_eq!(replaced, 1, "one endpoint: {endpoints}");
    cluster_object.insert("loadAssignment".into(), endpoints);

    let config = json!({
        "admin": {"address": {"socketAddress": {"address": "AZP_ADMIN_ADDRESS", "portValue": "AZP_ADMIN_PORT"}}},
        "static_resources": {"listeners": [listener], "clusters": [cluster]},
    });
    let mut text = serde_json::to_string_pretty(&config).unwrap();
    for (token, placeholder) in [
        ("\"AZP_LISTEN_PORT\"", "${LISTEN_PORT}"),
        ("\"AZP_ADMIN_PORT\"", "${ADMIN_PORT}"),
        ("\"AZP_UPSTREAM_PORT\"", "${UPSTREAM_PORT}"),
        ("AZP_ADMIN_ADDRESS", "${ADMIN_ADDRESS}"),
        ("AZP_WASM_PATH", "${WASM_PATH}"),
    ] {
        assert!(text.contains(token), "{token}");
        text = text.replace(token, placeholder);
    }
    text
}

#[test]
#[ignore = "builds istioctl and egctl on first use: run by make check-manifests"]
fn the_translated_filter_chain_rewrites_a_refresh_in_a_real_envoy() {
    let dir = TempDir::new("egctl-translate");
    let path = dir.path.join("envoy-gateway-static.json");
    std::fs::write(&path, static_config()).unwrap();
    let upstream = Upstream::start();
    let mut spec = EnvoySpec::new("{}", upstream.port).env(SECRET_ENV, SECRET);
    // An absolute path: EnvoySpec joins it to the repository root.
    spec.template = path.display().to_string();
    let envoy = spec.start();

    let body = format!(
        "grant_type=refresh_token&client_id={CALLER}&refresh_token={}&scope=openid",
        refresh_token(TARGET)
    );
    let resp = http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
    assert_eq!(resp.status, 200, "{}", envoy.log());
    let forwarded = upstream.single();
    assert_eq!(forwarded.start_line, format!("POST {TOKEN_PATH} HTTP/1.1"));
    assert_eq!(
        forwarded.body_str(),
        format!(
            "grant_type=refresh_token&refresh_token={}&scope=openid&client_id={TARGET}&client_secret={SECRET_FORM}",
            refresh_token(TARGET)
        )
    );
    // Default header mode: Content-Length dropped, the body went chunked.
    assert!(forwarded.chunked);
    assert_eq!(forwarded.header("content-length"), None);
    assert_eq!(envoy.counter("rewritten"), 1);
    envoy.assert_log_clean(&[SECRET, SECRET_FORM, &refresh_token(TARGET)]);
}
