//! The secret only ever goes to Keycloak: a gateway-wide filter (as an Istio
//! WasmPlugin attaches it) behind one listener with Keycloak's host and
//! another service's, in both header modes, with each way of saying where
//! Keycloak is (`upstream_clusters`, `authorities`, both), and with each way
//! a listener may read a port (none stripped, `strip_any_host_port`,
//! `strip_matching_host_port`).

use crate::support;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use support::two_hosts::{self, Gateway, PortStripping, Probe};
use support::EnvoySpec;

use support::TOKEN_PATH;
const SECRET: &str = "gu4rd-Secret/+&=";
const BASIC_SECRET: &str = "b4sic:Secret";

const HOST: &str = "keycloak.example.com";

fn gateway() -> Gateway {
    Gateway::new("keycloak", HOST)
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
            &format!(r#""upstream_clusters":["keycloak"],"authorities":["{HOST}","{HOST}:9443"],"#),
            hold,
            true,
        );
    }
}

/// Where a request with this authority goes, and whether it is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lands {
    /// Keycloak's virtual host, with the target's credentials.
    Rewritten,
    /// Keycloak's virtual host, as it was sent (a spelling not listed).
    KeycloakAsSent,
    /// The catch-all: the other service, as it was sent.
    Other,
}

/// Issue 23, finding 1: `authorities` alone, on a gateway whose Keycloak
/// virtual host names only `keycloak.example.com` and whose catch-all `*`
/// goes to another service, the filter on every route. Each spelling of the
/// authority is sent over HTTP/1.1 and HTTP/2 to a listener that strips no
/// port, any numeric port, or its own port only. Before the fix, `:x`, `:`,
/// `:4294967296` (and `:1234` where only the listener's port is stripped)
/// were taken for Keycloak while Envoy routed them to the other service,
/// which got the secret.
#[test]
fn authorities_are_the_spellings_envoy_routes_to_keycloak() {
    let guard = format!(r#""authorities":["{HOST}"],"#);
    for stripping in [PortStripping::None, PortStripping::Any, PortStripping::Matching] {
        let gateway = Gateway {
            any_port_domain: false,
            port_stripping: stripping,
            ..gateway()
        };
        let cases = |listener: u16| {
            use Lands::*;
            let stripped_any = if stripping == PortStripping::Any {
                Rewritten
            } else {
                Other
            };
            let stripped_own = if stripping == PortStripping::None {
                Other
            } else {
                Rewritten
            };
            vec![
                (HOST.to_owned(), Rewritten),
                (HOST.to_ascii_uppercase(), Rewritten),
                (format!("{HOST}:x"), Other),
                (format!("{HOST}:"), Other),
                (format!("{HOST}:4294967296"), Other),
                (format!("{HOST}:1234"), stripped_any),
                (format!("{HOST}:{listener}"), stripped_own),
                (format!("{HOST}:{listener}:{listener}"), Other),
                (format!("{HOST}."), Other),
                (format!("{HOST}.:{listener}"), Other),
                (format!("{HOST}:{listener}x"), Other),
                (format!("evil-{HOST}"), Other),
                ("other-app.example.com".to_owned(), Other),
                ("127.0.0.1".to_owned(), Other),
            ]
        };
        run_spellings(&gateway, &guard, &cases, &format!("{stripping:?}"));
    }
}

/// Istio's domains (`host` and `host:*`): a spelling the operator did not
/// list reaches Keycloak, but without a secret (fail closed); listed ones,
/// ports included, are rewritten.
#[test]
fn authorities_with_ports_are_matched_exactly() {
    let guard = format!(r#""authorities":["{HOST}","{HOST}:9443"],"#);
    let cases = |_listener: u16| {
        use Lands::*;
        vec![
            (HOST.to_owned(), Rewritten),
            (format!("{HOST}:9443"), Rewritten),
            (format!("{}:9443", HOST.to_ascii_uppercase()), Rewritten),
            (format!("{HOST}:9444"), KeycloakAsSent),
            (format!("{HOST}:x"), KeycloakAsSent),
            (format!("{HOST}:09443"), KeycloakAsSent),
            ("other-app.example.com:9443".to_owned(), Other),
        ]
    };
    run_spellings(&gateway(), &guard, &cases, "host:*");
}

/// Sends a forged refresh naming `admin` with each authority, over HTTP/1.1
/// and HTTP/2, and checks where it landed and what it carried, the counters
/// and the log.
fn run_spellings(gateway: &Gateway, guard: &str, cases: &dyn Fn(u16) -> Vec<(String, Lands)>, what: &str) {
    let filter = two_hosts::wasm_filter(&plugin_config(guard, false), false, &[]);
    let running = two_hosts::start(gateway, &filter, &[]);
    let cases = cases(running.envoy.port);
    let probes: Vec<Probe> = [false, true]
        .into_iter()
        .flat_map(|http2| {
            // The HTTP/2 client (the http crate) cannot send two ports.
            let sendable = move |authority: &String| !http2 || authority.matches(':').count() < 2;
            cases
                .iter()
                .filter(move |(a, _)| sendable(a))
                .map(move |(authority, lands)| Probe {
                    authority: authority.clone(),
                    path: TOKEN_PATH.to_owned(),
                    http2,
                    to_keycloak: *lands != Lands::Other,
                    rewritten: *lands == Lands::Rewritten,
                })
        })
        .collect();
    let body = format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token={}",
        forged("admin")
    );
    two_hosts::check(&running, &probes, body.as_bytes(), &secrets());
    let counters = running.envoy.counters();
    let rewritten = probes.iter().filter(|p| p.rewritten).count() as u64;
    assert_eq!(counters["rewritten"], rewritten, "{what}");
    assert_eq!(
        counters["passed.upstream_not_allowed"],
        probes.len() as u64 - rewritten,
        "{what}"
    );
    let mut never = secrets();
    never.retain(|s| s != "client_secret");
    let never: Vec<&str> = never.iter().map(String::as_str).collect();
    running.envoy.assert_log_clean(&never);
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
