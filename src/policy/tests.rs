use super::*;
use crate::config;
use ::base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ::base64::Engine;

const SECRET: &str = "admin-secret/+&=";
const SECRET_POSTED: &str = "admin-secret%2F%2B%26%3D";
const ISS: &str = "http://127.0.0.1:8080/realms/demo";

fn config_with(extra_client: &str, hold_headers: bool) -> Config {
    let json = format!(
        r#"{{"upstream_clusters":["keycloak"],"clients":[
            {{"client_id":"admin","client_secret":"{SECRET}","allowed_callers":["mobile","web"],"realms":["demo"]}}
            {extra_client}
        ],"hold_headers":{hold_headers},"max_body_bytes":4096}}"#
    );
    config::parse(json.as_bytes(), &|_| None).unwrap()
}

fn default_config() -> Config {
    config_with("", false)
}

fn hold_config() -> Config {
    config_with(
        r#",{"client_id":"basic-admin","client_secret":"b:s","auth_method":"client_secret_basic","allowed_callers":["mobile"]}"#,
        true,
    )
}

fn jwt(payload: &str) -> String {
    format!("eyJhbGciOiJIUzUxMiJ9.{}.sig_nature", URL_SAFE_NO_PAD.encode(payload))
}

fn refresh_token(azp: &str) -> String {
    jwt(&format!(r#"{{"iss":"{ISS}","azp":"{azp}","typ":"Refresh","sid":"x"}}"#))
}

fn target(endpoint: Endpoint) -> Target {
    Target {
        endpoint,
        realm: "demo".to_owned(),
    }
}

fn inspection(target: Target, caller: &CallerHeader) -> Inspection {
    Inspection {
        target,
        caller: caller.clone(),
        has_content_length: true,
    }
}

fn decide_at(config: &Config, target: Target, caller: &CallerHeader, body: &[u8]) -> Verdict {
    decide(config, &inspection(target, caller), body)
}

fn decide_token(config: &Config, caller: &CallerHeader, body: &str) -> Verdict {
    decide_at(config, target(Endpoint::Token), caller, body.as_bytes())
}

fn rewritten(verdict: &Verdict) -> (&str, &AuthorizationChange) {
    match &verdict.outcome {
        Outcome::Rewrite(r) => (std::str::from_utf8(&r.body).unwrap(), &r.authorization),
        other => panic!("expected a rewrite, got {other:?}"),
    }
}

fn body_of(verdict: Verdict) -> String {
    rewritten(&verdict).0.to_owned()
}

fn passed(verdict: &Verdict) -> PassReason {
    match verdict.outcome {
        Outcome::Pass(reason) => reason,
        Outcome::Rewrite(_) => panic!("expected a pass"),
    }
}

fn basic_header(id: &str, secret: &str) -> CallerHeader {
    let value = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
    CallerHeader::from_authorization(Some(value.as_bytes()))
}

// --- the head ---

struct Headers(Vec<(&'static str, &'static str)>);

impl RequestHeaders for Headers {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_bytes())
    }

    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(n, _)| *n == name).count()
    }
}

const TOKEN_PATH: &str = "/realms/demo/protocol/openid-connect/token";
const FORM: &str = "application/x-www-form-urlencoded";

fn plan_of(headers: &[(&'static str, &'static str)]) -> HeadPlan {
    plan(&default_config(), &Headers(headers.to_vec()))
}

#[test]
fn plan_ignores_what_is_not_a_token_request() {
    assert_eq!(
        plan_of(&[(":method", "GET"), (":path", "/realms/demo/account")]),
        HeadPlan::Ignore
    );
    assert_eq!(
        plan_of(&[(":method", "GET"), (":path", TOKEN_PATH), ("content-type", FORM)]),
        HeadPlan::Ignore
    );
    assert_eq!(
        plan_of(&[(":method", "POST"), (":path", "/api/orders"), ("content-type", FORM)]),
        HeadPlan::Ignore
    );
    assert_eq!(
        plan_of(&[
            (":method", "POST"),
            (":path", TOKEN_PATH),
            ("content-type", "application/json")
        ]),
        HeadPlan::Ignore
    );
    assert_eq!(plan_of(&[(":method", "POST"), (":path", TOKEN_PATH)]), HeadPlan::Ignore);
    assert_eq!(plan_of(&[]), HeadPlan::Ignore);
}

#[test]
fn plan_reads_only_the_method_of_other_methods() {
    struct Counting(std::cell::RefCell<Vec<String>>);
    impl RequestHeaders for Counting {
        fn get(&self, name: &str) -> Option<&[u8]> {
            self.0.borrow_mut().push(name.to_owned());
            (name == ":method").then_some(&b"GET"[..])
        }
        fn count(&self, name: &str) -> usize {
            self.0.borrow_mut().push(name.to_owned());
            1
        }
    }
    let headers = Counting(Default::default());
    assert_eq!(plan(&default_config(), &headers), HeadPlan::Ignore);
    assert_eq!(*headers.0.borrow(), vec![":method"]);
}

#[test]
fn plan_reads_only_method_and_path_of_other_posts() {
    struct Counting(std::cell::RefCell<Vec<String>>);
    impl RequestHeaders for Counting {
        fn get(&self, name: &str) -> Option<&[u8]> {
            self.0.borrow_mut().push(name.to_owned());
            match name {
                ":method" => Some(b"POST"),
                ":path" => Some(b"/api/orders"),
                _ => Some(FORM.as_bytes()),
            }
        }
        fn count(&self, name: &str) -> usize {
            self.0.borrow_mut().push(name.to_owned());
            1
        }
    }
    let headers = Counting(Default::default());
    assert_eq!(plan(&default_config(), &headers), HeadPlan::Ignore);
    assert_eq!(*headers.0.borrow(), vec![":method", ":path"]);
}

#[test]
fn plan_inspects_token_requests_and_refuses_declared_oversize() {
    let base = [(":method", "POST"), (":path", TOKEN_PATH), ("content-type", FORM)];
    let with = |extra: &[(&'static str, &'static str)]| plan_of(&[&base[..], extra].concat());
    let inspect = |caller: CallerHeader, has_content_length: bool| {
        HeadPlan::Inspect(Inspection {
            target: target(Endpoint::Token),
            caller,
            has_content_length,
        })
    };
    assert_eq!(with(&[]), inspect(CallerHeader::None, false));
    assert_eq!(with(&[("content-length", "4096")]), inspect(CallerHeader::None, true));
    assert_eq!(with(&[("content-length", "4097")]), HeadPlan::RejectTooLarge);
    assert_eq!(
        with(&[("content-length", "99999999999999999999999")]),
        inspect(CallerHeader::None, true)
    );
    assert_eq!(with(&[("content-length", "junk")]), inspect(CallerHeader::None, true));
    // "mobile:x"
    assert_eq!(
        with(&[("authorization", "Basic bW9iaWxlOng=")]),
        inspect(CallerHeader::Basic(b"mobile".to_vec()), false)
    );
}

#[test]
fn plan_passes_token_requests_keycloak_could_read_otherwise() {
    let token_post = [(":method", "POST"), (":path", TOKEN_PATH)];
    let with = |extra: &[(&'static str, &'static str)]| plan_of(&[&token_post[..], extra].concat());
    let ambiguous = |why| HeadPlan::Pass(target(Endpoint::Token), PassReason::Ambiguous(why));
    assert_eq!(
        with(&[("content-type", "application/x-www-form-urlencoded; charset=UTF-16BE")]),
        ambiguous("Content-Type has a parameter other than charset=utf-8")
    );
    assert_eq!(
        with(&[("content-type", "Application/X-WWW-Form-Urlencoded")]),
        ambiguous("Content-Type is not exactly application/x-www-form-urlencoded")
    );
    assert_eq!(
        with(&[("content-type", FORM), ("content-type", FORM)]),
        ambiguous("more than one Content-Type")
    );
    assert_eq!(
        with(&[("content-type", "application/json"), ("content-type", FORM)]),
        ambiguous("more than one Content-Type")
    );
    assert_eq!(
        with(&[("content-type", FORM), ("content-encoding", "gzip")]),
        ambiguous("the body has a Content-Encoding")
    );
    assert_eq!(
        with(&[("content-type", FORM), ("content-encoding", "identity")]),
        ambiguous("the body has a Content-Encoding")
    );
    assert_eq!(
        with(&[
            ("content-type", FORM),
            ("authorization", "Basic bW9iaWxlOng="),
            ("authorization", "Basic YWRtaW46eA=="),
        ]),
        ambiguous("more than one Authorization")
    );
    // Ambiguity is settled before size: such a request is never buffered.
    assert_eq!(
        with(&[
            ("content-type", "application/x-www-form-urlencoded; x=y"),
            ("content-length", "99999")
        ]),
        ambiguous("Content-Type has a parameter other than charset=utf-8")
    );
    for utf8 in [
        "application/x-www-form-urlencoded;charset=UTF-8",
        "application/x-www-form-urlencoded; charset=\"utf-8\"",
    ] {
        assert!(
            matches!(with(&[("content-type", utf8)]), HeadPlan::Inspect(_)),
            "{utf8}"
        );
    }
}

fn upstream(clusters: Option<&[&str]>, authorities: Option<&[&str]>) -> Upstream {
    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    Upstream {
        clusters: clusters.map(owned),
        authorities: authorities.map(owned),
    }
}

#[test]
fn only_the_listed_cluster_is_keycloak() {
    let clusters = upstream(
        Some(&["keycloak", "outbound|8080||keycloak.iam.svc.cluster.local"]),
        None,
    );
    let to = |name: &'static str| move || Some(name.as_bytes().to_vec());
    assert!(goes_to_keycloak(&clusters, None, &to("keycloak")));
    assert!(goes_to_keycloak(
        &clusters,
        None,
        &to("outbound|8080||keycloak.iam.svc.cluster.local")
    ));
    for other in [
        "other",
        "Keycloak",
        "keycloak ",
        "outbound|8080||keycloak.other.svc.cluster.local",
    ] {
        assert!(!goes_to_keycloak(&clusters, Some(b"keycloak"), &to(other)), "{other}");
    }
    // Unknown cluster: not Keycloak.
    assert!(!goes_to_keycloak(&clusters, None, &|| None));
}

/// Issue 23, finding 1: `keycloak.example.com:x` (and `:`, an overlong
/// port, any port Envoy does not strip) is routed by Envoy as it is, to
/// another virtual host; only the spellings listed are Keycloak.
#[test]
fn authorities_match_exactly_port_included_case_aside() {
    let hosts = upstream(
        None,
        Some(&["keycloak.example.com", "keycloak.example.com:8443", "[::1]:8080"]),
    );
    let never = || -> Option<Vec<u8>> { panic!("the cluster is not read without upstream_clusters") };
    for authority in [
        "keycloak.example.com",
        "KeyCloak.Example.COM",
        "keycloak.example.com:8443",
        "[::1]:8080",
    ] {
        assert!(
            goes_to_keycloak(&hosts, Some(authority.as_bytes()), &never),
            "{authority}"
        );
    }
    for authority in [
        "keycloak.example.com:x",
        "keycloak.example.com:",
        "keycloak.example.com:4294967296",
        "keycloak.example.com:1234",
        "keycloak.example.com:08443",
        "keycloak.example.com:443",
        "keycloak.example.com.",
        "keycloak.example.com.:443",
        "keycloak.example.com:8443:8443",
        "keycloak.example.com ",
        "other-app.example.com",
        "keycloak.example.com.evil",
        "evil-keycloak.example.com",
        "",
        "[::1]",
        "[::2]:8080",
    ] {
        assert!(
            !goes_to_keycloak(&hosts, Some(authority.as_bytes()), &never),
            "{authority}"
        );
    }
    assert!(!goes_to_keycloak(&hosts, None, &never));
}

#[test]
fn with_both_lists_both_must_match() {
    let both = upstream(Some(&["keycloak"]), Some(&["keycloak.example.com"]));
    let keycloak = || Some(b"keycloak".to_vec());
    let other = || Some(b"other".to_vec());
    assert!(goes_to_keycloak(&both, Some(b"keycloak.example.com"), &keycloak));
    assert!(!goes_to_keycloak(&both, Some(b"other.example.com"), &keycloak));
    assert!(!goes_to_keycloak(&both, Some(b"keycloak.example.com"), &other));
}

/// The authority is checked with the headers; the cluster never is (plan
/// has no way to read it): `confirm_destination` reads it once a rewrite is
/// decided.
#[test]
fn plan_passes_other_authorities_and_never_reads_the_cluster() {
    let headers = Headers(vec![
        (":method", "POST"),
        (":path", TOKEN_PATH),
        (":authority", "other-app.example.com"),
        ("content-type", FORM),
        ("content-length", "999999"),
    ]);
    let by_authority = config::parse(
        br#"{"authorities":["keycloak.example.com"],"clients":[{"client_id":"admin","client_secret":"x","allowed_callers":["mobile"]}]}"#,
        &|_| None,
    )
    .unwrap();
    assert_eq!(
        plan(&by_authority, &headers),
        HeadPlan::Pass(target(Endpoint::Token), PassReason::UpstreamNotAllowed)
    );
    // By cluster only: the stream confirms the cluster before any 413.
    assert_eq!(plan(&default_config(), &headers), HeadPlan::RejectTooLarge);
    let config = default_config();
    for headers in [
        vec![(":method", "GET"), (":path", TOKEN_PATH)],
        vec![(":method", "POST"), (":path", "/api"), ("content-type", FORM)],
        vec![
            (":method", "POST"),
            (":path", TOKEN_PATH),
            ("content-type", "application/json"),
        ],
        vec![(":method", "POST"), (":path", TOKEN_PATH)],
    ] {
        assert_eq!(plan(&config, &Headers(headers)), HeadPlan::Ignore);
    }
}

#[test]
fn a_decided_rewrite_goes_ahead_only_to_a_listed_cluster() {
    let config = default_config();
    let body = format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token={}",
        refresh_token("admin")
    );
    let decide = || {
        decide(
            &config,
            &inspection(target(Endpoint::Token), &CallerHeader::None),
            body.as_bytes(),
        )
    };
    let to = |name: &'static str| move || Some(name.as_bytes().to_vec());
    assert!(matches!(
        confirm_destination(&config, decide(), &to("keycloak")).outcome,
        Outcome::Rewrite(_)
    ));
    for verdict in [
        confirm_destination(&config, decide(), &to("other-app")),
        confirm_destination(&config, decide(), &|| None),
    ] {
        assert_eq!(passed(&verdict), PassReason::UpstreamNotAllowed);
        assert_eq!(verdict.azp.as_deref(), Some("admin"));
    }
    // A pass stays what it was, and the cluster is not read for it.
    let same = format!(
        "grant_type=refresh_token&client_id=admin&refresh_token={}",
        refresh_token("admin")
    );
    let passing = crate::policy::decide(
        &config,
        &inspection(target(Endpoint::Token), &CallerHeader::None),
        same.as_bytes(),
    );
    let never = || -> Option<Vec<u8>> { panic!("the cluster is read for a pass") };
    assert_eq!(
        passed(&confirm_destination(&config, passing, &never)),
        PassReason::SameClient
    );
}

#[test]
fn too_large_answer_is_an_oauth_error() {
    let body: serde_json::Value = serde_json::from_str(&too_large_body(&default_config())).unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "Request body exceeds the azp-bridge limit of 4096 bytes"
    );
}

#[test]
fn caller_header_reading() {
    assert_eq!(CallerHeader::from_authorization(None), CallerHeader::None);
    assert_eq!(CallerHeader::from_authorization(Some(b"Bearer x")), CallerHeader::None);
    assert_eq!(basic_header("mobile", ""), CallerHeader::Basic(b"mobile".to_vec()));
    assert_eq!(
        CallerHeader::from_authorization(Some(b"Basic %%%")),
        CallerHeader::Malformed
    );
}

// --- the rewrite ---

#[test]
fn swaps_body_credentials_and_keeps_everything_else_in_place() {
    let token = refresh_token("admin");
    let body = format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}&scope=openid+email%20x");
    let verdict = decide_token(&default_config(), &CallerHeader::None, &body);
    let (new_body, authorization) = rewritten(&verdict);
    assert_eq!(
        new_body,
        format!("grant_type=refresh_token&refresh_token={token}&scope=openid+email%20x&client_id=admin&client_secret={SECRET_POSTED}")
    );
    assert_eq!(*authorization, AuthorizationChange::Keep);
    assert_eq!(verdict.caller.as_deref(), Some(&b"mobile"[..]));
    assert_eq!(verdict.azp.as_deref(), Some("admin"));
}

#[test]
fn removes_every_body_credential_of_the_caller() {
    let token = refresh_token("admin");
    let body = format!(
        "client_assertion_type=urn%3Ax&client_id=web&grant_type=refresh_token&client_secret=web-secret&client_assertion=eyJ.x.y&refresh_token={token}"
    );
    let verdict = decide_token(&default_config(), &CallerHeader::None, &body);
    let (new_body, _) = rewritten(&verdict);
    assert_eq!(
        new_body,
        format!("grant_type=refresh_token&refresh_token={token}&client_id=admin&client_secret={SECRET_POSTED}")
    );
    assert!(!new_body.contains("web-secret"));
}

#[test]
fn keeps_other_segments_byte_for_byte() {
    let token = refresh_token("admin");
    let body =
        format!("grant_type=refresh_token&x=%c3%A9+%00\t&refresh_token={token}&flag&client_id=mobile&scope=a%20b+c");
    let verdict = decide_token(&default_config(), &CallerHeader::None, &body);
    let (new_body, _) = rewritten(&verdict);
    assert_eq!(
        new_body,
        format!("grant_type=refresh_token&x=%c3%A9+%00\t&refresh_token={token}&flag&scope=a%20b+c&client_id=admin&client_secret={SECRET_POSTED}")
    );
}

#[test]
fn ambiguous_bodies_pass_unchanged() {
    // Only a body every form reader reads alike is rewritten (form.rs):
    // each of these could carry other parameters for Keycloak.
    let token = refresh_token("admin");
    let valid = format!("grant_type=refresh_token&refresh_token={token}&client_id=mobile");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            format!("%67rant_type=refresh_token&refresh_token={token}&client_id=mobile").into_bytes(),
            "a parameter name is not plain [A-Za-z0-9_.-]",
        ),
        (
            format!("{valid}&%00%67%00%72=client_credentials").into_bytes(),
            "a parameter name is not plain [A-Za-z0-9_.-]",
        ),
        (
            format!("{valid}&grant+type=x").into_bytes(),
            "a parameter name is not plain [A-Za-z0-9_.-]",
        ),
        (
            [b"\xef\xbb\xbf".as_slice(), valid.as_bytes()].concat(),
            "body has a byte outside ASCII",
        ),
        ([valid.as_bytes(), b"&x=\xff"].concat(), "body has a byte outside ASCII"),
        (
            format!("{valid};grant_type=client_credentials").into_bytes(),
            "body has a ';'",
        ),
        (
            format!("grant_type=refresh_token&refresh_token={token};x&client_id=mobile").into_bytes(),
            "body has a ';'",
        ),
        (format!("&{valid}").into_bytes(), "body has an empty parameter name"),
        (format!("{valid}&&x=1").into_bytes(), "body has an empty parameter name"),
        (format!("{valid}&").into_bytes(), "body has an empty parameter name"),
        (format!("{valid}&=x").into_bytes(), "body has an empty parameter name"),
        (
            format!("{valid}&x=%").into_bytes(),
            "a value has a malformed percent-escape",
        ),
        (
            format!("grant_type=refresh_token&client_id=%4&refresh_token={token}").into_bytes(),
            "a value has a malformed percent-escape",
        ),
        (
            format!("{valid}&x=%FF%FE").into_bytes(),
            "a value's escapes do not decode to UTF-8",
        ),
    ];
    for (body, why) in cases {
        let verdict = decide_at(&default_config(), target(Endpoint::Token), &CallerHeader::None, &body);
        assert_eq!(
            passed(&verdict),
            PassReason::Ambiguous(why),
            "{}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            (verdict.caller, verdict.azp),
            (None, None),
            "decided before reading anything"
        );
    }
}

#[test]
fn percent_encoded_values_are_read() {
    let token = refresh_token("admin").replace('.', "%2E");
    let body = format!("grant_type=refresh%5Ftoken&client_id=mob%69le&refresh_token={token}");
    let new_body = body_of(decide_token(&default_config(), &CallerHeader::None, &body));
    assert_eq!(
        new_body,
        format!("grant_type=refresh%5Ftoken&refresh_token={token}&client_id=admin&client_secret={SECRET_POSTED}")
    );
}

#[test]
fn basic_caller_is_the_caller_and_stays_in_default_mode() {
    let token = refresh_token("admin");
    let body = format!("grant_type=refresh_token&refresh_token={token}");
    let verdict = decide_token(&default_config(), &basic_header("mobile", "x"), &body);
    let (new_body, authorization) = rewritten(&verdict);
    assert_eq!(
        new_body,
        format!("grant_type=refresh_token&refresh_token={token}&client_id=admin&client_secret={SECRET_POSTED}")
    );
    // Headers are already upstream; Keycloak lets body credentials win.
    assert_eq!(*authorization, AuthorizationChange::Keep);
}

#[test]
fn basic_caller_wins_over_body_client_id() {
    let token = refresh_token("admin");
    let body = format!("grant_type=refresh_token&refresh_token={token}&client_id=other");
    let verdict = decide_token(&default_config(), &basic_header("mobile", ""), &body);
    assert_eq!(verdict.caller.as_deref(), Some(&b"mobile"[..]));
    rewritten(&verdict);
}

#[test]
fn hold_mode_drops_the_callers_basic_header() {
    let token = refresh_token("admin");
    let body = format!("grant_type=refresh_token&refresh_token={token}");
    let verdict = decide_token(&hold_config(), &basic_header("mobile", "x"), &body);
    assert_eq!(*rewritten(&verdict).1, AuthorizationChange::Remove);
    let verdict = decide_token(&hold_config(), &CallerHeader::None, &format!("{body}&client_id=mobile"));
    assert_eq!(*rewritten(&verdict).1, AuthorizationChange::Keep);
}

#[test]
fn basic_target_gets_a_basic_header_and_no_body_credentials() {
    let token = refresh_token("basic-admin");
    let body = format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}");
    let verdict = decide_token(&hold_config(), &CallerHeader::None, &body);
    let (new_body, authorization) = rewritten(&verdict);
    assert_eq!(new_body, format!("grant_type=refresh_token&refresh_token={token}"));
    // "basic-admin:b%3As", form-encoded then base64.
    let expected = format!("Basic {}", STANDARD.encode("basic-admin:b%3As"));
    assert_eq!(*authorization, AuthorizationChange::Set(expected));
}

#[test]
fn revoke_reads_token_and_logout_reads_refresh_token() {
    let token = refresh_token("admin");
    let config = default_config();
    let revoke = format!("token={token}&token_type_hint=refresh_token&client_id=mobile");
    let body = body_of(decide_at(
        &config,
        target(Endpoint::Revoke),
        &CallerHeader::None,
        revoke.as_bytes(),
    ));
    assert_eq!(
        body,
        format!("token={token}&token_type_hint=refresh_token&client_id=admin&client_secret={SECRET_POSTED}")
    );
    let logout = format!("client_id=mobile&refresh_token={token}");
    let body = body_of(decide_at(
        &config,
        target(Endpoint::Logout),
        &CallerHeader::None,
        logout.as_bytes(),
    ));
    assert_eq!(
        body,
        format!("refresh_token={token}&client_id=admin&client_secret={SECRET_POSTED}")
    );
    // Revoke with refresh_token instead of token: no token to read.
    let wrong = format!("refresh_token={token}&client_id=mobile");
    let verdict = decide_at(&config, target(Endpoint::Revoke), &CallerHeader::None, wrong.as_bytes());
    assert_eq!(passed(&verdict), PassReason::NoToken);
}

#[test]
fn huge_parameters_are_kept() {
    let token = refresh_token("admin");
    let big = "v".repeat(1 << 20);
    let body = format!("grant_type=refresh_token&refresh_token={token}&client_id=mobile&big={big}");
    let new_body = body_of(decide_token(&default_config(), &CallerHeader::None, &body));
    assert!(new_body.contains(&format!("&big={big}&client_id=admin")));
}

// --- the passes ---

#[test]
fn same_client_passes() {
    let body = format!(
        "grant_type=refresh_token&client_id=admin&client_secret=x&refresh_token={}",
        refresh_token("admin")
    );
    assert_eq!(
        passed(&decide_token(&default_config(), &CallerHeader::None, &body)),
        PassReason::SameClient
    );
    let body = format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token={}",
        refresh_token("mobile")
    );
    assert_eq!(
        passed(&decide_token(&default_config(), &CallerHeader::None, &body)),
        PassReason::SameClient
    );
}

#[test]
fn unknown_azp_passes() {
    let body = format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token={}",
        refresh_token("stranger")
    );
    assert_eq!(
        passed(&decide_token(&default_config(), &CallerHeader::None, &body)),
        PassReason::UnknownAzp
    );
    // Client ids are compared exactly, as Keycloak does.
    let body = format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token={}",
        refresh_token("Admin")
    );
    assert_eq!(
        passed(&decide_token(&default_config(), &CallerHeader::None, &body)),
        PassReason::UnknownAzp
    );
}

#[test]
fn callers_not_allowed_pass() {
    let token = refresh_token("admin");
    let config = default_config();
    let other = format!("grant_type=refresh_token&client_id=other&refresh_token={token}");
    assert_eq!(
        passed(&decide_token(&config, &CallerHeader::None, &other)),
        PassReason::CallerNotAllowed
    );
    let case = format!("grant_type=refresh_token&client_id=Mobile&refresh_token={token}");
    assert_eq!(
        passed(&decide_token(&config, &CallerHeader::None, &case)),
        PassReason::CallerNotAllowed
    );
    let anonymous = format!("grant_type=refresh_token&refresh_token={token}");
    let verdict = decide_token(&config, &CallerHeader::None, &anonymous);
    assert_eq!(passed(&verdict), PassReason::CallerNotAllowed);
    assert_eq!(verdict.caller, None);
    let basic_other = decide_token(&config, &basic_header("other", "s"), &anonymous);
    assert_eq!(passed(&basic_other), PassReason::CallerNotAllowed);
}

#[test]
fn realm_must_be_allowed_and_match_the_issuer() {
    let config = default_config();
    let body = |token: String| format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}");
    let other_realm = Target {
        endpoint: Endpoint::Token,
        realm: "other".to_owned(),
    };
    let verdict = decide_at(
        &config,
        other_realm.clone(),
        &CallerHeader::None,
        body(refresh_token("admin")).as_bytes(),
    );
    assert_eq!(
        passed(&verdict),
        PassReason::RealmMismatch("the path's realm is not in the client's realms")
    );
    assert!(verdict
        .describe(&config, &other_realm)
        .ends_with("outcome=passed:realm_mismatch (the path's realm is not in the client's realms)"));
    for iss in [
        r#""iss":"http://k/realms/other","#,
        r#""iss":"http://k/realms/xdemo","#,
        r#""iss":"http://k/realms/demo/","#,
        r#""iss":"demo","#,
        "",
    ] {
        let token = jwt(&format!(r#"{{{iss}"azp":"admin"}}"#));
        let verdict = decide_token(&config, &CallerHeader::None, &body(token));
        assert_eq!(
            passed(&verdict),
            PassReason::RealmMismatch("the token's issuer is not the path's realm"),
            "{iss}"
        );
    }
}

#[test]
fn any_realm_when_realms_is_unset() {
    let config = hold_config();
    let token = jwt(r#"{"iss":"http://k/auth/realms/elsewhere","azp":"basic-admin"}"#);
    let body = format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}");
    let elsewhere = Target {
        endpoint: Endpoint::Token,
        realm: "elsewhere".to_owned(),
    };
    let verdict = decide_at(&config, elsewhere, &CallerHeader::None, body.as_bytes());
    assert!(matches!(verdict.outcome, Outcome::Rewrite(_)));
}

#[test]
fn duplicated_parameters_are_left_to_keycloak() {
    let token = refresh_token("admin");
    for body in [
        format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}&refresh_token={token}"),
        format!("grant_type=refresh_token&client_id=mobile&client_id=web&refresh_token={token}"),
        format!("grant_type=refresh_token&client_id=mobile&client_id=mobile&refresh_token={token}"),
        format!("scope=a&grant_type=refresh_token&client_id=mobile&refresh_token={token}&scope=b"),
        format!("flag&grant_type=refresh_token&client_id=mobile&refresh_token={token}&flag=1"),
    ] {
        assert_eq!(
            passed(&decide_token(&default_config(), &CallerHeader::None, &body)),
            PassReason::DuplicateParameter,
            "{body}"
        );
    }
    // More names than the pairwise check covers: the sorted check.
    let many: String = (0..40).map(|i| format!("p{i}=1&")).collect();
    let body = format!("{many}grant_type=refresh_token&client_id=mobile&refresh_token={token}&p7=2");
    assert_eq!(
        passed(&decide_token(&default_config(), &CallerHeader::None, &body)),
        PassReason::DuplicateParameter
    );
}

#[test]
fn only_refresh_grants_at_the_token_endpoint() {
    let token = refresh_token("admin");
    let config = default_config();
    for body in [
        format!("grant_type=password&client_id=mobile&refresh_token={token}&username=u&password=p"),
        format!("client_id=mobile&refresh_token={token}"),
        format!("grant_type=Refresh_Token&client_id=mobile&refresh_token={token}"),
        "grant_type=client_credentials&client_id=admin&client_secret=x".to_owned(),
    ] {
        assert_eq!(
            passed(&decide_token(&config, &CallerHeader::None, &body)),
            PassReason::NotRefreshGrant,
            "{body}"
        );
    }
}

#[test]
fn missing_or_undecodable_tokens_pass() {
    let config = default_config();
    let prefix = "grant_type=refresh_token&client_id=mobile";
    assert_eq!(
        passed(&decide_token(&config, &CallerHeader::None, prefix)),
        PassReason::NoToken
    );
    let cases = [
        ("refresh_token=", "token is not a compact JWS"),
        ("refresh_token=opaque-value", "token is not a compact JWS"),
        ("refresh_token=a.b.c.d", "token is not a compact JWS"),
        ("refresh_token=a.!!!.c", "token payload is not base64url"),
    ];
    for (param, what) in cases {
        let verdict = decide_token(&config, &CallerHeader::None, &format!("{prefix}&{param}"));
        assert_eq!(passed(&verdict), PassReason::NotDecodable(what), "{param}");
    }
    for payload in [
        "not json",
        "{}",
        r#"{"azp":42}"#,
        r#"{"azp":null,"iss":"x"}"#,
        r#"{"iss":"http://k/realms/demo"}"#,
    ] {
        let verdict = decide_token(
            &config,
            &CallerHeader::None,
            &format!("{prefix}&refresh_token={}", jwt(payload)),
        );
        assert_eq!(
            passed(&verdict),
            PassReason::NotDecodable("token payload has no string azp"),
            "{payload}"
        );
    }
}

#[test]
fn malformed_headers_and_empty_bodies_pass() {
    let token = refresh_token("admin");
    let config = default_config();
    let verdict = decide_token(
        &config,
        &CallerHeader::Malformed,
        &format!("grant_type=refresh_token&refresh_token={token}"),
    );
    assert_eq!(
        passed(&verdict),
        PassReason::NotDecodable("authorization is not valid Basic")
    );
    let verdict = decide_token(&config, &CallerHeader::None, "");
    assert_eq!(passed(&verdict), PassReason::NotRefreshGrant);
    let verdict = decide_at(&config, target(Endpoint::Revoke), &CallerHeader::None, b"");
    assert_eq!(passed(&verdict), PassReason::NoToken);
    let verdict = decide_token(&config, &CallerHeader::None, "&&&==&=");
    assert_eq!(
        passed(&verdict),
        PassReason::Ambiguous("body has an empty parameter name")
    );
    let verdict = decide_token(&config, &CallerHeader::None, "\u{0}\u{1}=x");
    assert_eq!(
        passed(&verdict),
        PassReason::Ambiguous("a parameter name is not plain [A-Za-z0-9_.-]")
    );
}

// --- what is logged ---

#[test]
fn describe_names_the_decision_without_secrets() {
    let token = refresh_token("admin");
    let body = format!("grant_type=refresh_token&client_id=mobile&client_secret=caller-secret&refresh_token={token}");
    let verdict = decide_token(&default_config(), &CallerHeader::None, &body);
    let line = verdict.describe(&default_config(), &target(Endpoint::Token));
    assert_eq!(
        line,
        "endpoint=token realm=demo caller=mobile azp=admin outcome=rewritten"
    );
    let debug = format!("{verdict:?}");
    for secret in [SECRET, SECRET_POSTED, "caller-secret", token.as_str()] {
        assert!(!line.contains(secret) && !debug.contains(secret), "{debug}");
    }
}

#[test]
fn describe_passes_and_escapes_odd_ids() {
    let body = format!(
        "grant_type=refresh_token&client_id=a%0Ab%20c&refresh_token={}",
        refresh_token("admin")
    );
    let verdict = decide_token(&default_config(), &CallerHeader::None, &body);
    assert_eq!(
        verdict.describe(&default_config(), &target(Endpoint::Token)),
        "endpoint=token realm=demo caller=a?b?c azp=admin outcome=passed:caller_not_allowed"
    );
    let long = "x".repeat(200);
    let body = format!("grant_type=refresh_token&client_id={long}&refresh_token=nope");
    let line = decide_token(&default_config(), &CallerHeader::None, &body)
        .describe(&default_config(), &target(Endpoint::Token));
    assert_eq!(
        line,
        format!(
            "endpoint=token realm=demo caller={}... azp=- outcome=passed:not_decodable (token is not a compact JWS)",
            "x".repeat(64)
        )
    );
}

#[test]
fn describe_redacts_ids_that_carry_a_secret() {
    // Found by fuzzing: a caller may send a configured secret as its client id.
    let body = format!(
        "grant_type=refresh_token&client_id=x{SECRET_POSTED}y&refresh_token={}",
        refresh_token("admin")
    );
    let line = decide_token(&default_config(), &CallerHeader::None, &body)
        .describe(&default_config(), &target(Endpoint::Token));
    assert_eq!(
        line,
        "endpoint=token realm=demo caller=<redacted> azp=admin outcome=passed:caller_not_allowed"
    );
}

#[test]
fn basic_target_header_is_redacted_in_debug() {
    let token = refresh_token("basic-admin");
    let verdict = decide_token(
        &hold_config(),
        &CallerHeader::None,
        &format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}"),
    );
    let debug = format!("{verdict:?}");
    assert!(debug.contains("Set(<redacted>)"), "{debug}");
    assert!(!debug.contains(&STANDARD.encode("basic-admin:b%3As")));
}

#[test]
fn the_sdks_header_pairs_are_request_headers() {
    let headers = HeaderPairs(vec![
        (":method".to_owned(), b"POST".to_vec()),
        ("content-type".to_owned(), b"a".to_vec()),
        ("x".to_owned(), b"\xff".to_vec()),
        ("content-type".to_owned(), b"b".to_vec()),
    ]);
    assert_eq!(headers.get("content-type"), Some(&b"a"[..]));
    assert_eq!(headers.get("x"), Some(&b"\xff"[..]));
    assert_eq!(headers.get("y"), None);
    assert_eq!(
        (
            headers.count("content-type"),
            headers.count(":method"),
            headers.count("y")
        ),
        (2, 1, 0)
    );
}

#[test]
fn only_bridged_refreshes_of_drop_clients_lose_their_id_token() {
    let config = config_with(
        r#",{"client_id":"keeper","client_secret":"k","allowed_callers":["mobile"],"id_token":"keep"}"#,
        false,
    );
    let drops = |endpoint, azp: &str, param: &str| {
        let token = refresh_token(azp);
        let body = format!("grant_type=refresh_token&client_id=mobile&{param}={token}");
        match decide_at(&config, target(endpoint), &CallerHeader::None, body.as_bytes()).outcome {
            Outcome::Rewrite(r) => r.drop_id_token,
            other => panic!("expected a rewrite, got {other:?}"),
        }
    };
    assert!(drops(Endpoint::Token, "admin", "refresh_token"));
    assert!(!drops(Endpoint::Token, "keeper", "refresh_token"));
    assert!(!drops(Endpoint::Revoke, "admin", "token"));
    assert!(!drops(Endpoint::Logout, "admin", "refresh_token"));
}

// --- signed-JWT targets and realms ---

const TEST_KEY: &str = include_str!("../../tests/fixtures/es256-test-key.pem");

fn fresh() -> Option<Fresh> {
    Some(Fresh {
        now_seconds: 1_700_000_000,
        jti: [1; 16],
    })
}

fn jwt_config(hold_headers: bool) -> Config {
    let pem = TEST_KEY.replace('\n', "\\n");
    let json = format!(
        r#"{{"upstream_clusters":["keycloak"],"clients":[
            {{"client_id":"es","private_key":"{pem}","auth_method":"private_key_jwt","key_id":"test-kid","allowed_callers":["mobile"]}},
            {{"client_id":"hs","client_secret":"0123456789abcdef0123456789abcdef","auth_method":"client_secret_jwt","allowed_callers":["mobile"]}},
            {{"client_id":"portal","client_secret":"a-secret","allowed_callers":["mobile"],"realms":["tenant-a"]}},
            {{"client_id":"portal","client_secret":"b-secret","allowed_callers":["mobile"],"realms":["tenant-b"]}}
        ],"issuer":"http://127.0.0.1:8080","hold_headers":{hold_headers}}}"#
    );
    config::parse(json.as_bytes(), &|_| None).unwrap()
}

fn jwt_claims(jws: &str) -> (serde_json::Value, serde_json::Value) {
    let mut parts = jws.split('.');
    let mut json = || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    (json(), json())
}

#[test]
fn signed_jwt_targets_get_an_assertion_for_the_configured_issuer() {
    for (azp, alg, kid) in [("es", "ES256", Some("test-kid")), ("hs", "HS256", None)] {
        let token = refresh_token(azp);
        let body = format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}");
        let verdict = decide_with(
            &jwt_config(false),
            &inspection(target(Endpoint::Token), &CallerHeader::None),
            body.as_bytes(),
            &fresh,
        );
        let (new_body, authorization) = rewritten(&verdict);
        assert_eq!(*authorization, AuthorizationChange::Keep);
        let prefix = format!(
            "grant_type=refresh_token&refresh_token={token}&client_id={azp}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion="
        );
        let assertion = new_body.strip_prefix(&prefix).unwrap_or_else(|| panic!("{new_body}"));
        let (header, claims) = jwt_claims(assertion);
        assert_eq!(header["alg"], alg);
        assert_eq!(header.get("kid").and_then(|k| k.as_str()), kid);
        assert_eq!(
            claims,
            serde_json::json!({"iss": azp, "sub": azp, "aud": ISS, "jti": "AQEBAQEBAQEBAQEBAQEBAQ",
                "iat": 1_700_000_000u64, "exp": 1_700_000_060u64})
        );
    }
}

#[test]
fn without_a_clock_a_signed_jwt_target_passes() {
    let body = format!(
        "grant_type=refresh_token&client_id=mobile&refresh_token={}",
        refresh_token("es")
    );
    let verdict = decide(
        &jwt_config(false),
        &inspection(target(Endpoint::Token), &CallerHeader::None),
        body.as_bytes(),
    );
    assert_eq!(passed(&verdict), PassReason::SigningFailed);
}

#[test]
fn hold_mode_removes_the_callers_basic_header_for_a_signed_jwt_target() {
    let body = format!("grant_type=refresh_token&refresh_token={}", refresh_token("hs"));
    let verdict = decide_with(
        &jwt_config(true),
        &inspection(target(Endpoint::Token), &basic_header("mobile", "")),
        body.as_bytes(),
        &fresh,
    );
    assert_eq!(*rewritten(&verdict).1, AuthorizationChange::Remove);
}

#[test]
fn each_realm_takes_its_own_entry() {
    let config = jwt_config(false);
    let in_realm = |realm: &str| {
        let iss = format!("http://127.0.0.1:8080/realms/{realm}");
        let token = jwt(&format!(r#"{{"iss":"{iss}","azp":"portal","typ":"Refresh"}}"#));
        let body = format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}");
        let target = Target {
            endpoint: Endpoint::Token,
            realm: realm.to_owned(),
        };
        decide_with(
            &config,
            &inspection(target, &CallerHeader::None),
            body.as_bytes(),
            &fresh,
        )
    };
    assert!(body_of(in_realm("tenant-a")).ends_with("&client_id=portal&client_secret=a-secret"));
    assert!(body_of(in_realm("tenant-b")).ends_with("&client_id=portal&client_secret=b-secret"));
    assert_eq!(
        passed(&in_realm("tenant-c")),
        PassReason::RealmMismatch("the path's realm is not in the client's realms")
    );
    // A tenant-a token refreshed on tenant-b's path: the issuer disagrees.
    let token = jwt(r#"{"iss":"http://127.0.0.1:8080/realms/tenant-a","azp":"portal"}"#);
    let body = format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}");
    let target_b = Target {
        endpoint: Endpoint::Token,
        realm: "tenant-b".to_owned(),
    };
    let verdict = decide_with(
        &config,
        &inspection(target_b, &CallerHeader::None),
        body.as_bytes(),
        &fresh,
    );
    assert_eq!(
        passed(&verdict),
        PassReason::RealmMismatch("the token's issuer is not the configured issuer's realm")
    );
}

/// Issue 23, finding 4: with an issuer configured, the token must name it,
/// and a signed assertion's audience comes from the configuration, never
/// from the (unverified) token.
#[test]
fn a_configured_issuer_is_required_of_the_token_and_is_the_audience() {
    let config = jwt_config(false);
    for (azp, iss) in [
        ("es", "https://attacker.example/realms/demo"),
        ("hs", "https://attacker.example/realms/demo"),
        ("es", "http://127.0.0.1:8080/auth/realms/demo"),
        ("es", "http://127.0.0.1:8080/realms/demo/"),
        ("portal", "http://127.0.0.1:8081/realms/tenant-a"),
    ] {
        let token = jwt(&format!(r#"{{"iss":"{iss}","azp":"{azp}","typ":"Refresh"}}"#));
        let realm = if azp == "portal" { "tenant-a" } else { "demo" };
        let target = Target {
            endpoint: Endpoint::Token,
            realm: realm.to_owned(),
        };
        let body = format!("grant_type=refresh_token&client_id=mobile&refresh_token={token}");
        let verdict = decide_with(
            &config,
            &inspection(target, &CallerHeader::None),
            body.as_bytes(),
            &fresh,
        );
        assert_eq!(
            passed(&verdict),
            PassReason::RealmMismatch("the token's issuer is not the configured issuer's realm"),
            "{azp} {iss}"
        );
    }
}

#[test]
fn log_fields_never_show_a_configured_secret() {
    let config = default_config();
    let secret = config.clients[0].secret.expose().to_owned();
    assert_eq!(config.redactor.field(Some(b"7f0c-11")), "7f0c-11");
    assert_eq!(
        config.redactor.field(Some(format!("id-{secret}").as_bytes())),
        "<redacted>"
    );
}
