//! What an operator sees, in a real Envoy: the error and counter for held
//! requests whose body never comes, configuration messages that never repeat
//! a value and say how to fix the environment, the warning for a body limit
//! above Envoy's buffer, and decision lines that carry `x-request-id`, say
//! which realm disagreed and cannot flood the warning log.

use crate::support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::time::{Duration, Instant};
use support::http1::{self, form_post, Connection};
use support::upstream::Upstream;
use support::{Envoy, EnvoySpec};

use support::TOKEN_PATH;
const SECRET: &str = "ops-s3cret";

fn plugin_config(extra: &str) -> String {
    format!(
        r#"{{"upstream_clusters":["keycloak"],"clients":[{{"client_id":"admin","client_secret":"{SECRET}","allowed_callers":["mobile"],"realms":["demo"]}}]{extra}}}"#
    )
}

fn token(iss_realm: &str) -> String {
    let payload = format!(r#"{{"iss":"http://keycloak.test/realms/{iss_realm}","azp":"admin","typ":"Refresh"}}"#);
    format!("eyJhbGciOiJIUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
}

fn refresh_body(iss_realm: &str) -> String {
    format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token={}",
        token(iss_realm)
    )
}

/// Envoy's own stat (not the filter's), e.g. `http.keycloak_front.downstream_rq_idle_timeout`.
fn envoy_stat(envoy: &Envoy, name: &str) -> u64 {
    let stats = http1::get(envoy.admin_port, &format!("/stats?filter=^{name}$")).unwrap();
    stats
        .body_str()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stat {name}"))
}

/// The log lines that contain `needle`.
fn lines_with(log: &str, needle: &str) -> Vec<String> {
    log.lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
}

/// Waits until `n` log lines contain `needle`; returns the log.
fn wait_lines(envoy: &Envoy, needle: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = envoy.log();
        if lines_with(&log, needle).len() >= n {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} lines with {needle:?}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_counter(envoy: &Envoy, name: &str, expected: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let value = envoy.counters().get(name).copied().unwrap_or(0);
        if value == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is {value}, not {expected}:\n{}",
            envoy.log()
        );
    }
}

// --- item: hold_headers without allow_on_headers_stop_iteration ---

const STUCK_ERROR: &str = "azp-bridge: a token request held for its body got none within 5 s: \"hold_headers\": true needs allow_on_headers_stop_iteration: true in the wasm filter's configuration (Envoy >= 1.35); without it every token request hangs until the stream idle timeout (504, downstream_rq_idle_timeout). Counted as azp_bridge.held_without_body; logged once per worker";

#[test]
fn held_requests_without_their_body_are_an_error_and_a_counter() {
    let upstream = Upstream::start();
    // The correct setting, as a control (and max_body_bytes written 65536.0).
    let good = EnvoySpec::new(
        &plugin_config(r#","hold_headers":true,"max_body_bytes":65536.0"#),
        upstream.port,
    )
    .hold_headers()
    .start();
    let body = refresh_body("demo");
    assert_eq!(
        http1::exchange(good.port, &form_post(TOKEN_PATH, &[], body.as_bytes())).status,
        200
    );
    good.wait_log("configured: 1 client(s), hold_headers=true, max_body_bytes=65536");

    // The setting forgotten; the stream idle timeout shortened from 300 s to 12 s.
    let bad = EnvoySpec::new(&plugin_config(r#","hold_headers":true"#), upstream.port)
        .hold_headers()
        .edit(
            "allow_on_headers_stop_iteration: true",
            "allow_on_headers_stop_iteration: false",
        )
        .edit(
            "stat_prefix: keycloak_front\n",
            "stat_prefix: keycloak_front\n          stream_idle_timeout: 12s\n",
        )
        .start();
    let started = Instant::now();
    let mut first = Connection::open(bad.port).unwrap();
    first.send(&form_post(TOKEN_PATH, &[], body.as_bytes())).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let mut second = Connection::open(bad.port).unwrap();
    second.send(&form_post(TOKEN_PATH, &[], body.as_bytes())).unwrap();

    // Within a few seconds, long before the idle timeout: one error, two counts.
    wait_counter(&bad, "held_without_body", 2, Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(11), "{:?}", started.elapsed());
    let log = bad.wait_log(STUCK_ERROR);
    let errors = lines_with(&log, STUCK_ERROR);
    assert_eq!(errors.len(), 1, "one error per worker:\n{log}");
    assert!(errors[0].contains("[error][wasm]"), "{}", errors[0]);
    assert!(upstream.requests().len() == 1, "the held requests never left Envoy");

    // The symptom the docs describe: 504 at the idle timeout, counted by Envoy.
    let response = first.read_response().expect("Envoy answers at the idle timeout");
    assert_eq!(response.status, 504);
    assert_eq!(response.body_str(), "stream timeout");
    assert_eq!(second.read_response().map(|r| r.status), Some(504));
    assert_eq!(envoy_stat(&bad, "http.keycloak_front.downstream_rq_idle_timeout"), 2);
    assert_eq!(bad.counters()["held_without_body"], 2, "each request counted once");

    // With the setting, nothing was reported.
    assert_eq!(good.counters()["held_without_body"], 0);
    assert!(!good.log().contains("got none within"), "{}", good.log());
    bad.assert_log_clean(&[SECRET]);
    good.assert_log_clean(&[SECRET]);
}

// --- items: configuration messages ---

#[test]
fn a_secret_in_client_secret_env_is_never_logged() {
    // What a template makes of "client_secret_env": "${ADMIN_CLIENT_SECRET}".
    let config = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret_env":"topsecret-VALUE-123","allowed_callers":["mobile"]}]}"#;
    let log = EnvoySpec::new(config, support::free_port())
        .host_env_key("ADMIN_CLIENT_SECRET")
        .expect_refused();
    assert!(!log.contains("topsecret-VALUE-123"), "{log}");
    assert!(
        log.contains(
            "azp-bridge: invalid configuration: `clients[0].client_secret_env` names an environment variable whose \
             name is not shown (it is not shaped like a variable name, [A-Za-z_][A-Za-z0-9_]*, and may be a secret: \
             give the variable's name, not its value), which is not set in the VM"
        ),
        "{log}"
    );
}

#[test]
fn a_variable_set_but_not_exposed_says_how_to_expose_it() {
    let config = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret_env":"AZP_OPS_SECRET","allowed_callers":["mobile"]}]}"#;
    // In Envoy's environment, but not listed in host_env_keys.
    let log = EnvoySpec::new(config, support::free_port())
        .env("AZP_OPS_SECRET", "set-but-hidden")
        .expect_refused();
    assert!(
        log.contains(
            "azp-bridge: invalid configuration: `clients[0].client_secret_env` names environment variable \
             AZP_OPS_SECRET, which is not set in the VM: set it in Envoy's environment and list it in \
             vm_config.environment_variables.host_env_keys (Istio: vmConfig.env with valueFrom: HOST; \
             Envoy Gateway: env.hostKeys)"
        ),
        "{log}"
    );
    assert!(!log.contains("set-but-hidden"), "{log}");
}

// --- item: max_body_bytes above Envoy's buffer limit ---

#[test]
fn a_body_limit_above_envoys_buffer_needs_the_listener_buffer_too() {
    let upstream = Upstream::start();
    let config = plugin_config(r#","max_body_bytes":2097152"#);
    let warning = "azp-bridge: max_body_bytes=2097152 is above Envoy's default buffer limit (1048576 bytes): \
                   Envoy answers a larger body with its own 413 before the filter sees it, unless the listener's \
                   per_connection_buffer_limit_bytes (or the route's per_request_buffer_limit_bytes) is at least max_body_bytes";
    let body_of = |len: usize| {
        let body = refresh_body("demo");
        format!("{body}&pad={}", "x".repeat(len - body.len() - 5))
    };
    let (mid, big) = (body_of(1_500_000), body_of(2_500_000));

    // Envoy's default buffer: Envoy answers first, the filter never decides.
    let envoy = EnvoySpec::new(&config, upstream.port).start();
    assert!(lines_with(&envoy.wait_log(warning), warning)[0].contains("[warning][wasm]"));
    let response = http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], mid.as_bytes()));
    assert_eq!(response.status, 413);
    assert_eq!(response.body_str(), "Payload Too Large");
    let counters = envoy.counters();
    assert_eq!((counters["rejected.body_too_large"], counters["rewritten"]), (0, 0));
    drop(envoy);

    // The listener's buffer raised with it: the limit is the filter's.
    let envoy = EnvoySpec::new(&config, upstream.port)
        .edit(
            "  - name: keycloak_front\n",
            "  - name: keycloak_front\n    per_connection_buffer_limit_bytes: 4194304\n",
        )
        .start();
    let response = http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], mid.as_bytes()));
    assert_eq!(response.status, 200);
    let forwarded = upstream.wait_for(1);
    assert!(forwarded[0]
        .body_str()
        .ends_with(&format!("&client_id=admin&client_secret={SECRET}")));
    let response = http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], big.as_bytes()));
    assert_eq!(response.status, 413);
    assert_eq!(
        response.body_str(),
        r#"{"error":"invalid_request","error_description":"Request body exceeds the azp-bridge limit of 2097152 bytes"}"#
    );
    assert_eq!(envoy.counter("rejected.body_too_large"), 1);
}

// --- item: decision lines ---

#[test]
fn decision_lines_carry_the_request_id_and_say_which_realm_disagreed() {
    let upstream = Upstream::start();
    let envoy = EnvoySpec::new(&plugin_config(""), upstream.port).start();
    let send = |path: &str, headers: &[(&str, &str)], body: &str| {
        let response = http1::exchange(envoy.port, &form_post(path, headers, body.as_bytes()));
        assert_eq!(response.status, 200);
    };
    send(TOKEN_PATH, &[("x-request-id", "ops-req-1")], &refresh_body("demo"));
    envoy.wait_log("caller=mobile azp=admin outcome=rewritten request_id=ops-req-1");
    // Without one, Envoy makes one (a UUID) before the filter runs.
    send(TOKEN_PATH, &[], &refresh_body("demo"));
    let log = wait_lines(&envoy, "outcome=rewritten request_id=", 2);
    let generated: Vec<String> = lines_with(&log, "outcome=rewritten request_id=")
        .iter()
        .map(|l| l.rsplit("request_id=").next().unwrap().to_owned())
        .filter(|id| id != "ops-req-1")
        .collect();
    assert_eq!(generated.len(), 1, "{log}");
    assert_eq!(generated[0].len(), 36, "{}", generated[0]);
    assert_eq!(generated[0].matches('-').count(), 4, "{}", generated[0]);

    // Which side of the realm check disagreed.
    send(
        "/realms/other/protocol/openid-connect/token",
        &[("x-request-id", "ops-req-2")],
        &refresh_body("other"),
    );
    envoy.wait_log(
        "realm=other caller=mobile azp=admin outcome=passed:realm_mismatch (the path's realm is not in the client's realms) request_id=ops-req-2",
    );
    send(TOKEN_PATH, &[("x-request-id", "ops-req-3")], &refresh_body("other"));
    envoy.wait_log(
        "realm=demo caller=mobile azp=admin outcome=passed:realm_mismatch (the token's issuer is not the path's realm) request_id=ops-req-3",
    );
    // A request id holding a secret is not logged.
    send(
        TOKEN_PATH,
        &[("x-request-id", &format!("x{SECRET}"))],
        &refresh_body("demo"),
    );
    envoy.wait_log("outcome=rewritten request_id=<redacted>");
    assert_eq!(envoy.counter("passed.realm_mismatch"), 2);
    envoy.assert_log_clean(&[SECRET, &token("demo"), &token("other")]);
}

#[test]
fn unauthenticated_garbage_cannot_flood_the_warning_log() {
    let upstream = Upstream::start();
    let envoy = EnvoySpec::new(&plugin_config(""), upstream.port).start();
    for i in 0..5 {
        let request_id = format!("bad-token-{i}");
        let response = http1::exchange(
            envoy.port,
            &form_post(
                TOKEN_PATH,
                &[("x-request-id", &request_id)],
                b"grant_type=refresh_token&client_id=mobile&refresh_token=not-a-jwt",
            ),
        );
        assert_eq!(response.status, 200);
        let request_id = format!("ambiguous-{i}");
        let response = http1::exchange(
            envoy.port,
            &form_post(
                TOKEN_PATH,
                &[("x-request-id", &request_id)],
                format!(
                    "grant%5Ftype=refresh_token&client_id=mobile&refresh_token={}",
                    token("demo")
                )
                .as_bytes(),
            ),
        );
        assert_eq!(response.status, 200);
    }
    wait_lines(&envoy, "outcome=passed:not_decodable", 5);
    let log = wait_lines(&envoy, "outcome=passed:ambiguous", 5);
    // A malformed token is a debug line, every time.
    let not_decodable = lines_with(&log, "outcome=passed:not_decodable");
    assert_eq!(not_decodable.len(), 5, "{log}");
    assert!(not_decodable.iter().all(|l| l.contains("[debug][wasm]")), "{log}");
    // An ambiguous request: one warning a minute per worker, the rest at debug.
    let ambiguous = lines_with(&log, "outcome=passed:ambiguous");
    assert_eq!(ambiguous.len(), 5, "{log}");
    assert!(ambiguous[0].contains("[warning][wasm]"), "{}", ambiguous[0]);
    assert!(
        ambiguous[0].ends_with(
            "outcome=passed:ambiguous (a parameter name is not plain [A-Za-z0-9_.-]) request_id=ambiguous-0 \
             (at most one such warning a minute per worker; the others at debug level)"
        ),
        "{}",
        ambiguous[0]
    );
    assert!(ambiguous[1..].iter().all(|l| l.contains("[debug][wasm]")), "{log}");
    let counters = envoy.counters();
    assert_eq!((counters["passed.not_decodable"], counters["passed.ambiguous"]), (5, 5));
    assert_eq!(lines_with(&log, "[warning][wasm]").len(), 1, "{log}");
}
