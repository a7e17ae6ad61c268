//! Property tests of the core's invariants (see tests/support/invariants.rs)
//! on generated token requests: realistic ones, broken ones and noise.

mod support;

use azp_bridge::config::{self, Config};
use azp_bridge::endpoint::{Endpoint, Target};
use azp_bridge::policy::{CallerHeader, Inspection};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use proptest::prelude::*;
use support::invariants;

fn config(hold_headers: bool) -> Config {
    let basic = if hold_headers {
        r#",{"client_id":"basic admin","client_secret":"B4sic:Secret%","auth_method":"client_secret_basic","allowed_callers":["mobile","web"]}"#
    } else {
        ""
    };
    let json = format!(
        r#"{{"upstream_clusters":["keycloak"],"issuer":"http://k","clients":[{{"client_id":"admin","client_secret":"Adm1n&Secret=+/","allowed_callers":["mobile","web app"],"realms":["demo"]}},{{"client_id":"jwt admin","client_secret":"Jwt-Secret-of-32-bytes-or-more-&=+/","auth_method":"client_secret_jwt","allowed_callers":["mobile"]}}{basic}],"hold_headers":{hold_headers}}}"#
    );
    config::parse(json.as_bytes(), &|_| None).unwrap()
}

/// Authorities near Keycloak's: its host in any case, with or without a
/// trailing dot, ports numeric, odd, overlong, doubled or empty, and noise.
fn authority() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("keycloak.example.com".to_owned()),
        Just("KeyCloak.Example.COM".to_owned()),
        Just("keycloak.example.com.".to_owned()),
        Just("evil-keycloak.example.com".to_owned()),
        Just("[::1]".to_owned()),
        "[a-z.]{0,12}",
    ];
    let port = prop_oneof![
        Just(String::new()),
        Just(":8443".to_owned()),
        Just(":443".to_owned()),
        Just(":".to_owned()),
        Just(":x".to_owned()),
        Just(":+8443".to_owned()),
        Just(":08443".to_owned()),
        Just(":4294967296".to_owned()),
        Just(":4294975739".to_owned()),
        Just(":8443:8443".to_owned()),
        ":[0-9]{1,6}",
        ":[ -~]{0,6}",
    ];
    prop_oneof![
        8 => (host, port).prop_map(|(h, p)| format!("{h}{p}")),
        1 => "[ -~]{0,24}",
    ]
}

fn client_id() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("admin".to_owned()),
        Just("basic admin".to_owned()),
        Just("jwt admin".to_owned()),
        Just("mobile".to_owned()),
        Just("web app".to_owned()),
        Just("Admin".to_owned()),
        "[a-z%+ ]{0,12}",
    ]
}

fn token() -> impl Strategy<Value = String> {
    let iss = prop_oneof![
        Just(r#""iss":"http://k/realms/demo","#.to_owned()),
        Just(r#""iss":"http://k/realms/other","#.to_owned()),
        Just(String::new()),
    ];
    let payload = (client_id(), iss, any::<bool>()).prop_map(|(azp, iss, extra)| {
        let extra = if extra {
            r#","scope":"a\"b","n":[1,{"x":null}]"#
        } else {
            ""
        };
        format!(r#"{{{iss}"azp":{}{extra}}}"#, serde_json::Value::String(azp))
    });
    prop_oneof![
        8 => payload.prop_map(|p| format!("eyJhbGciOiJIUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(p))),
        1 => "[A-Za-z0-9._%-]{0,40}",
        1 => any::<Vec<u8>>().prop_map(|b| format!("h.{}.s", URL_SAFE_NO_PAD.encode(b))),
    ]
}

/// Form-encodes a value the way clients do, sometimes percent-encoding more.
fn encode(value: &str, aggressive: bool) -> String {
    if aggressive {
        value.bytes().map(|b| format!("%{b:02X}")).collect()
    } else {
        let mut out = Vec::new();
        azp_bridge::form::encode_into(value.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }
}

fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => (token(), any::<bool>()).prop_map(|(t, a)| format!("refresh_token={}", encode(&t, a)).into_bytes()),
        1 => token().prop_map(|t| format!("token={t}").into_bytes()),
        3 => Just(b"grant_type=refresh_token".to_vec()),
        1 => Just(b"grant%5Ftype=refresh%5Ftoken".to_vec()),
        3 => (client_id(), any::<bool>()).prop_map(|(c, a)| format!("client_id={}", encode(&c, a)).into_bytes()),
        1 => Just(b"client_secret=caller-secret".to_vec()),
        1 => Just(b"client_assertion_type=urn%3Aietf&client_assertion=a.b.c".to_vec()),
        1 => "[a-z_]{1,8}=[a-zA-Z0-9+%]{0,16}".prop_map(String::into_bytes),
        1 => Just(Vec::new()),
        1 => any::<Vec<u8>>(),
    ]
}

/// A refresh the filter should rewrite, with noise around it.
fn likely_rewrite() -> impl Strategy<Value = Vec<u8>> {
    let azp = prop_oneof![Just("admin"), Just("basic admin"), Just("jwt admin")];
    let caller = prop_oneof![Just("mobile"), Just("web+app"), Just("web%20app")];
    let extras = prop::collection::vec(segment(), 0..3);
    (azp, caller, extras, any::<bool>(), 0..3usize).prop_map(|(azp, caller, extras, aggressive, at)| {
        let payload = format!(r#"{{"iss":"http://k/realms/demo","azp":"{azp}","typ":"Refresh"}}"#);
        let token = format!("eyJhbGciOiJIUzUxMiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(payload));
        let mut segments = vec![
            b"grant_type=refresh_token".to_vec(),
            format!("client_id={caller}").into_bytes(),
            format!("refresh_token={}", encode(&token, aggressive)).into_bytes(),
        ];
        for extra in extras {
            segments.insert(at.min(segments.len()), extra);
        }
        segments.join(&b'&')
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(segment(), 0..8).prop_map(|segments| segments.join(&b'&')),
        likely_rewrite(),
    ]
}

fn caller_header() -> impl Strategy<Value = CallerHeader> {
    prop_oneof![
        4 => Just(CallerHeader::None),
        2 => (client_id(), "[ -~]{0,10}").prop_map(|(id, secret)| {
            CallerHeader::from_authorization(Some(format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))).as_bytes()))
        }),
        1 => any::<Vec<u8>>().prop_map(|raw| CallerHeader::from_authorization(Some(&raw))),
    ]
}

fn inspection() -> impl Strategy<Value = Inspection> {
    let endpoint = prop_oneof![4 => Just(Endpoint::Token), 1 => Just(Endpoint::Revoke), 1 => Just(Endpoint::Logout)];
    let realm = prop_oneof![4 => Just("demo".to_owned()), 1 => Just("other".to_owned())];
    (endpoint, realm, caller_header()).prop_map(|(endpoint, realm, caller)| Inspection {
        target: Target { endpoint, realm },
        caller,
        has_content_length: true,
    })
}

/// `Content-Type` values: the safe ones, the charset trick's, and noise.
fn content_type() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(b"application/x-www-form-urlencoded".to_vec()),
        2 => "(; ?charset=\"?(utf|UTF|Utf|utf-16be|UTF-16|x)-?8?\"?)? ?"
            .prop_map(|p| format!("application/x-www-form-urlencoded{p}").into_bytes()),
        1 => "[A-Za-z/;= \"-]{0,12}application/x-www-form-urlencoded[A-Za-z0-9/;=, \"-]{0,24}".prop_map(String::into_bytes),
        1 => any::<Vec<u8>>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn response_edits_remove_only_the_id_token(
        members in prop::collection::vec(("(id_token|access_token|scope|a|id\\\\u005ftoken)", "(\"[a-z.]{0,6}\"|[0-9]{1,3}|null|\\{\\}|\\[1, 2\\])"), 0..6),
        noise in any::<Vec<u8>>(),
        raw in any::<bool>(),
    ) {
        let body = if raw {
            noise
        } else {
            let members: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", members.join(",")).into_bytes()
        };
        invariants::check_response(&body);
    }

    #[test]
    fn only_unambiguous_requests_are_rewritten(
        content_types in prop::collection::vec(content_type(), 1..3),
        body in body(),
        hold in any::<bool>(),
    ) {
        let refs: Vec<&[u8]> = content_types.iter().map(Vec::as_slice).collect();
        invariants::check_request(&config(hold), &refs, &body);
    }

    #[test]
    fn decisions_keep_the_invariants(body in body(), inspection in inspection(), hold in any::<bool>()) {
        invariants::check_decide(&config(hold), &inspection, &body);
    }

    #[test]
    fn noise_keeps_the_invariants(body in any::<Vec<u8>>(), inspection in inspection()) {
        invariants::check_decide(&config(true), &inspection, &body);
    }

    #[test]
    fn form_parser_keeps_its_invariants(body in any::<Vec<u8>>()) {
        invariants::check_form(&body);
    }

    #[test]
    fn token_reader_never_panics(token in any::<Vec<u8>>()) {
        invariants::check_token(&token);
    }

    /// Issue 23: no spelling of the authority is taken for Keycloak unless
    /// Envoy routes it there, whatever the listener strips.
    #[test]
    fn only_what_envoy_routes_to_keycloak_is_rewritten(authority in authority()) {
        invariants::check_authority(authority.as_bytes());
    }

    #[test]
    fn config_parser_never_leaks(json in "[{}\\[\\]\":, a-z_0-9]{0,200}", secret in "[A-Za-z0-9]{8,16}") {
        invariants::check_config(json.as_bytes(), &secret);
    }
}

/// The generators do reach rewrites: otherwise the invariants prove little.
#[test]
fn generated_requests_include_rewrites() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let config = config(true);
    let mut rewrites = 0;
    for _ in 0..4000 {
        let body = body().new_tree(&mut runner).unwrap().current();
        let inspection = inspection().new_tree(&mut runner).unwrap().current();
        let fresh = || {
            Some(azp_bridge::policy::Fresh {
                now_seconds: 1_700_000_000,
                jti: [3; 16],
            })
        };
        if let azp_bridge::policy::Outcome::Rewrite(_) =
            azp_bridge::policy::decide_with(&config, &inspection, &body, &fresh).outcome
        {
            rewrites += 1;
        }
    }
    assert!(rewrites >= 200, "only {rewrites} rewrites in 4000 generated requests");
}
