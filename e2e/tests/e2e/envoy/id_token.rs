//! The response of a bridged refresh without its `id_token` (README, "What a
//! bridged refresh gives the client"): a real Envoy in front of an upstream
//! that answers as told by the request's query, in both header modes.

use crate::support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use support::http1::{self, form_post, Response};
use support::upstream::{Answer, Upstream};
use support::{h2client, Envoy, EnvoySpec};

use support::TOKEN_PATH;
const SECRET: &str = "r3sponse-Secret";
const TOKENS: &str = r#"{"access_token":"aaa.bbb.ccc","expires_in":300,"refresh_expires_in":1800,"refresh_token":"ddd.eee.fff","token_type":"Bearer","id_token":"ggg.hhh.iii","not-before-policy":0,"session_state":"s1","scope":"openid profile email"}"#;
const WITHOUT_ID_TOKEN: &str = r#"{"access_token":"aaa.bbb.ccc","expires_in":300,"refresh_expires_in":1800,"refresh_token":"ddd.eee.fff","token_type":"Bearer","not-before-policy":0,"session_state":"s1","scope":"openid profile email"}"#;
const MAX_RESPONSE_BYTES: usize = 65536;

fn plugin_config(hold_headers: bool) -> String {
    format!(
        r#"{{"upstream_clusters":["keycloak"],"clients":[{{"client_id":"admin","client_secret":"{SECRET}","allowed_callers":["mobile"]}},{{"client_id":"keeper","client_secret":"{SECRET}","allowed_callers":["mobile"],"id_token":"keep"}}],"hold_headers":{hold_headers},"max_response_bytes":{MAX_RESPONSE_BYTES}}}"#
    )
}

fn forged(azp: &str) -> String {
    let payload = format!(r#"{{"iss":"http://keycloak.test/realms/demo","azp":"{azp}","typ":"Refresh"}}"#);
    format!("eyJhbGciOiJIUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
}

fn refresh_body(azp: &str) -> Vec<u8> {
    format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token={}",
        forged(azp)
    )
    .into_bytes()
}

fn json_response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn huge_body() -> String {
    format!(
        r#"{{"access_token":"a","id_token":"b","pad":"{}"}}"#,
        "x".repeat(MAX_RESPONSE_BYTES)
    )
}

/// The upstream's answer, chosen by the request's `answer` query parameter.
const ANSWER: Answer = |request| {
    let answer = request
        .start_line
        .split(['?', ' '])
        .find_map(|part| part.strip_prefix("answer="))
        .unwrap_or("tokens");
    match answer {
        "tokens" => json_response("200 OK", TOKENS),
        "chunked-trailers" => {
            let (a, b) = TOKENS.split_at(40);
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\ntrailer: x-t\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\nx-t: 1\r\n\r\n",
                a.len(),
                b.len()
            )
            .into_bytes()
        }
        "huge" => json_response("200 OK", &huge_body()),
        "not-json" => b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n\r\nid_token=no".to_vec(),
        "id-token-object" => json_response(
            "200 OK",
            r#"{"access_token":"a","id_token":{"x":[1]},"scope":"openid"}"#,
        ),
        "duplicate" => json_response("200 OK", r#"{"id_token":"a","access_token":"b","id_token":"c"}"#),
        "error" => json_response(
            "400 Bad Request",
            r#"{"error":"invalid_grant","error_description":"Invalid refresh token","id_token":"x"}"#,
        ),
        "no-id-token" => json_response("200 OK", WITHOUT_ID_TOKEN),
        "no-body" => b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
        other => panic!("no answer {other}"),
    }
};

fn refresh(envoy: &Envoy, azp: &str, answer: &str) -> Response {
    http1::exchange(
        envoy.port,
        &form_post(&format!("{TOKEN_PATH}?answer={answer}"), &[], &refresh_body(azp)),
    )
}

/// What the client receives for each upstream answer to a bridged refresh.
fn run(hold_headers: bool) {
    let upstream = Upstream::answering(ANSWER);
    let mut spec = EnvoySpec::new(&plugin_config(hold_headers), upstream.port);
    if hold_headers {
        spec = spec.hold_headers();
    }
    let envoy = spec.start();
    let mode = if hold_headers { "hold" } else { "default" };

    // Bridged: the id_token goes, every other member stays byte for byte.
    let resp = refresh(&envoy, "admin", "tokens");
    assert_eq!(
        (resp.status, resp.body_str()),
        (200, WITHOUT_ID_TOKEN.to_owned()),
        "{mode}"
    );
    if hold_headers {
        assert_eq!(
            resp.message.header("content-length"),
            Some(WITHOUT_ID_TOKEN.len().to_string().as_str())
        );
    } else {
        assert_eq!(resp.message.header("content-length"), None, "{mode}");
        assert!(resp.message.chunked, "{mode}: the shorter body goes chunked");
    }
    assert_eq!(resp.message.header("cache-control"), Some("no-store"), "{mode}");
    let resp = refresh(&envoy, "admin", "chunked-trailers");
    assert_eq!(
        (resp.status, resp.body_str()),
        (200, WITHOUT_ID_TOKEN.to_owned()),
        "{mode}"
    );
    let resp = refresh(&envoy, "admin", "id-token-object");
    assert_eq!(resp.body_str(), r#"{"access_token":"a","scope":"openid"}"#, "{mode}");

    // HTTP/2, with and without request trailers.
    for trailers in [None, Some(("x-end", "1"))] {
        let body = refresh_body("admin");
        let resp = h2client::post(
            envoy.port,
            &format!("{TOKEN_PATH}?answer=tokens"),
            &[],
            &[&body],
            trailers,
        );
        assert_eq!(
            (resp.status, String::from_utf8_lossy(&resp.body).into_owned()),
            (200, WITHOUT_ID_TOKEN.to_owned()),
            "{mode}"
        );
    }

    // Passed as Keycloak sent it: too large, not JSON, a repeated member,
    // an error, no id_token, no body.
    let passed: [(&str, u16, String); 6] = [
        ("huge", 200, huge_body()),
        ("not-json", 200, "id_token=no".to_owned()),
        (
            "duplicate",
            200,
            r#"{"id_token":"a","access_token":"b","id_token":"c"}"#.to_owned(),
        ),
        (
            "error",
            400,
            r#"{"error":"invalid_grant","error_description":"Invalid refresh token","id_token":"x"}"#.to_owned(),
        ),
        ("no-id-token", 200, WITHOUT_ID_TOKEN.to_owned()),
        ("no-body", 204, String::new()),
    ];
    for (answer, status, body) in &passed {
        let resp = refresh(&envoy, "admin", answer);
        assert_eq!(resp.status, *status, "{mode} {answer}");
        assert!(resp.body_str() == *body, "{mode} {answer}: not passed unchanged");
    }

    // Not bridged (the caller's own token), or a client that keeps it: the
    // response streams untouched.
    for azp in ["mobile", "keeper"] {
        let resp = refresh(&envoy, azp, "tokens");
        assert_eq!((resp.status, resp.body_str()), (200, TOKENS.to_owned()), "{mode} {azp}");
        assert_eq!(
            resp.message.header("content-length"),
            Some(TOKENS.len().to_string().as_str())
        );
    }

    let counters = envoy.counters();
    assert_eq!(counters["id_token_dropped"], 5, "{mode}");
    assert_eq!(counters["response_passed"], passed.len() as u64, "{mode}");
    assert_eq!(counters["rewritten"], 5 + passed.len() as u64 + 1, "{mode}");
    // Still serving, nothing trapped, no token or secret in the log.
    assert_eq!(refresh(&envoy, "admin", "tokens").body_str(), WITHOUT_ID_TOKEN);
    envoy.assert_log_clean(&[SECRET, "ggg.hhh.iii", "aaa.bbb.ccc", &forged("admin")]);
}

#[test]
fn bridged_responses_lose_their_id_token_in_default_mode() {
    run(false);
}

#[test]
fn bridged_responses_lose_their_id_token_in_hold_mode() {
    run(true);
}
