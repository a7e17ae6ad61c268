//! The invariants of the core, checked on any input by the property tests
//! (tests/properties.rs) and the coverage-guided fuzz targets (fuzz/).
//!
//! - nothing panics;
//! - a rewrite changes only the credentials: the forwarded body is the
//!   received one without its client-authentication parameters, plus the
//!   target's credentials the way its `auth_method` says;
//! - a target's secret appears only where that method puts it, and never in
//!   a log line or a debug rendering;
//! - only a request that every form reader reads alike is rewritten: the
//!   plain form type with at most `charset=utf-8`, and an ASCII body of plain
//!   names with well-formed escapes (checked here by a separate reading);
//! - only a request that Envoy routes to Keycloak's virtual host is
//!   rewritten, whatever its authority and the listener's port stripping
//!   (checked against a model of Envoy's stripping and domain matching).

use azp_bridge::config::{AuthMethod, Config};
use azp_bridge::form;
use azp_bridge::policy::{self, AuthorizationChange, HeadPlan, Inspection, Outcome, PassReason, RequestHeaders};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const CLIENT_AUTH: [&[u8]; 4] = [
    b"client_id",
    b"client_secret",
    b"client_assertion",
    b"client_assertion_type",
];

fn is_client_auth(segment: &[u8]) -> bool {
    let name = segment.split(|&b| b == b'=').next().unwrap_or_default();
    form::decode(name).is_some_and(|n| CLIENT_AUTH.contains(&n.as_ref()))
}

fn encoded(value: &str) -> Vec<u8> {
    let mut out = Vec::new();
    form::encode_into(value.as_bytes(), &mut out);
    out
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || haystack.len() < needle.len() {
        return 0;
    }
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Runs the decision on one input and checks every invariant.
pub fn check_decide(config: &Config, inspection: &Inspection, body: &[u8]) {
    let fresh = || {
        Some(policy::Fresh {
            now_seconds: 1_700_000_000,
            jti: [9; 16],
        })
    };
    let verdict = policy::decide_with(config, inspection, body, &fresh);
    let line = verdict.describe(config, &inspection.target);
    let debug = format!("{verdict:?}");
    for client in &config.clients {
        let secret = client.secret.expose();
        assert!(
            secret.is_empty() || (!line.contains(secret) && !debug.contains(secret)),
            "a secret in a log line or debug output"
        );
    }
    let Outcome::Rewrite(rewrite) = verdict.outcome else {
        return;
    };
    let azp = verdict.azp.as_deref().expect("a rewrite names the azp");
    let target = config
        .client(azp, &inspection.target.realm)
        .expect("a rewrite targets the entry of its client id and realm");
    assert_ne!(
        verdict.caller.as_deref(),
        Some(azp.as_bytes()),
        "rewrote a same-client request"
    );

    let kept: Vec<&[u8]> = body.split(|&b| b == b'&').filter(|s| !is_client_auth(s)).collect();
    let forwarded: Vec<&[u8]> = rewrite.body.split(|&b| b == b'&').collect();
    let secret = encoded(target.secret.expose());
    // The secret may already be in the body, also inside the caller's own
    // credentials, which the rewrite removes: count it in what is kept.
    let secret_in_input = count(&kept.join(&b'&'), &secret);
    match target.auth_method {
        AuthMethod::ClientSecretPost => {
            assert_eq!(forwarded.len(), kept.len() + 2, "only the credentials change");
            assert_eq!(
                &forwarded[..kept.len()],
                &kept[..],
                "other parameters stay in place, byte for byte"
            );
            assert_eq!(
                forwarded[kept.len()],
                [b"client_id=".as_slice(), &encoded(&target.client_id)].concat()
            );
            assert_eq!(
                forwarded[kept.len() + 1],
                [b"client_secret=".as_slice(), &secret].concat()
            );
            assert_eq!(
                count(&rewrite.body, &secret),
                secret_in_input + 1,
                "the secret only where post puts it"
            );
            assert!(!matches!(rewrite.authorization, AuthorizationChange::Set(_)));
        }
        AuthMethod::ClientSecretBasic => {
            assert_eq!(forwarded, kept, "only the credentials change");
            assert_eq!(
                count(&rewrite.body, &secret),
                secret_in_input,
                "no secret in a basic target's body"
            );
            let AuthorizationChange::Set(value) = &rewrite.authorization else {
                panic!("a basic target sets Authorization");
            };
            let plain = STANDARD.decode(value.strip_prefix("Basic ").expect("Basic")).unwrap();
            assert_eq!(plain, [encoded(&target.client_id), b":".to_vec(), secret].concat());
        }
        AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt => {
            assert_eq!(forwarded.len(), kept.len() + 3, "only the credentials change");
            assert_eq!(&forwarded[..kept.len()], &kept[..], "other parameters stay in place");
            assert_eq!(
                forwarded[kept.len()],
                [b"client_id=".as_slice(), &encoded(&target.client_id)].concat()
            );
            assert_eq!(
                forwarded[kept.len() + 1],
                b"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
            );
            let assertion = forwarded[kept.len() + 2]
                .strip_prefix(b"client_assertion=")
                .expect("an assertion");
            assert_eq!(assertion.iter().filter(|&&b| b == b'.').count(), 2, "a compact JWS");
            if !secret.is_empty() {
                assert_eq!(count(&rewrite.body, &secret), secret_in_input, "no secret in the body");
            }
            assert!(!matches!(rewrite.authorization, AuthorizationChange::Set(_)));
        }
    }
}

/// The configuration parser on any input: no panic, and its error never
/// repeats the value of the environment variable it was given.
pub fn check_config(json: &[u8], env_secret: &str) {
    if let Err(e) = azp_bridge::config::parse(json, &|_| Some(env_secret.to_owned())) {
        if env_secret.len() >= 4 {
            assert!(!e.to_string().contains(env_secret), "a config error repeats a secret");
        }
    }
}

/// The form parser: no panic; segments rejoin to the body; decode inverts encode.
pub fn check_form(body: &[u8]) {
    if let Ok(pairs) = form::parse(body) {
        let rejoined = pairs.iter().map(|p| p.raw).collect::<Vec<_>>().join(&b'&');
        assert_eq!(rejoined, body);
        for pair in &pairs {
            let _ = pair.value();
        }
    }
    let mut encoded = Vec::new();
    form::encode_into(body, &mut encoded);
    assert_eq!(form::decode(&encoded).unwrap().as_ref(), body);
}

/// The token reader: no panic on any bytes.
pub fn check_token(token: &[u8]) {
    if let Ok(claims) = azp_bridge::token::claims(token) {
        assert!(token.iter().filter(|&&b| b == b'.').count() == 2);
        let _ = claims.iss;
    }
}

/// A body every form reader reads alike, stated apart from `form.rs`.
fn unambiguous_body(body: &[u8]) -> bool {
    let plain_name =
        |name: &[u8]| !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(b));
    let utf8_value = |value: &[u8]| {
        let mut out = Vec::new();
        let mut i = 0;
        while i < value.len() {
            if value[i] == b'%' {
                let Some(hex) = value.get(i + 1..i + 3) else {
                    return false;
                };
                let Ok(byte) = u8::from_str_radix(std::str::from_utf8(hex).unwrap_or("zz"), 16) else {
                    return false;
                };
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return false;
                }
                out.push(byte);
                i += 3;
            } else {
                out.push(value[i]);
                i += 1;
            }
        }
        std::str::from_utf8(&out).is_ok()
    };
    body.is_empty()
        || (body.is_ascii()
            && !body.contains(&b';')
            && body.split(|&b| b == b'&').all(|segment| {
                let mut parts = segment.splitn(2, |&b| b == b'=');
                let name = parts.next().unwrap_or_default();
                plain_name(name) && utf8_value(parts.next().unwrap_or_default())
            }))
}

/// The plain form type, at most with charset=utf-8 (a looser reading than
/// the filter's: whitespace anywhere in the parameter is dropped).
fn unambiguous_content_type(value: &[u8]) -> bool {
    let Some(rest) = value.strip_prefix(b"application/x-www-form-urlencoded") else {
        return false;
    };
    let rest: Vec<u8> = rest
        .iter()
        .filter(|b| !b" \t".contains(b))
        .map(u8::to_ascii_lowercase)
        .collect();
    [&b""[..], b";charset=utf-8", b";charset=\"utf-8\""].contains(&rest.as_slice())
}

struct Headers<'a>(Vec<(&'a str, &'a [u8])>);

impl RequestHeaders for Headers<'_> {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(n, _)| *n == name).count()
    }
}

/// A whole token request from its `Content-Type` values and body: a rewrite
/// only on the unambiguous subset, and the invariants of `check_decide`.
pub fn check_request(config: &Config, content_types: &[&[u8]], body: &[u8]) {
    let mut headers: Vec<(&str, &[u8])> = vec![
        (":method", b"POST"),
        (":path", b"/realms/demo/protocol/openid-connect/token"),
    ];
    headers.extend(content_types.iter().map(|ct| ("content-type", *ct)));
    let HeadPlan::Inspect(inspection) = policy::plan(config, &Headers(headers)) else {
        return;
    };
    let verdict = policy::decide(config, &inspection, body);
    if matches!(verdict.outcome, Outcome::Rewrite(_)) {
        assert_eq!(content_types.len(), 1, "rewrote with several Content-Types");
        assert!(
            unambiguous_content_type(content_types[0]),
            "rewrote under Content-Type {:?}",
            String::from_utf8_lossy(content_types[0])
        );
        assert!(
            unambiguous_body(body),
            "rewrote an ambiguous body {:?}",
            String::from_utf8_lossy(body)
        );
    }
    check_decide(config, &inspection, body);
}

/// The response edit on any bytes: no panic; a dropped id_token leaves a
/// JSON object with every other member of the original, each value byte for
/// byte, and no id_token.
pub fn check_response(body: &[u8]) {
    use azp_bridge::response::{drop_id_token, ResponseEdit};
    use serde_json::value::RawValue;
    type Members = std::collections::BTreeMap<String, Box<RawValue>>;
    let text = |members: Members| -> Vec<(String, String)> {
        members.into_iter().map(|(k, v)| (k, v.get().to_owned())).collect()
    };
    if let ResponseEdit::DropIdToken(out) = drop_id_token(body) {
        let before: Members = serde_json::from_slice(body).expect("only a JSON object is edited");
        let after: Members = serde_json::from_slice(&out).expect("the edit is a JSON object");
        let mut expected = before;
        assert!(expected.remove("id_token").is_some(), "an edit removes an id_token");
        assert_eq!(
            text(after),
            text(expected),
            "only the id_token goes, values byte for byte"
        );
    }
}

/// What Envoy's connection manager leaves of an authority before it picks a
/// virtual host (`HeaderUtility::stripPortFromHost`): a port after the last
/// `:` outside brackets is cut when it reads as a `u32` (digits, an optional
/// `+`) and, with `strip_matching_host_port`, equals the listener's port.
fn envoy_stripped(authority: &[u8], listener_port: Option<u32>) -> Vec<u8> {
    let colon = authority.iter().rposition(|&b| b == b':');
    let bracket = authority.iter().rposition(|&b| b == b']');
    let Some(colon) = colon.filter(|&c| bracket.is_none_or(|b| b < c)) else {
        return authority.to_vec();
    };
    let port = std::str::from_utf8(&authority[colon + 1..]).ok();
    let digits = port.map(|p| p.strip_prefix('+').unwrap_or(p));
    let parsed = digits
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u32>().ok());
    match (parsed, listener_port) {
        (Some(port), Some(listener)) if port != listener => authority.to_vec(),
        (Some(_), _) => authority[..colon].to_vec(),
        (None, _) => authority.to_vec(),
    }
}

/// The authorities of [`check_authority`]'s configuration, which are also
/// the domains of Keycloak's virtual host in the model of Envoy's routing;
/// every other authority goes to a catch-all.
pub const KEYCLOAK_DOMAINS: [&str; 2] = ["keycloak.example.com", "keycloak.example.com:8443"];
const LISTENER_PORT: u32 = 8443;

/// Envoy's choice of virtual host: a domain equal to the host, ASCII case aside.
fn envoy_routes_to_keycloak(host: &[u8]) -> bool {
    KEYCLOAK_DOMAINS.iter().any(|d| d.as_bytes().eq_ignore_ascii_case(host))
}

/// A forged refresh naming a configured client, with any authority, sent to
/// a listener that strips no port, any port, or its own: it is rewritten
/// only if Envoy routes it to Keycloak's virtual host.
pub fn check_authority(authority: &[u8]) {
    static CONFIG: std::sync::OnceLock<Config> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let json = format!(
            r#"{{"authorities":["{}","{}"],"clients":[{{"client_id":"admin","client_secret":"Adm1n&Secret=+/","allowed_callers":["mobile"]}}]}}"#,
            KEYCLOAK_DOMAINS[0], KEYCLOAK_DOMAINS[1]
        );
        azp_bridge::config::parse(json.as_bytes(), &|_| None).unwrap()
    });
    let token = format!(
        "eyJhbGciOiJIUzUxMiJ9.{}.c2ln",
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"iss":"https://keycloak.example.com/realms/demo","azp":"admin","typ":"Refresh"}"#)
    );
    let body = format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}");
    for listener_port in [None, Some(None), Some(Some(LISTENER_PORT))] {
        // None: no stripping; Some(None): any port; Some(Some(p)): the listener's.
        let seen = match listener_port {
            None => authority.to_vec(),
            Some(listener) => envoy_stripped(authority, listener),
        };
        let headers = Headers(vec![
            (":method", b"POST"),
            (":path", b"/realms/demo/protocol/openid-connect/token"),
            (":authority", &seen),
            ("content-type", b"application/x-www-form-urlencoded"),
        ]);
        let rewritten = match policy::plan(config, &headers) {
            HeadPlan::Inspect(inspection) => {
                matches!(
                    policy::decide(config, &inspection, body.as_bytes()).outcome,
                    Outcome::Rewrite(_)
                )
            }
            HeadPlan::Pass(_, reason) => {
                assert_eq!(reason, PassReason::UpstreamNotAllowed);
                false
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            rewritten,
            envoy_routes_to_keycloak(&seen),
            "authority {:?} (seen as {:?}, stripping {listener_port:?})",
            String::from_utf8_lossy(authority),
            String::from_utf8_lossy(&seen)
        );
    }
}
