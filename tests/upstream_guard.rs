//! The secret only ever goes to Keycloak: a gateway-wide filter (as an Istio
//! WasmPlugin attaches it) behind one listener with Keycloak's host and
//! another service's, in both header modes, with each way of saying where
//! Keycloak is (`upstream_clusters`, `authorities`, both).

mod support;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use support::two_hosts::{self, Gateway};
use support::EnvoySpec;

use support::TOKEN_PATH;
const SECRET: &str = "gu4rd-Secret/+&=";
const BASIC_SECRET: &str = "b4sic:Secret";

fn gateway() -> Gateway {
    Gateway {
        keycloak_cluster: "keycloak".to_owned(),
        keycloak_host: "keycloak.example.com".to_owned(),
    }
}

fn plugin_config(guard: &str, hold_headers: bool) -> String {
    let basic = if hold_headers {
        format!(
            r#",{{"client_id":"basic-admin","client_secret":"{BASIC_SECRET}","auth_method":"client_secret_basic","allowed_callers":["mobile"]}}"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{{{guard}"clients":[{{"client_id":"admin","client_secret":"{SECRET}","allowed_callers":["mobile"],"realms":["demo"]}}{basic}],"hold_headers":{hold_headers}}}"#
    )
}

/// A forged refresh token (any signature) naming `azp`.
fn forged(azp: &str) -> String {
    let payload = format!(r#"{{"iss":"https://keycloak.example.com/realms/demo","azp":"{azp}","typ":"Refresh"}}"#);
    format!("eyJhbGciOiJIUzUxMiJ9.{}.Zm9yZ2Vk", URL_SAFE_NO_PAD.encode(payload))
}

/// Every form a configured secret could take on the wire.
fn secrets() -> Vec<String> {
    vec![
        SECRET.to_owned(),
        "gu4rd-Secret%2F%2B%26%3D".to_owned(),
        "gu4rd-Secret".to_owned(),
        BASIC_SECRET.to_owned(),
        "b4sic%3ASecret".to_owned(),
        STANDARD.encode("basic-admin:b4sic%3ASecret"),
        "client_secret".to_owned(),
    ]
}

fn run(guard: &str, hold_headers: bool, path_routes: bool) {
    let gateway = gateway();
    let filter = two_hosts::wasm_filter(&plugin_config(guard, hold_headers), hold_headers, &[]);
    let running = two_hosts::start(&gateway, &filter, &[]);
    let probes = two_hosts::probes(&gateway, TOKEN_PATH, path_routes);
    let targets: &[&str] = if hold_headers {
        &["admin", "basic-admin"]
    } else {
        &["admin"]
    };
    for azp in targets {
        let body = format!(
            "grant_type=refresh_token&client_id=mobile&refresh_token={}",
            forged(azp)
        );
        two_hosts::check(&running, &probes, body.as_bytes(), &secrets());
    }
    let counters = running.envoy.counters();
    let elsewhere = probes.iter().filter(|p| !p.to_keycloak).count() * targets.len();
    let to_keycloak = probes.len() * targets.len() - elsewhere;
    assert_eq!(counters["passed.upstream_not_allowed"], elsewhere as u64, "{guard}");
    assert_eq!(counters["rewritten"], to_keycloak as u64, "{guard}");
    let mut never = secrets();
    never.retain(|s| s != "client_secret");
    let never: Vec<&str> = never.iter().map(String::as_str).collect();
    running.envoy.assert_log_clean(&never);
    running.envoy.wait_log("outcome=passed:upstream_not_allowed");
}

#[test]
fn with_upstream_clusters_only_keycloak_gets_the_secret() {
    for hold in [false, true] {
        run(r#""upstream_clusters":["keycloak"],"#, hold, true);
    }
}

#[test]
fn with_both_guards_only_keycloak_gets_the_secret() {
    for hold in [false, true] {
        run(
            r#""upstream_clusters":["keycloak"],"authorities":["keycloak.example.com"],"#,
            hold,
            true,
        );
    }
}

/// `authorities` alone cannot see a route inside Keycloak's host that sends
/// a path elsewhere (README: prefer `upstream_clusters`); every host
/// variation is still kept from the other service.
#[test]
fn with_authorities_only_other_hosts_never_get_the_secret() {
    for hold in [false, true] {
        run(r#""authorities":["Keycloak.Example.com"],"#, hold, false);
    }
}

#[test]
fn a_configuration_without_a_guard_is_refused() {
    let log = EnvoySpec::new(&plugin_config("", false), 9).expect_refused();
    assert!(
        log.contains("azp-bridge: invalid configuration: `upstream_clusters` is missing: set it (or `authorities`) to where Keycloak is, so that a secret only ever goes there"),
        "{log}"
    );
    assert!(!log.contains(SECRET) && !log.contains("gu4rd-Secret"), "{log}");
}
