//! The Wasm filter each shipped mesh manifest implies (built the way Istio or
//! Envoy Gateway builds it, or taken verbatim from the EnvoyFilter;
//! tests/support/mesh.rs), in a real Envoy:
//! - put into the shipped Envoy configuration in place of its own filter, it
//!   rewrites a refresh exactly;
//! - on a gateway with Keycloak's host and another service's, it sends the
//!   secret only to Keycloak (support/two_hosts.rs);
//! - with the secret missing from the gateway, FAIL_OPEN does not hide it.
//!
//! The manifests themselves are checked natively: tests/mesh_manifests.rs.

use crate::support;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_yaml::Value as Yaml;
use std::collections::{BTreeSet, HashMap};
use support::http1::{self, form_post};
use support::mesh::*;
use support::upstream::Upstream;
use support::{repo_root, EnvoySpec, TempDir};

use support::TOKEN_PATH;

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
    // without the bridge instead (e2e/tests/e2e/envoy/lost_bridge.rs).
    let implied = wasmplugin();
    let dir = TempDir::new("mesh-no-secret");
    let log = envoy_spec(&implied, support::free_port(), &dir).expect_refused();
    assert!(
        log.contains("`clients[0].client_secret_env` names environment variable ADMIN_CLIENT_SECRET, which is not set"),
        "{log}"
    );
}
