//! azp-bridge in a real Envoy, in front of an upstream that records exactly
//! what Envoy forwarded.

use crate::support;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use support::http1::{self, chunked_form_post, form_post, Connection};
use support::upstream::{Upstream, UPSTREAM_BODY};
use support::{h2client, EnvoySpec};

use support::TOKEN_PATH;
const ADMIN_SECRET: &str = "adm1n-Secret/+&=";
const ADMIN_SECRET_POSTED: &str = "adm1n-Secret%2F%2B%26%3D";
const BASIC_SECRET: &str = "basic:secret";

fn plugin_config(hold_headers: bool) -> String {
    let basic = if hold_headers {
        format!(
            r#",{{"client_id":"basic-admin","client_secret":"{BASIC_SECRET}","auth_method":"client_secret_basic","allowed_callers":["mobile"]}}"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"upstream_clusters":["keycloak"],"clients":[{{"client_id":"admin","client_secret":"{ADMIN_SECRET}","allowed_callers":["mobile"],"realms":["demo"]}}{basic}],"hold_headers":{hold_headers},"max_body_bytes":4096}}"#
    )
}

fn refresh_token(azp: &str) -> String {
    let payload = format!(r#"{{"iss":"http://keycloak.test/realms/demo","azp":"{azp}","typ":"Refresh","sid":"s1"}}"#);
    format!("eyJhbGciOiJIUzUxMiJ9.{}.c2lnbmF0dXJl", URL_SAFE_NO_PAD.encode(payload))
}

fn refresh_body(caller: &str, azp: &str) -> String {
    format!(
        "grant_type=refresh_token&client_id={caller}&refresh_token={}&scope=openid",
        refresh_token(azp)
    )
}

fn rewritten_body(azp: &str) -> String {
    format!(
        "grant_type=refresh_token&refresh_token={}&scope=openid&client_id=admin&client_secret={ADMIN_SECRET_POSTED}",
        refresh_token(azp)
    )
}

fn never_logged() -> Vec<String> {
    vec![
        ADMIN_SECRET.to_owned(),
        ADMIN_SECRET_POSTED.to_owned(),
        BASIC_SECRET.to_owned(),
        "basic%3Asecret".to_owned(),
        refresh_token("admin"),
        refresh_token("mobile"),
        refresh_token("basic-admin"),
        STANDARD.encode("mobile:mobile-pass"),
    ]
}

fn assert_clean(envoy: &support::Envoy) {
    let never = never_logged();
    envoy.assert_log_clean(&never.iter().map(String::as_str).collect::<Vec<_>>());
}

struct Stack {
    upstream: Upstream,
    envoy: support::Envoy,
}

fn stack(hold_headers: bool) -> Stack {
    let upstream = Upstream::start();
    let mut spec = EnvoySpec::new(&plugin_config(hold_headers), upstream.port);
    if hold_headers {
        spec = spec.hold_headers();
    }
    let envoy = spec.start();
    Stack { upstream, envoy }
}

// --- default mode: headers go upstream before the body is read ---

#[test]
fn default_mode_rewrites_credentials_in_the_body_only() {
    let s = stack(false);
    let body = refresh_body("mobile", "admin");
    let resp = http1::exchange(
        s.envoy.port,
        &form_post(TOKEN_PATH, &[("x-trace", "abc")], body.as_bytes()),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body_str(), UPSTREAM_BODY);

    let forwarded = s.upstream.single();
    assert_eq!(forwarded.start_line, format!("POST {TOKEN_PATH} HTTP/1.1"));
    assert_eq!(forwarded.body_str(), rewritten_body("admin"));
    // Content-Length was dropped before the headers left; Envoy framed the new body.
    assert_eq!(forwarded.header("content-length"), None);
    assert!(forwarded.chunked);
    assert_eq!(forwarded.header("x-trace"), Some("abc"));
    assert_eq!(forwarded.header("host"), Some("keycloak.test"));
    assert_eq!(
        forwarded.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(s.envoy.counter("rewritten"), 1);
    s.envoy
        .wait_log("endpoint=token realm=demo caller=mobile azp=admin outcome=rewritten");
    assert_clean(&s.envoy);
}

#[test]
fn default_mode_keeps_a_leftover_basic_header_and_posts_the_target() {
    let s = stack(false);
    let auth = format!("Basic {}", STANDARD.encode("mobile:mobile-pass"));
    let body = format!(
        "grant_type=refresh_token&refresh_token={}&scope=openid",
        refresh_token("admin")
    );
    let resp = http1::exchange(
        s.envoy.port,
        &form_post(TOKEN_PATH, &[("authorization", &auth)], body.as_bytes()),
    );
    assert_eq!(resp.status, 200);
    let forwarded = s.upstream.single();
    assert_eq!(forwarded.body_str(), rewritten_body("admin"));
    // Keycloak lets body credentials win over the Basic header.
    assert_eq!(forwarded.header("authorization"), Some(auth.as_str()));
    assert_clean(&s.envoy);
}

#[test]
fn passes_token_requests_it_does_not_rewrite_byte_for_byte() {
    let s = stack(false);
    let bodies = [
        refresh_body("mobile", "mobile"),
        refresh_body("other", "admin"),
        refresh_body("mobile", "stranger"),
        "grant_type=password&client_id=mobile&username=alice&password=alice-pw".to_owned(),
        format!("{}&client_id=mobile", refresh_body("mobile", "admin")),
        "grant_type=refresh_token&client_id=mobile&refresh_token=not-a-jwt".to_owned(),
    ];
    for body in &bodies {
        let resp = http1::exchange(s.envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
        assert_eq!(resp.status, 200);
    }
    let forwarded = s.upstream.wait_for(bodies.len());
    for (sent, got) in bodies.iter().zip(&forwarded) {
        assert_eq!(&got.body_str(), sent);
    }
    let counters = s.envoy.counters();
    assert_eq!(counters["rewritten"], 0);
    assert_eq!(counters["passed.same_client"], 1);
    assert_eq!(counters["passed.caller_not_allowed"], 1);
    assert_eq!(counters["passed.unknown_azp"], 1);
    assert_eq!(counters["passed.not_refresh_grant"], 1);
    assert_eq!(counters["passed.duplicate_parameter"], 1);
    assert_eq!(counters["passed.not_decodable"], 1);
    s.envoy
        .wait_log("outcome=passed:not_decodable (token is not a compact JWS)");
    assert_clean(&s.envoy);
}

#[test]
fn other_requests_are_not_touched() {
    let s = stack(false);
    let body = refresh_body("mobile", "admin");
    let requests = [
        form_post("/realms/demo/protocol/openid-connect/userinfo", &[], body.as_bytes()),
        form_post("/api/orders", &[], body.as_bytes()),
        b"GET /realms/demo/account HTTP/1.1\r\nhost: keycloak.test\r\n\r\n".to_vec(),
        [
            format!(
                "POST {TOKEN_PATH} HTTP/1.1\r\nhost: keycloak.test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
            body.as_bytes(),
        ]
        .concat(),
    ];
    for request in &requests {
        assert_eq!(http1::exchange(s.envoy.port, request).status, 200);
    }
    let forwarded = s.upstream.wait_for(requests.len());
    for got in [&forwarded[0], &forwarded[1], &forwarded[3]] {
        assert_eq!(got.body_str(), body);
        assert_eq!(got.header("content-length"), Some(body.len().to_string().as_str()));
        assert!(!got.chunked);
    }
    assert!(s.envoy.counters().values().all(|&v| v == 0));
}

#[test]
fn legacy_auth_prefix_and_charset_are_recognised() {
    let s = stack(false);
    let body = refresh_body("mobile", "admin");
    let request = [
        format!(
            "POST /auth{TOKEN_PATH}?x=1 HTTP/1.1\r\nhost: keycloak.test\r\ncontent-type: application/x-www-form-urlencoded; charset=UTF-8\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
        body.as_bytes(),
    ]
    .concat();
    assert_eq!(http1::exchange(s.envoy.port, &request).status, 200);
    assert_eq!(s.upstream.single().body_str(), rewritten_body("admin"));
}

#[test]
fn keep_alive_connection_carries_a_longer_rewrite_then_another_request() {
    for hold_headers in [false, true] {
        let s = stack(hold_headers);
        let mut conn = Connection::open(s.envoy.port).unwrap();
        let first = refresh_body("mobile", "admin");
        let second = "grant_type=password&client_id=mobile&username=bob&password=pw";
        assert_eq!(conn.request(&form_post(TOKEN_PATH, &[], first.as_bytes())).status, 200);
        assert_eq!(conn.request(&form_post(TOKEN_PATH, &[], second.as_bytes())).status, 200);
        let forwarded = s.upstream.wait_for(2);
        assert_eq!(
            forwarded[0].body_str(),
            rewritten_body("admin"),
            "hold_headers={hold_headers}"
        );
        assert_eq!(forwarded[1].body_str(), second, "hold_headers={hold_headers}");
        if hold_headers {
            let expected_length = rewritten_body("admin").len().to_string();
            assert_eq!(forwarded[0].header("content-length"), Some(expected_length.as_str()));
            assert_eq!(
                forwarded[1].header("content-length"),
                Some(second.len().to_string().as_str())
            );
        }
    }
}

#[test]
fn chunked_bodies_in_many_small_pieces() {
    let s = stack(false);
    let body = refresh_body("mobile", "admin");
    let resp = http1::exchange(s.envoy.port, &chunked_form_post(TOKEN_PATH, body.as_bytes(), 7));
    assert_eq!(resp.status, 200);
    assert_eq!(s.upstream.single().body_str(), rewritten_body("admin"));
}

#[test]
fn slow_pieces_are_buffered_until_the_end() {
    let s = stack(false);
    let body = refresh_body("mobile", "admin");
    let request = chunked_form_post(TOKEN_PATH, body.as_bytes(), 50);
    let mut conn = Connection::open(s.envoy.port).unwrap();
    for piece in request.chunks(60) {
        conn.send(piece).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(conn.read_response().unwrap().status, 200);
    assert_eq!(s.upstream.single().body_str(), rewritten_body("admin"));
}

#[test]
fn http2_with_and_without_trailers() {
    let s = stack(false);
    let body = refresh_body("mobile", "admin");
    let (a, b) = body.as_bytes().split_at(body.len() / 2);
    let plain = h2client::post(s.envoy.port, TOKEN_PATH, &[], &[a, b], None);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, UPSTREAM_BODY.as_bytes());
    let with_trailers = h2client::post(s.envoy.port, TOKEN_PATH, &[], &[a, b], Some(("x-checksum", "abc")));
    assert_eq!(with_trailers.status, 200);
    let forwarded = s.upstream.wait_for(2);
    assert_eq!(forwarded[0].body_str(), rewritten_body("admin"));
    assert_eq!(forwarded[1].body_str(), rewritten_body("admin"));
    assert_eq!(s.envoy.counter("rewritten"), 2);
    assert_clean(&s.envoy);
}

// --- hold_headers mode ---

#[test]
fn hold_mode_sets_exact_length_and_drops_the_callers_basic_header() {
    let s = stack(true);
    let auth = format!("Basic {}", STANDARD.encode("mobile:mobile-pass"));
    let body = format!(
        "grant_type=refresh_token&refresh_token={}&scope=openid",
        refresh_token("admin")
    );
    let resp = http1::exchange(
        s.envoy.port,
        &form_post(TOKEN_PATH, &[("authorization", &auth)], body.as_bytes()),
    );
    assert_eq!(resp.status, 200);
    let forwarded = s.upstream.single();
    let expected = rewritten_body("admin");
    assert_eq!(forwarded.body_str(), expected);
    assert_eq!(
        forwarded.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
    assert!(!forwarded.chunked);
    assert_eq!(forwarded.header("authorization"), None);
    assert_clean(&s.envoy);
}

#[test]
fn hold_mode_sends_a_basic_target_as_client_secret_basic() {
    let s = stack(true);
    let token = refresh_token("basic-admin");
    let body = format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}");
    let resp = http1::exchange(s.envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes()));
    assert_eq!(resp.status, 200);
    let forwarded = s.upstream.single();
    let expected = format!("grant_type=refresh_token&refresh_token={token}");
    assert_eq!(forwarded.body_str(), expected);
    assert_eq!(
        forwarded.header("content-length"),
        Some(expected.len().to_string().as_str())
    );
    let expected_auth = format!("Basic {}", STANDARD.encode("basic-admin:basic%3Asecret"));
    assert_eq!(forwarded.header_all("authorization"), vec![expected_auth.as_str()]);
    assert_clean(&s.envoy);
}

#[test]
fn hold_mode_passes_untouched_requests_with_their_headers() {
    let s = stack(true);
    let auth = format!("Basic {}", STANDARD.encode("mobile:mobile-pass"));
    let body = refresh_body("mobile", "mobile");
    let resp = http1::exchange(
        s.envoy.port,
        &form_post(TOKEN_PATH, &[("authorization", &auth)], body.as_bytes()),
    );
    assert_eq!(resp.status, 200);
    let forwarded = s.upstream.single();
    assert_eq!(forwarded.body_str(), body);
    assert_eq!(
        forwarded.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(forwarded.header("authorization"), Some(auth.as_str()));
}

#[test]
fn hold_mode_chunked_and_http2_with_trailers() {
    let s = stack(true);
    let body = refresh_body("mobile", "admin");
    let resp = http1::exchange(s.envoy.port, &chunked_form_post(TOKEN_PATH, body.as_bytes(), 9));
    assert_eq!(resp.status, 200);
    let (a, b) = body.as_bytes().split_at(10);
    let h2 = h2client::post(s.envoy.port, TOKEN_PATH, &[], &[a, b], Some(("x-end", "1")));
    assert_eq!(h2.status, 200);
    let forwarded = s.upstream.wait_for(2);
    assert_eq!(forwarded[0].body_str(), rewritten_body("admin"));
    assert_eq!(forwarded[1].body_str(), rewritten_body("admin"));
}

// --- limits, configuration, operations ---

#[test]
fn oversized_token_requests_get_413_and_never_reach_the_upstream() {
    for hold_headers in [false, true] {
        let s = stack(hold_headers);
        let big = format!("{}&pad={}", refresh_body("mobile", "admin"), "x".repeat(5000));
        let expected = r#"{"error":"invalid_request","error_description":"Request body exceeds the azp-bridge limit of 4096 bytes"}"#;
        let declared = http1::exchange(s.envoy.port, &form_post(TOKEN_PATH, &[], big.as_bytes()));
        assert_eq!(declared.status, 413);
        assert_eq!(declared.body_str(), expected);
        assert_eq!(declared.message.header("content-type"), Some("application/json"));
        let chunked = http1::exchange(s.envoy.port, &chunked_form_post(TOKEN_PATH, big.as_bytes(), 1000));
        assert_eq!(chunked.status, 413);
        assert_eq!(chunked.body_str(), expected);
        // A non-token request of the same size is not the filter's business.
        let other = http1::exchange(s.envoy.port, &form_post("/api/upload", &[], big.as_bytes()));
        assert_eq!(other.status, 200);
        std::thread::sleep(std::time::Duration::from_millis(200));
        let forwarded = s.upstream.requests();
        assert_eq!(forwarded.len(), 1, "hold_headers={hold_headers}");
        assert_eq!(forwarded[0].start_line, "POST /api/upload HTTP/1.1");
        assert_eq!(s.envoy.counter("rejected.body_too_large"), 2);
    }
}

#[test]
fn request_without_body_passes() {
    let s = stack(false);
    let request = format!(
        "POST {TOKEN_PATH} HTTP/1.1\r\nhost: keycloak.test\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 0\r\n\r\n"
    );
    assert_eq!(http1::exchange(s.envoy.port, request.as_bytes()).status, 200);
    let forwarded = s.upstream.single();
    assert_eq!(forwarded.body, b"");
    assert_eq!(forwarded.header("content-length"), Some("0"));
}

#[test]
fn invalid_configuration_stops_envoy_and_names_the_field() {
    let upstream_port = support::free_port();
    let cases = [
        (
            r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"leaky-secret"}]}"#,
            "`clients[0].allowed_callers` is missing",
        ),
        (
            r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"leaky-secret","allowed_callers":["m"],"colour":"red"}]}"#,
            "`clients[0].colour` is not a known field",
        ),
        (
            r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"leaky-secret","allowed_callers":["m"],"auth_method":"client_secret_basic"}]}"#,
            "`clients[0].auth_method` client_secret_basic needs",
        ),
        (
            r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret_env":"AZP_TEST_UNSET","allowed_callers":["m"]}]}"#,
            "AZP_TEST_UNSET, which is not set",
        ),
        (r#"{"clients": leaky-secret}"#, "`(root)` is not valid JSON"),
    ];
    for (config, expected) in cases {
        let log = EnvoySpec::new(config, upstream_port).expect_refused();
        assert!(log.contains(expected), "{config}: log lacks {expected:?}:\n{log}");
        assert!(!log.contains("leaky-secret"), "the log repeats a secret");
    }
}

#[test]
fn secret_from_the_environment() {
    let upstream = Upstream::start();
    let config = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret_env":"AZP_TEST_ADMIN_SECRET","allowed_callers":["mobile"]}]}"#;
    let envoy = EnvoySpec::new(config, upstream.port)
        .host_env_key("AZP_TEST_ADMIN_SECRET")
        .env("AZP_TEST_ADMIN_SECRET", "from env!")
        .start();
    let body = refresh_body("mobile", "admin");
    assert_eq!(
        http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes())).status,
        200
    );
    let expected = format!(
        "grant_type=refresh_token&refresh_token={}&scope=openid&client_id=admin&client_secret=from+env%21",
        refresh_token("admin")
    );
    assert_eq!(upstream.single().body_str(), expected);
    envoy.assert_log_clean(&["from env!", "from+env%21"]);

    // Set in Envoy's environment but not exposed to the VM: refused.
    let log = EnvoySpec::new(config, upstream.port)
        .env("AZP_TEST_ADMIN_SECRET", "from env!")
        .expect_refused();
    assert!(log.contains("AZP_TEST_ADMIN_SECRET, which is not set"), "{log}");
}

#[test]
fn works_under_the_default_root_id_and_twice_in_one_envoy() {
    let upstream = Upstream::start();
    // The same module twice: the first instance knows "admin", the second "other-admin".
    let second = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"other-admin","client_secret":"second","allowed_callers":["mobile"]}]}"#;
    let envoy = EnvoySpec::new(&plugin_config(false), upstream.port)
        .edit("                root_id: azp_bridge\n", "")
        .edit(
            "          - name: envoy.filters.http.router",
            &format!(
                "          - name: azp_bridge_second
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: azp_bridge_second
                root_id: second
                configuration:
                  \"@type\": type.googleapis.com/google.protobuf.StringValue
                  value: '{second}'
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code:
                    local: {{ filename: {} }}
          - name: envoy.filters.http.router",
                support::wasm_path().display()
            ),
        )
        .start();
    for azp in ["admin", "other-admin"] {
        let body = refresh_body("mobile", azp);
        assert_eq!(
            http1::exchange(envoy.port, &form_post(TOKEN_PATH, &[], body.as_bytes())).status,
            200
        );
    }
    let forwarded = upstream.wait_for(2);
    assert_eq!(forwarded[0].body_str(), rewritten_body("admin"));
    assert_eq!(
        forwarded[1].body_str(),
        format!(
            "grant_type=refresh_token&refresh_token={}&scope=openid&client_id=other-admin&client_secret=second",
            refresh_token("other-admin")
        )
    );
}

#[test]
fn thousands_of_garbage_bodies_leave_the_filter_working() {
    let s = stack(false);
    let mut conn = Connection::open(s.envoy.port).unwrap();
    let garbage: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| {
            let seed = i.wrapping_mul(2654435761);
            let len = (seed % 700) as usize;
            let mut body: Vec<u8> = (0..len).map(|j| (seed.rotate_left(j as u32 % 31) >> 3) as u8).collect();
            match i % 6 {
                0 => body
                    .splice(
                        0..0,
                        b"grant_type=refresh_token&client_id=mobile&refresh_token="
                            .iter()
                            .copied(),
                    )
                    .for_each(drop),
                1 => body
                    .splice(
                        0..0,
                        format!("token=a.{}.c&client_id=mobile", URL_SAFE_NO_PAD.encode(&body)).into_bytes(),
                    )
                    .for_each(drop),
                2 => {
                    body = format!(
                        "grant_type=refresh_token&client_id=%{}&refresh_token={}",
                        i % 10,
                        refresh_token("admin")
                    )
                    .into_bytes()
                }
                3 => body.extend_from_slice(b"%%%&&==&=%zz"),
                _ => {}
            }
            body
        })
        .collect();
    for (i, body) in garbage.iter().enumerate() {
        let path = if i % 6 == 1 {
            "/realms/demo/protocol/openid-connect/revoke"
        } else {
            TOKEN_PATH
        };
        let resp = conn.request(&form_post(path, &[], body));
        assert_eq!(resp.status, 200, "garbage body {i}");
    }
    let body = refresh_body("mobile", "admin");
    assert_eq!(conn.request(&form_post(TOKEN_PATH, &[], body.as_bytes())).status, 200);
    let forwarded = s.upstream.wait_for(garbage.len() + 1);
    for (sent, got) in garbage.iter().zip(&forwarded) {
        assert_eq!(&got.body, sent);
    }
    assert_eq!(forwarded.last().unwrap().body_str(), rewritten_body("admin"));
    assert_eq!(s.envoy.counter("rewritten"), 1);
    assert_clean(&s.envoy);
}
