//! Issue 26: each request's decision in a real Envoy's access log, as the
//! shipped configuration (envoy/azp-bridge.yaml) writes it: every decision
//! that can be provoked from outside, once per request, with the target
//! client of a rewrite, `-` for what is not a token request, and no secret,
//! `Authorization` or token anywhere in the log, in both header modes.
//!
//! `passed.signing_failed` cannot be provoked: it needs a host without a
//! clock or random source, which Envoy always has (the native tests in
//! src/stream/tests.rs cover it).

use crate::support;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use std::time::{Duration, Instant};
use support::http1::{self, form_post};
use support::upstream::Upstream;
use support::{EnvoySpec, TempDir, TOKEN_PATH};

const SECRET: &str = "access-log-s3cret";
const BASIC_SECRET: &str = "access-log-basic-s3cret";
const HOST: &str = "keycloak.test";
/// The shipped access log's sink, which the test points at a file.
const SHIPPED_SINK: &str = "path: /dev/stdout";

/// A `client_secret_basic` target needs `hold_headers`: only then is
/// `basic-admin` configured.
fn plugin_config(hold_headers: bool) -> String {
    let basic = if hold_headers {
        format!(
            r#",{{"client_id":"basic-admin","client_secret":"{BASIC_SECRET}","auth_method":"client_secret_basic","allowed_callers":["mobile"],"realms":["demo"]}}"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"upstream_clusters":["keycloak"],"authorities":["{HOST}"],"hold_headers":{hold_headers},"max_body_bytes":1024,"clients":[{{"client_id":"admin","client_secret":"{SECRET}","allowed_callers":["mobile"],"realms":["demo"]}}{basic}]}}"#
    )
}

fn token(azp: &str) -> String {
    let payload = format!(r#"{{"iss":"http://{HOST}/realms/demo","azp":"{azp}","typ":"Refresh"}}"#);
    format!("eyJhbGciOiJIUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
}

fn refresh(azp: &str, caller: &str) -> String {
    format!(
        "grant_type=refresh_token&refresh_token={}&client_id={caller}",
        token(azp)
    )
}

/// One request and the `azp_bridge="..."` its access log line must end with.
struct Case {
    id: &'static str,
    request: Vec<u8>,
    status: u16,
    decision: &'static str,
}

fn case(id: &'static str, request: Vec<u8>, status: u16, decision: &'static str) -> Case {
    Case {
        id,
        request,
        status,
        decision,
    }
}

/// A form POST to `path` with this request id.
fn post(id: &str, path: &str, body: &str) -> Vec<u8> {
    form_post(path, &[("x-request-id", id)], body.as_bytes())
}

fn cases(hold_headers: bool) -> Vec<Case> {
    let other_realm = "/realms/other/protocol/openid-connect/token";
    let elsewhere = String::from_utf8(post("al-upstream", TOKEN_PATH, &refresh("admin", "mobile")))
        .unwrap()
        .replace(&format!("host: {HOST}"), "host: elsewhere.test");
    let gzip = form_post(
        TOKEN_PATH,
        &[("x-request-id", "al-ambiguous"), ("content-encoding", "gzip")],
        refresh("admin", "mobile").as_bytes(),
    );
    let too_large = format!("{}&padding={}", refresh("admin", "mobile"), "x".repeat(1024));
    let not_token = format!(
        "GET {TOKEN_PATH}?refresh_token={} HTTP/1.1\r\nhost: {HOST}\r\nx-request-id: al-not-token\r\n\r\n",
        token("admin")
    );
    let mut cases = vec![
        case(
            "al-rewritten",
            post("al-rewritten", TOKEN_PATH, &refresh("admin", "mobile")),
            200,
            "rewritten client=admin",
        ),
        case(
            "al-same-client",
            post("al-same-client", TOKEN_PATH, &refresh("admin", "admin")),
            200,
            "passed.same_client",
        ),
        case(
            "al-unknown-azp",
            post("al-unknown-azp", TOKEN_PATH, &refresh("stranger", "mobile")),
            200,
            "passed.unknown_azp",
        ),
        case(
            "al-caller",
            post("al-caller", TOKEN_PATH, &refresh("admin", "intruder")),
            200,
            "passed.caller_not_allowed",
        ),
        case(
            "al-realm",
            post("al-realm", other_realm, &refresh("admin", "mobile")),
            200,
            "passed.realm_mismatch",
        ),
        case(
            "al-not-decodable",
            post(
                "al-not-decodable",
                TOKEN_PATH,
                "grant_type=refresh_token&refresh_token=not-a-jwt&client_id=mobile",
            ),
            200,
            "passed.not_decodable",
        ),
        case(
            "al-duplicate",
            post(
                "al-duplicate",
                TOKEN_PATH,
                &format!("{}&client_id=mobile", refresh("admin", "mobile")),
            ),
            200,
            "passed.duplicate_parameter",
        ),
        case(
            "al-not-refresh",
            post(
                "al-not-refresh",
                TOKEN_PATH,
                "grant_type=password&client_id=mobile&username=u&password=p",
            ),
            200,
            "passed.not_refresh_grant",
        ),
        case(
            "al-no-token",
            post("al-no-token", TOKEN_PATH, "grant_type=refresh_token&client_id=mobile"),
            200,
            "passed.no_token",
        ),
        case(
            "al-upstream",
            elsewhere.into_bytes(),
            200,
            "passed.upstream_not_allowed",
        ),
        case("al-ambiguous", gzip, 200, "passed.ambiguous"),
        case(
            "al-too-large",
            post("al-too-large", TOKEN_PATH, &too_large),
            413,
            "rejected.body_too_large",
        ),
        case("al-not-token", not_token.into_bytes(), 200, "-"),
    ];
    if hold_headers {
        // The target's Basic credentials go in a header the filter sets.
        cases.push(case(
            "al-rewritten-basic",
            post("al-rewritten-basic", TOKEN_PATH, &refresh("basic-admin", "mobile")),
            200,
            "rewritten client=basic-admin",
        ));
    }
    cases
}

/// The access log's lines once each request id has one.
fn wait_lines(path: &std::path::Path, ids: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        let missing: Vec<&&str> = ids.iter().filter(|id| !log.contains(&format!("\"{id}\""))).collect();
        if missing.is_empty() {
            return log.lines().map(str::to_owned).collect();
        }
        assert!(Instant::now() < deadline, "no access log line for {missing:?}:\n{log}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_access_log_shows_each_decision_and_no_secret_in_both_modes() {
    let upstream = Upstream::start();
    for hold_headers in [false, true] {
        let dir = TempDir::new("access-log");
        let access_log = dir.path.join("access.log");
        let mut spec = EnvoySpec::new(&plugin_config(hold_headers), upstream.port)
            .edit(SHIPPED_SINK, &format!("path: {}", access_log.display()));
        if hold_headers {
            spec = spec.hold_headers();
        }
        let envoy = spec.start();
        let cases = cases(hold_headers);
        for case in &cases {
            let response = http1::exchange(envoy.port, &case.request);
            assert_eq!(
                response.status, case.status,
                "{} (hold_headers={hold_headers})",
                case.id
            );
        }
        let ids: Vec<&str> = cases.iter().map(|c| c.id).collect();
        let lines = wait_lines(&access_log, &ids);
        for case in &cases {
            let with_id: Vec<&String> = lines
                .iter()
                .filter(|l| l.contains(&format!("\"{}\"", case.id)))
                .collect();
            assert_eq!(
                with_id.len(),
                1,
                "{} (hold_headers={hold_headers}): {with_id:?}",
                case.id
            );
            let expected = format!(" azp_bridge=\"{}\"", case.decision);
            assert!(
                with_id[0].ends_with(&expected),
                "{} (hold_headers={hold_headers}): {} does not end with {expected}",
                case.id,
                with_id[0]
            );
        }
        assert_eq!(lines.len(), cases.len(), "one line per request:\n{lines:#?}");
        // The path is logged without its query string.
        let not_token = lines.iter().find(|l| l.contains("\"al-not-token\"")).unwrap();
        assert!(
            not_token.contains(&format!("\"GET {TOKEN_PATH} HTTP/1.1\"")),
            "{not_token}"
        );

        // No secret, credential or token, in any form the bridge or the
        // client put them in the request.
        let log = lines.join("\n");
        let basic = STANDARD.encode(format!("basic-admin:{BASIC_SECRET}"));
        let mut never = vec![SECRET.to_owned(), BASIC_SECRET.to_owned(), basic, "Basic".to_owned()];
        never.extend(["admin", "basic-admin", "stranger"].map(token));
        never.push("eyJ".to_owned());
        for secret in &never {
            assert!(
                !log.contains(secret.as_str()),
                "the access log contains a secret or token ({} chars)",
                secret.len()
            );
        }
        envoy.assert_log_clean(&[SECRET, BASIC_SECRET]);
    }
    // The bridge did rewrite (the upstream saw the target's credentials):
    // the log's "rewritten" is the request that went to Keycloak.
    let rewritten: Vec<_> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.header("x-request-id") == Some("al-rewritten"))
        .collect();
    assert_eq!(rewritten.len(), 2);
    for request in rewritten {
        assert!(String::from_utf8_lossy(&request.body).contains(&format!("client_secret={SECRET}")));
    }
}
