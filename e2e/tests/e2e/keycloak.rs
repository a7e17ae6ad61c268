//! azp-bridge between a client and a real Keycloak: the article's failure
//! reproduced directly, and fixed through Envoy. Keycloak's own answers are
//! the judge. One Keycloak serves every scenario (`scenarios`, one libtest
//! test that starts it and stops it); scenarios run in order, each named by
//! its function, and a failed one does not stop the others.
//!
//! The Keycloak is the one `scripts/keycloak.sh` installs: `KEYCLOAK_VERSION`
//! picks another (`make test-matrix` runs 26.4.7, 26.5.6 and 26.7.3). Where
//! Keycloak versions answer differently, a scenario expects what the running
//! server's version does (see `KeycloakVersion`), never less.

use crate::support;

use azp_bridge::form;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use support::http1::{self, form_body, form_post};
use support::keycloak::*;
use support::{h2client, Envoy, EnvoySpec};

const MISMATCH: &str = "Invalid refresh token. Token client and authorized client don't match";

struct Ctx {
    keycloak: Keycloak,
    /// The running server's version, as its admin API reports it.
    version: KeycloakVersion,
    /// Default mode: body credentials, secret from the environment. Keycloak's
    /// `--hostname` is this Envoy's URL, as operators deploy it.
    envoy: Envoy,
    /// hold_headers mode, with a client_secret_basic target.
    envoy_hold: Envoy,
    /// Default mode with `"id_token": "keep"`: today's behaviour without the drop.
    envoy_keep: Envoy,
    /// Every token seen, to check that no log line carries one.
    tokens: Mutex<Vec<String>>,
}

/// Which header modes a scenario goes through: `Default` (body credentials:
/// `envoy`, `envoy_keep`), `Hold` (`hold_headers`: `envoy_hold`), `Both`, or
/// `Keycloak` alone (no Envoy). `make test-matrix` reads the per-mode tally
/// `scenarios` prints.
#[derive(Clone, Copy, PartialEq)]
enum Modes {
    Keycloak,
    Default,
    Hold,
    Both,
}

/// A scenario: its function, named by the function's own name, and the
/// header modes it goes through.
struct Scenario {
    name: &'static str,
    modes: Modes,
    run: fn(&Ctx),
}

/// `modes: function, ...` as a list of scenarios named by their functions.
macro_rules! scenarios {
    ($($modes:ident: $run:ident),* $(,)?) => {
        vec![$(Scenario { name: stringify!($run), modes: Modes::$modes, run: $run }),*]
    };
}

/// Every scenario, in the order they run.
fn all_scenarios() -> Vec<Scenario> {
    scenarios![
        Keycloak: problem_exists_directly_at_keycloak,
        Default: refresh_through_envoy_rewrites_and_keycloak_accepts,
        Default: refresh_rounds_with_rotation_on,
        Default: impersonated_tokens_refresh_through_envoy,
        Default: own_tokens_and_other_grants_pass_through,
        Default: other_public_client_still_refused,
        Default: forged_token_gets_keycloaks_refusal,
        Both: ambiguous_requests_never_yield_a_token,
        Both: query_string_grant_is_not_read_by_keycloak,
        Both: utf8_charset_variants_still_bridge,
        Default: revoke_through_envoy,
        Default: logout_through_envoy,
        Hold: hold_mode_with_basic_caller_and_basic_target,
        Default: http2_client_through_envoy,
        Both: openid_client_refreshes_and_revokes_through_the_bridge,
        Default: openid_client_rejects_a_kept_id_token,
        Both: authlib_refreshes_and_revokes_through_the_bridge,
        Both: signed_jwt_targets_refresh_revoke_and_log_out_through_the_bridge,
        Default: one_client_id_in_two_realms_with_two_secrets,
        Default: load_with_keycloak_stopped_midway,
        Both: logs_carry_no_secret_or_token,
    ]
}

/// The names of every scenario, one a line, without starting anything
/// (`cargo test -p azp-bridge-e2e -- keycloak::scenario_names --nocapture`).
#[test]
fn scenario_names() {
    let scenarios = all_scenarios();
    let mut names: Vec<&str> = scenarios.iter().map(|s| s.name).collect();
    for name in &names {
        println!("{name}");
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), scenarios.len(), "a scenario is listed twice");
}

/// Every scenario (or those whose name contains `KEYCLOAK_SCENARIO`) against
/// one Keycloak and its Envoys, started here and stopped when this test ends,
/// also when a scenario fails: a failed scenario does not stop the others.
/// `make test-matrix` reads the per-mode tallies this prints (run it with
/// `--nocapture` to see them).
#[test]
fn scenarios() {
    let filter = std::env::var("KEYCLOAK_SCENARIO").ok().filter(|f| !f.is_empty());
    let selected: Vec<Scenario> = all_scenarios()
        .into_iter()
        .filter(|s| filter.as_deref().is_none_or(|f| s.name.contains(f)))
        .collect();
    assert!(!selected.is_empty(), "no scenario's name contains {filter:?}");
    println!("\nrunning {} Keycloak scenarios", selected.len());

    let ctx = start();
    let mut failed = Vec::new();
    // [passed, failed] per header mode.
    let (mut default_mode, mut hold_mode) = ([0; 2], [0; 2]);
    for scenario in &selected {
        let outcome = catch_unwind(AssertUnwindSafe(|| (scenario.run)(&ctx)));
        println!(
            "scenario {} ... {}",
            scenario.name,
            if outcome.is_ok() { "ok" } else { "FAILED" }
        );
        let slot = usize::from(outcome.is_err());
        if matches!(scenario.modes, Modes::Default | Modes::Both) {
            default_mode[slot] += 1;
        }
        if matches!(scenario.modes, Modes::Hold | Modes::Both) {
            hold_mode[slot] += 1;
        }
        if outcome.is_err() {
            failed.push(scenario.name);
        }
    }
    if !failed.is_empty() {
        println!("---- Keycloak log tail ----\n{}", tail(&ctx.keycloak.log(), 40));
    }
    let version = ctx.version;
    drop(ctx);
    let passed = selected.len() - failed.len();
    println!("\nkeycloak: server version {version}");
    for (mode, [ok, ko]) in [("default", default_mode), ("hold_headers", hold_mode)] {
        println!("keycloak: {mode} mode: {ok} passed, {ko} failed");
    }
    println!("keycloak: {passed} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "failed: {}", failed.join(", "));
}

/// A Keycloak release, major.minor.patch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct KeycloakVersion(u32, u32, u32);

impl KeycloakVersion {
    /// "26.4.7", also "26.4.7-SNAPSHOT" or "999.0.0-SNAPSHOT" (a main build).
    fn parse(text: &str) -> Option<Self> {
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let version = KeycloakVersion(parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }

    /// Whether a client's `client.secret.authentication.allowed.method`
    /// attribute is enforced: a client restricted to client_secret_basic is
    /// then refused its secret in the body. 26.5.6's
    /// ClientIdAndSecretAuthenticator has no such check and accepts it,
    /// 26.7.3's has it; the realm's description dates it to 26.6.0 (no 26.6
    /// was run here).
    fn enforces_allowed_secret_method(self) -> bool {
        self >= KeycloakVersion(26, 6, 0)
    }
}

impl std::fmt::Display for KeycloakVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The version the running server reports (admin API, `serverinfo`); with
/// `KEYCLOAK_VERSION` set (scripts/keycloak.sh installs that one), it must be
/// that version, so that a matrix cell tests the Keycloak it names.
fn server_version(keycloak: &Keycloak) -> KeycloakVersion {
    let bearer = admin_bearer(keycloak.port);
    let request = format!(
        "GET /admin/serverinfo HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {bearer}\r\ncontent-length: 0\r\n\r\n"
    );
    let resp = http1::exchange(keycloak.port, request.as_bytes());
    assert_eq!(resp.status, 200, "serverinfo: {}", resp.body_str());
    let info: Value = serde_json::from_slice(&resp.body).expect("serverinfo is JSON");
    let reported = info["systemInfo"]["version"].as_str().expect("systemInfo.version");
    let version = KeycloakVersion::parse(reported).unwrap_or_else(|| panic!("version {reported:?}"));
    if let Some(wanted) = std::env::var("KEYCLOAK_VERSION").ok().filter(|v| !v.is_empty()) {
        assert_eq!(
            reported, wanted,
            "KEYCLOAK_VERSION names another Keycloak than the one running"
        );
    }
    version
}

fn start() -> Ctx {
    let envoy_port = support::free_port();
    let keycloak = Keycloak::start_behind(&format!("http://127.0.0.1:{envoy_port}"));
    let version = server_version(&keycloak);
    println!("keycloak: server version {version}");
    // Signed-JWT targets, in both header modes; the private key from the
    // environment, as a mesh gives it.
    let jwt_clients = format!(
        r#",{{"client_id":"{JWT_CLIENT}","private_key_env":"JWT_ADMIN_KEY","auth_method":"private_key_jwt","key_id":"{JWT_KEY_ID}","allowed_callers":["{MOBILE_CLIENT}"]}},{{"client_id":"{EDDSA_CLIENT}","private_key_env":"EDDSA_ADMIN_KEY","auth_method":"private_key_jwt","key_id":"{EDDSA_KEY_ID}","allowed_callers":["{MOBILE_CLIENT}"]}},{{"client_id":"{SECRET_JWT_CLIENT}","client_secret":"{SECRET_JWT_SECRET}","auth_method":"client_secret_jwt","allowed_callers":["{MOBILE_CLIENT}"]}}"#
    );
    // One client id in two realms, each with its own secret; tenant-c unnamed.
    let tenants: String = ["tenant-a", "tenant-b"]
        .iter()
        .map(|t| {
            format!(
                r#",{{"client_id":"{TENANT_CLIENT}","client_secret":"{}","allowed_callers":["{TENANT_PUBLIC_CLIENT}"],"realms":["{t}"]}}"#,
                tenant_secret(t)
            )
        })
        .collect();
    // Keycloak's base URL as its tokens name it (its hostname is the first
    // Envoy): the signed assertions' audience.
    let issuer = format!("http://127.0.0.1:{envoy_port}");
    let plugin = format!(
        r#"{{"upstream_clusters":["keycloak"],"issuer":"{issuer}","clients":[{{"client_id":"{ADMIN_CLIENT}","client_secret_env":"ADMIN_CLIENT_SECRET","allowed_callers":["{MOBILE_CLIENT}"],"realms":["{REALM}"]}}{jwt_clients}{tenants}]}}"#
    );
    let envoy = EnvoySpec::new(&plugin, keycloak.port)
        .listen_port(envoy_port)
        .host_env_key("ADMIN_CLIENT_SECRET")
        .env("ADMIN_CLIENT_SECRET", ADMIN_CLIENT_SECRET)
        .host_env_key("JWT_ADMIN_KEY")
        .env("JWT_ADMIN_KEY", JWT_KEY_PEM)
        .host_env_key("EDDSA_ADMIN_KEY")
        .env("EDDSA_ADMIN_KEY", EDDSA_KEY_PEM)
        .start();
    let plugin_hold = format!(
        r#"{{"upstream_clusters":["keycloak"],"issuer":"{issuer}","clients":[{{"client_id":"{ADMIN_CLIENT}","client_secret":"{ADMIN_CLIENT_SECRET}","allowed_callers":["{MOBILE_CLIENT}"]}},{{"client_id":"{BASIC_ONLY_CLIENT}","client_secret":"{BASIC_ONLY_SECRET}","auth_method":"client_secret_basic","allowed_callers":["{MOBILE_CLIENT}"]}}{jwt_clients}],"hold_headers":true}}"#
    );
    let envoy_hold = EnvoySpec::new(&plugin_hold, keycloak.port)
        .hold_headers()
        .host_env_key("JWT_ADMIN_KEY")
        .env("JWT_ADMIN_KEY", JWT_KEY_PEM)
        .host_env_key("EDDSA_ADMIN_KEY")
        .env("EDDSA_ADMIN_KEY", EDDSA_KEY_PEM)
        .start();
    let plugin_keep = format!(
        r#"{{"upstream_clusters":["keycloak"],"clients":[{{"client_id":"{ADMIN_CLIENT}","client_secret":"{ADMIN_CLIENT_SECRET}","allowed_callers":["{MOBILE_CLIENT}"],"id_token":"keep"}}]}}"#
    );
    let envoy_keep = EnvoySpec::new(&plugin_keep, keycloak.port).start();
    Ctx {
        keycloak,
        version,
        envoy,
        envoy_hold,
        envoy_keep,
        tokens: Mutex::new(Vec::new()),
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// --- talking to Keycloak ---

struct Answer {
    status: u16,
    json: Value,
    raw: String,
}

fn basic(id: &str, secret: &str) -> String {
    let mut plain = Vec::new();
    form::encode_into(id.as_bytes(), &mut plain);
    plain.push(b':');
    form::encode_into(secret.as_bytes(), &mut plain);
    format!("Basic {}", STANDARD.encode(plain))
}

fn post(ctx: &Ctx, port: u16, endpoint: &str, headers: &[(&str, &str)], pairs: &[(&str, &str)]) -> Answer {
    let path = format!("/realms/{REALM}/protocol/openid-connect/{endpoint}");
    let resp = http1::exchange(port, &form_post(&path, headers, &form_body(pairs)));
    let raw = resp.body_str();
    let json = serde_json::from_str(&raw).unwrap_or(Value::Null);
    for key in ["access_token", "refresh_token"] {
        if let Some(token) = json[key].as_str() {
            ctx.tokens.lock().unwrap().push(token.to_owned());
        }
    }
    assert!(
        !raw.contains(ADMIN_CLIENT_SECRET) && !raw.contains(BASIC_ONLY_SECRET),
        "a response carries a secret"
    );
    Answer {
        status: resp.status,
        json,
        raw,
    }
}

fn direct(ctx: &Ctx, endpoint: &str, pairs: &[(&str, &str)]) -> Answer {
    post(ctx, ctx.keycloak.port, endpoint, &[], pairs)
}

fn via_envoy(ctx: &Ctx, endpoint: &str, pairs: &[(&str, &str)]) -> Answer {
    post(ctx, ctx.envoy.port, endpoint, &[], pairs)
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn expect_tokens(answer: &Answer, azp: &str) -> String {
    assert_eq!(answer.status, 200, "{}", answer.raw);
    let access = answer.json["access_token"].as_str().expect("access_token");
    let refresh = answer.json["refresh_token"].as_str().expect("refresh_token");
    assert_eq!(claims(access)["azp"], azp);
    assert_eq!(claims(refresh)["azp"], azp);
    refresh.to_owned()
}

fn expect_error(answer: &Answer, status: u16, error: &str, description: &str) {
    assert_eq!(
        (answer.status, &answer.json),
        (status, &json!({"error": error, "error_description": description})),
        "{}",
        answer.raw
    );
}

/// spring-boot-admin-client's password-grant login of `user`, directly at
/// Keycloak, with `extra` parameters.
fn admin_login(ctx: &Ctx, user: &str, extra: &[(&str, &str)]) -> Answer {
    let password = format!("{user}-password");
    let mut pairs = vec![
        ("grant_type", "password"),
        ("client_id", ADMIN_CLIENT),
        ("client_secret", ADMIN_CLIENT_SECRET),
        ("username", user),
        ("password", &password),
    ];
    pairs.extend_from_slice(extra);
    direct(ctx, "token", &pairs)
}

/// A refresh token issued to spring-boot-admin-client by the password grant.
fn admin_refresh_token(ctx: &Ctx, user: &str) -> String {
    expect_tokens(&admin_login(ctx, user, &[]), ADMIN_CLIENT)
}

fn refresh_as(ctx: &Ctx, port: u16, caller: &str, refresh_token: &str) -> Answer {
    post(
        ctx,
        port,
        "token",
        &[],
        &[
            ("grant_type", "refresh_token"),
            ("client_id", caller),
            ("refresh_token", refresh_token),
        ],
    )
}

/// A master-realm admin's access token.
fn admin_bearer(keycloak_port: u16) -> String {
    let admin = http1::exchange(
        keycloak_port,
        &form_post(
            "/realms/master/protocol/openid-connect/token",
            &[],
            &form_body(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "admin"),
                ("password", "admin"),
            ]),
        ),
    );
    let admin: Value = serde_json::from_slice(&admin.body).unwrap();
    admin["access_token"].as_str().expect("admin token").to_owned()
}

fn admin_api(ctx: &Ctx, method: &str, path: &str, body: &Value) -> u16 {
    let bearer = admin_bearer(ctx.keycloak.port);
    let body = body.to_string();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {bearer}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    http1::exchange(ctx.keycloak.port, request.as_bytes()).status
}

// --- the scenarios ---

fn problem_exists_directly_at_keycloak(ctx: &Ctx) {
    let refresh_token = admin_refresh_token(ctx, "alice");
    let answer = refresh_as(ctx, ctx.keycloak.port, MOBILE_CLIENT, &refresh_token);
    expect_error(&answer, 400, "invalid_grant", MISMATCH);
}

fn refresh_through_envoy_rewrites_and_keycloak_accepts(ctx: &Ctx) {
    let before = ctx.envoy.counter("rewritten");
    let mut refresh_token = admin_refresh_token(ctx, "alice");
    for _round in 0..3 {
        let answer = refresh_as(ctx, ctx.envoy.port, MOBILE_CLIENT, &refresh_token);
        refresh_token = expect_tokens(&answer, ADMIN_CLIENT);
        assert_eq!(
            claims(answer.json["access_token"].as_str().unwrap())["preferred_username"],
            "alice"
        );
    }
    assert_eq!(ctx.envoy.counter("rewritten"), before + 3);
}

fn refresh_rounds_with_rotation_on(ctx: &Ctx) {
    struct RotationOff<'a>(&'a Ctx);
    impl Drop for RotationOff<'_> {
        fn drop(&mut self) {
            admin_api(
                self.0,
                "PUT",
                "/admin/realms/demo",
                &json!({"revokeRefreshToken": false}),
            );
        }
    }
    assert_eq!(
        admin_api(
            ctx,
            "PUT",
            "/admin/realms/demo",
            &json!({"revokeRefreshToken": true, "refreshTokenMaxReuse": 0})
        ),
        204
    );
    let _restore = RotationOff(ctx);
    let first = admin_refresh_token(ctx, "bob");
    let mut used = vec![first];
    for _round in 0..3 {
        // Keycloak's token times are in seconds: a new second makes older tokens stale.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let current = used.last().unwrap().clone();
        let answer = refresh_as(ctx, ctx.envoy.port, MOBILE_CLIENT, &current);
        let next = expect_tokens(&answer, ADMIN_CLIENT);
        assert_ne!(next, current, "rotation issues a new refresh token");
        used.push(next);
    }
    // A rotated-away token is refused by Keycloak itself, after the rewrite
    // (which also ends that client session: reuse detection).
    let stale = refresh_as(ctx, ctx.envoy.port, MOBILE_CLIENT, &used[1]);
    expect_error(&stale, 400, "invalid_grant", "Stale token");
}

fn impersonated_tokens_refresh_through_envoy(ctx: &Ctx) {
    // The article's "naked impersonation": token exchange V1 with requested_subject.
    let exchange = direct(
        ctx,
        "token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("client_id", ADMIN_CLIENT),
            ("client_secret", ADMIN_CLIENT_SECRET),
            ("requested_subject", "alice"),
        ],
    );
    let refresh_token = expect_tokens(&exchange, ADMIN_CLIENT);
    let direct_refresh = refresh_as(ctx, ctx.keycloak.port, MOBILE_CLIENT, &refresh_token);
    expect_error(&direct_refresh, 400, "invalid_grant", MISMATCH);
    let answer = refresh_as(ctx, ctx.envoy.port, MOBILE_CLIENT, &refresh_token);
    expect_tokens(&answer, ADMIN_CLIENT);
    assert_eq!(
        claims(answer.json["access_token"].as_str().unwrap())["preferred_username"],
        "alice"
    );
}

fn own_tokens_and_other_grants_pass_through(ctx: &Ctx) {
    let counters = ctx.envoy.counters();
    let mobile = via_envoy(
        ctx,
        "token",
        &[
            ("grant_type", "password"),
            ("client_id", MOBILE_CLIENT),
            ("username", "bob"),
            ("password", "bob-password"),
        ],
    );
    let refresh_token = expect_tokens(&mobile, MOBILE_CLIENT);
    let refreshed = refresh_as(ctx, ctx.envoy.port, MOBILE_CLIENT, &refresh_token);
    expect_tokens(&refreshed, MOBILE_CLIENT);
    let password = via_envoy(
        ctx,
        "token",
        &[
            ("grant_type", "password"),
            ("client_id", ADMIN_CLIENT),
            ("client_secret", ADMIN_CLIENT_SECRET),
            ("username", "alice"),
            ("password", "alice-password"),
        ],
    );
    expect_tokens(&password, ADMIN_CLIENT);
    let service = via_envoy(
        ctx,
        "token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ADMIN_CLIENT),
            ("client_secret", ADMIN_CLIENT_SECRET),
        ],
    );
    assert_eq!(service.status, 200, "{}", service.raw);
    assert_eq!(
        claims(service.json["access_token"].as_str().unwrap())["azp"],
        ADMIN_CLIENT
    );
    let wrong_secret = via_envoy(
        ctx,
        "token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ADMIN_CLIENT),
            ("client_secret", "wrong"),
        ],
    );
    expect_error(
        &wrong_secret,
        401,
        "unauthorized_client",
        "Invalid client or Invalid client credentials",
    );
    let after = ctx.envoy.counters();
    assert_eq!(after["passed.same_client"], counters["passed.same_client"] + 1);
    assert_eq!(
        after["passed.not_refresh_grant"],
        counters["passed.not_refresh_grant"] + 4
    );
    assert_eq!(after["rewritten"], counters["rewritten"]);
}

fn other_public_client_still_refused(ctx: &Ctx) {
    let refresh_token = admin_refresh_token(ctx, "alice");
    let answer = refresh_as(ctx, ctx.envoy.port, OTHER_PUBLIC_CLIENT, &refresh_token);
    expect_error(&answer, 400, "invalid_grant", MISMATCH);
}

fn forged_token_gets_keycloaks_refusal(ctx: &Ctx) {
    // The mobile app's own token, its payload changed to name the admin client:
    // the filter rewrites (it cannot check the signature), Keycloak refuses.
    let mobile = direct(
        ctx,
        "token",
        &[
            ("grant_type", "password"),
            ("client_id", MOBILE_CLIENT),
            ("username", "bob"),
            ("password", "bob-password"),
        ],
    );
    let genuine = expect_tokens(&mobile, MOBILE_CLIENT);
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut payload = claims(&genuine);
    payload["azp"] = json!(ADMIN_CLIENT);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    let before = ctx.envoy.counter("rewritten");
    let answer = refresh_as(ctx, ctx.envoy.port, MOBILE_CLIENT, &forged);
    expect_error(&answer, 400, "invalid_grant", "Invalid refresh token");
    assert_eq!(ctx.envoy.counter("rewritten"), before + 1);
}

/// The mobile app's own refresh token with its payload changed to name the
/// admin client: any signature Keycloak checks fails.
fn forged_admin_token(ctx: &Ctx) -> String {
    let mobile = direct(
        ctx,
        "token",
        &[
            ("grant_type", "password"),
            ("client_id", MOBILE_CLIENT),
            ("username", "bob"),
            ("password", "bob-password"),
        ],
    );
    let genuine = expect_tokens(&mobile, MOBILE_CLIENT);
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut payload = claims(&genuine);
    payload["azp"] = json!(ADMIN_CLIENT);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    )
}

/// A POST to the token endpoint with exactly these headers (no default
/// Content-Type).
fn raw_token_post(port: u16, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let path = format!("/realms/{REALM}/protocol/openid-connect/token{query}");
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nhost: keycloak.test\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let resp = http1::exchange(port, &[head.as_bytes(), body].concat());
    let raw = resp.body_str();
    Answer {
        status: resp.status,
        json: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    }
}

/// `name` percent-encoded in another charset: every byte escaped.
fn escaped_in(charset: &str, name: &str) -> String {
    let bytes: Vec<u8> = match charset {
        "UTF-16BE" => name.bytes().flat_map(|b| [0, b]).collect(),
        "UTF-16LE" => name.bytes().flat_map(|b| [b, 0]).collect(),
        "UTF-32" => name.bytes().flat_map(|b| [0, 0, 0, b]).collect(),
        // EBCDIC (IBM037) for the letters and the underscore of parameter names.
        "IBM037" => name
            .bytes()
            .map(|b| match b {
                b'a'..=b'i' => 0x81 + (b - b'a'),
                b'j'..=b'r' => 0x91 + (b - b'j'),
                b's'..=b'z' => 0xA2 + (b - b's'),
                b'_' => 0x6D,
                other => panic!("no IBM037 byte for {other}"),
            })
            .collect(),
        other => panic!("no encoder for {other}"),
    };
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// One ambiguous request: headers, and the body with `{forged}` for the
/// forged token; `smuggles` says whether Keycloak, given the target's
/// credentials, runs the smuggled grant (checked directly, so that the
/// case can fail).
struct AmbiguousCase {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    smuggles: bool,
}

fn ambiguous_cases(forged: &str) -> Vec<AmbiguousCase> {
    const FORM: &str = "application/x-www-form-urlencoded";
    let ct = |value: &str| vec![("content-type", value.to_owned())];
    let refresh = format!("grant_type=refresh_token&refresh_token={forged}&client_id={MOBILE_CLIENT}");
    // The filter reads `%67rant_type` as grant_type (a refresh); Keycloak,
    // decoding with the declared charset, reads the escaped name instead.
    let smuggled = |charset: &str, grant: &str| {
        format!(
            "%67rant_type=refresh_token&refresh_token={forged}&client_id={MOBILE_CLIENT}&{}={grant}",
            escaped_in(charset, "grant_type")
        )
        .into_bytes()
    };
    // Unescaped: a value with no escape is not decoded, whatever the charset.
    let exchange = "urn:ietf:params:oauth:grant-type:token-exchange&requested_subject=alice";
    let case = |name, headers, body, smuggles| AmbiguousCase {
        name,
        headers,
        body,
        smuggles,
    };
    vec![
        case(
            "charset=UTF-16BE, client_credentials",
            ct(&format!("{FORM}; charset=UTF-16BE")),
            smuggled("UTF-16BE", "client_credentials"),
            true,
        ),
        case(
            "charset=UTF-16BE, token exchange as alice",
            ct(&format!("{FORM}; charset=UTF-16BE")),
            smuggled("UTF-16BE", exchange),
            true,
        ),
        case(
            "charset=UTF-16LE",
            ct(&format!("{FORM}; charset=UTF-16LE")),
            smuggled("UTF-16LE", "client_credentials"),
            true,
        ),
        case(
            "charset=UTF-32",
            ct(&format!("{FORM}; charset=UTF-32")),
            smuggled("UTF-32", "client_credentials"),
            true,
        ),
        case(
            "charset=IBM037 (EBCDIC)",
            ct(&format!("{FORM}; charset=IBM037")),
            smuggled("IBM037", "client_credentials"),
            true,
        ),
        case(
            "quoted charset",
            ct(&format!("{FORM}; charset=\"UTF-16BE\"")),
            smuggled("UTF-16BE", "client_credentials"),
            true,
        ),
        case(
            "charset after another parameter",
            ct(&format!("{FORM}; foo=bar charset=UTF-16BE")),
            smuggled("UTF-16BE", "client_credentials"),
            true,
        ),
        case(
            "two charsets, the first counts",
            ct(&format!("{FORM}; charset=UTF-16BE; charset=utf-8")),
            smuggled("UTF-16BE", "client_credentials"),
            true,
        ),
        case(
            "two Content-Type headers, the first counts",
            vec![
                ("content-type", format!("{FORM}; charset=UTF-16BE")),
                ("content-type", FORM.to_owned()),
            ],
            smuggled("UTF-16BE", "client_credentials"),
            true,
        ),
        case(
            "unknown charset",
            ct(&format!("{FORM}; charset=x")),
            refresh.clone().into_bytes(),
            false,
        ),
        case(
            "upper-case media type",
            ct("APPLICATION/X-WWW-FORM-URLENCODED"),
            refresh.clone().into_bytes(),
            false,
        ),
        case(
            "escaped parameter name",
            ct(FORM),
            format!("grant%5Ftype=refresh_token&refresh_token={forged}&client_id={MOBILE_CLIENT}").into_bytes(),
            false,
        ),
        case(
            "byte-order mark",
            ct(&format!("{FORM}; charset=utf-8")),
            [b"\xef\xbb\xbf".as_slice(), refresh.as_bytes()].concat(),
            false,
        ),
        case(
            "empty segments",
            ct(FORM),
            format!("{refresh}&&scope=openid").into_bytes(),
            false,
        ),
        case(
            "semicolon in the token",
            ct(FORM),
            format!("{refresh};grant_type=client_credentials").into_bytes(),
            false,
        ),
        case(
            "raw non-ASCII value",
            ct(FORM),
            [refresh.as_bytes(), b"&scope=\xe9"].concat(),
            false,
        ),
        case(
            "Content-Encoding",
            vec![
                ("content-type", FORM.to_owned()),
                ("content-encoding", "gzip".to_owned()),
            ],
            refresh.clone().into_bytes(),
            false,
        ),
    ]
}

/// The charset trick and every other way of making Keycloak read a request
/// otherwise than the filter (SECURITY.md): never a token, always counted
/// `passed.ambiguous`, in both header modes.
fn ambiguous_requests_never_yield_a_token(ctx: &Ctx) {
    let forged = forged_admin_token(ctx);
    let cases = ambiguous_cases(&forged);
    // The attacks are real: rewritten as a filter that read them as a
    // refresh would (the caller's client_id swapped for the target's
    // credentials), Keycloak runs the smuggled grant and never looks at the
    // forged token.
    let caller = format!("&client_id={MOBILE_CLIENT}");
    let credentials = format!("&client_id={ADMIN_CLIENT}&client_secret={ADMIN_CLIENT_SECRET}");
    for case in cases.iter().filter(|c| c.smuggles) {
        let headers: Vec<(&str, &str)> = case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let body = String::from_utf8(case.body.clone()).unwrap().replacen(&caller, "", 1) + &credentials;
        let body = body.into_bytes();
        let answer = raw_token_post(ctx.keycloak.port, "", &headers, &body);
        assert_eq!(
            answer.status, 200,
            "{}: Keycloak did not run the smuggled grant: {}",
            case.name, answer.raw
        );
        assert!(answer.json["access_token"].is_string(), "{}", case.name);
    }
    for envoy in [&ctx.envoy, &ctx.envoy_hold] {
        let before = envoy.counters();
        for case in &cases {
            let headers: Vec<(&str, &str)> = case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let answer = raw_token_post(envoy.port, "", &headers, &case.body);
            assert!(
                answer.status >= 400 && answer.json.get("access_token").is_none(),
                "{}: {} {}",
                case.name,
                answer.status,
                answer.raw
            );
        }
        // HTTP/2: a second Content-Type sent after the plain one.
        let body = cases[0].body.clone();
        let path = format!("/realms/{REALM}/protocol/openid-connect/token");
        let resp = h2client::post(
            envoy.port,
            &path,
            &[("content-type", "application/x-www-form-urlencoded; charset=UTF-16BE")],
            &[&body],
            None,
        );
        assert!(resp.status >= 400, "HTTP/2 two Content-Types: {}", resp.status);
        let after = envoy.counters();
        assert_eq!(
            after["passed.ambiguous"],
            before["passed.ambiguous"] + cases.len() as u64 + 1,
            "every ambiguous request is counted"
        );
        assert_eq!(
            after["rewritten"], before["rewritten"],
            "nothing ambiguous was rewritten"
        );
        envoy.wait_log("outcome=passed:ambiguous (Content-Type has a parameter other than charset=utf-8)");
    }
}

/// Keycloak reads the grant from the body only: a query string is no way
/// around the forged token's check.
fn query_string_grant_is_not_read_by_keycloak(ctx: &Ctx) {
    let forged = forged_admin_token(ctx);
    let body = form_body(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &forged),
        ("client_id", MOBILE_CLIENT),
    ]);
    for envoy in [&ctx.envoy, &ctx.envoy_hold] {
        let before = envoy.counter("rewritten");
        let answer = raw_token_post(
            envoy.port,
            "?grant_type=client_credentials&client_id=spring-boot-admin-client",
            &[("content-type", "application/x-www-form-urlencoded")],
            &body,
        );
        expect_error(&answer, 400, "invalid_grant", "Invalid refresh token");
        assert_eq!(envoy.counter("rewritten"), before + 1);
    }
}

/// Real clients send the form type bare or with charset=utf-8 in any case,
/// quoted or not: these still bridge, in both header modes.
fn utf8_charset_variants_still_bridge(ctx: &Ctx) {
    for envoy in [&ctx.envoy, &ctx.envoy_hold] {
        for content_type in [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=utf-8",
            "application/x-www-form-urlencoded;charset=UTF-8",
            "application/x-www-form-urlencoded; charset=\"UTF-8\"",
        ] {
            let refresh_token = admin_refresh_token(ctx, "alice");
            let body = form_body(&[
                ("grant_type", "refresh_token"),
                ("client_id", MOBILE_CLIENT),
                ("refresh_token", &refresh_token),
            ]);
            let answer = raw_token_post(envoy.port, "", &[("content-type", content_type)], &body);
            expect_tokens(&answer, ADMIN_CLIENT);
        }
    }
}

fn revoke_through_envoy(ctx: &Ctx) {
    let refresh_token = admin_refresh_token(ctx, "alice");
    let direct_revoke = direct(
        ctx,
        "revoke",
        &[("token", &refresh_token), ("client_id", MOBILE_CLIENT)],
    );
    expect_error(&direct_revoke, 400, "invalid_request", "Unmatching clients");
    let answer = via_envoy(
        ctx,
        "revoke",
        &[
            ("token", &refresh_token),
            ("token_type_hint", "refresh_token"),
            ("client_id", MOBILE_CLIENT),
        ],
    );
    assert_eq!((answer.status, answer.raw.as_str()), (200, ""));
    let after = refresh_as(ctx, ctx.envoy.port, MOBILE_CLIENT, &refresh_token);
    assert_eq!(after.status, 400, "{}", after.raw);
    assert_eq!(after.json["error"], "invalid_grant");
}

fn logout_through_envoy(ctx: &Ctx) {
    let refresh_token = admin_refresh_token(ctx, "bob");
    let direct_logout = direct(
        ctx,
        "logout",
        &[("refresh_token", &refresh_token), ("client_id", MOBILE_CLIENT)],
    );
    expect_error(&direct_logout, 400, "invalid_grant", MISMATCH);
    let answer = via_envoy(
        ctx,
        "logout",
        &[("refresh_token", &refresh_token), ("client_id", MOBILE_CLIENT)],
    );
    assert_eq!((answer.status, answer.raw.as_str()), (204, ""));
    let after = refresh_as(ctx, ctx.envoy.port, MOBILE_CLIENT, &refresh_token);
    expect_error(&after, 400, "invalid_grant", "Session not active");
}

fn hold_mode_with_basic_caller_and_basic_target(ctx: &Ctx) {
    let port = ctx.envoy_hold.port;
    let rewritten_before = ctx.envoy_hold.counter("rewritten");
    // The mobile app authenticates with Basic (a public client: empty secret).
    let mobile_basic = basic(MOBILE_CLIENT, "");
    let refresh_token = admin_refresh_token(ctx, "alice");
    let answer = post(
        ctx,
        port,
        "token",
        &[("authorization", &mobile_basic)],
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token)],
    );
    expect_tokens(&answer, ADMIN_CLIENT);

    // A client that only accepts client_secret_basic.
    let issued = post(
        ctx,
        ctx.keycloak.port,
        "token",
        &[("authorization", &basic(BASIC_ONLY_CLIENT, BASIC_ONLY_SECRET))],
        &[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "bob-password"),
        ],
    );
    let refresh_token = expect_tokens(&issued, BASIC_ONLY_CLIENT);
    let posted = direct(
        ctx,
        "token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", BASIC_ONLY_CLIENT),
            ("client_secret", BASIC_ONLY_SECRET),
            ("refresh_token", &refresh_token),
        ],
    );
    if ctx.version.enforces_allowed_secret_method() {
        // Keycloak refuses this client's secret in the body ...
        expect_error(
            &posted,
            401,
            "unauthorized_client",
            "Invalid method used to get client secret. Client requires method 'client_secret_basic' to obtain client secret from the request",
        );
    } else {
        // ... an older one ignores the restriction and accepts it (with
        // rotation off, the refresh token stays usable) ...
        expect_tokens(&posted, BASIC_ONLY_CLIENT);
    }
    // ... the filter sends it as client_secret_basic, which every version accepts.
    let answer = refresh_as(ctx, port, MOBILE_CLIENT, &refresh_token);
    expect_tokens(&answer, BASIC_ONLY_CLIENT);
    assert_eq!(ctx.envoy_hold.counter("rewritten"), rewritten_before + 2);
}

fn http2_client_through_envoy(ctx: &Ctx) {
    let refresh_token = admin_openid_refresh_token(ctx, "alice");
    let body = form_body(&[
        ("grant_type", "refresh_token"),
        ("client_id", MOBILE_CLIENT),
        ("refresh_token", &refresh_token),
    ]);
    let (a, b) = body.split_at(body.len() / 3);
    let path = format!("/realms/{REALM}/protocol/openid-connect/token");
    for trailers in [None, Some(("x-request-end", "1"))] {
        let resp = h2client::post(ctx.envoy.port, &path, &[], &[a, b], trailers);
        let raw = String::from_utf8_lossy(&resp.body).into_owned();
        let json: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
        let answer = Answer {
            status: resp.status,
            json,
            raw,
        };
        expect_tokens(&answer, ADMIN_CLIENT);
        assert!(
            answer.json.get("id_token").is_none(),
            "the bridged response keeps no id_token"
        );
    }
}

/// A refresh token of the admin client from a login that asked for
/// `scope=openid`: its refreshes carry an ID token.
fn admin_openid_refresh_token(ctx: &Ctx, user: &str) -> String {
    let answer = admin_login(ctx, user, &[("scope", "openid")]);
    assert!(answer.json["id_token"].is_string(), "an openid login has an id_token");
    expect_tokens(&answer, ADMIN_CLIENT)
}

/// Runs a client library script (tests/clients) with its interpreter
/// (`node` from PATH, the virtualenv's Python) and reads its JSON line.
fn library(program: &[&str; 2], args: &[&str]) -> Value {
    let root = support::repo_root();
    let [interpreter, script] = program;
    let interpreter = if interpreter.contains('/') {
        root.join(interpreter)
    } else {
        interpreter.into()
    };
    let output = std::process::Command::new(interpreter)
        .arg(root.join(script))
        .args(args)
        .output()
        .expect("the client library runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "no JSON from {program:?}: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// openid-client 6.9.0 (npm, tests/clients/package.json).
const OPENID_CLIENT: &[&str; 2] = &["node", "tests/clients/openid_client.mjs"];
/// Authlib 1.9.10 (PyPI, scripts/setup.sh).
const AUTHLIB: &[&str; 2] = &[".venv/bin/python", "tests/clients/authlib_client.py"];

/// Discovery through Envoy (Keycloak's public URL), the public client's
/// refresh of the admin client's token through the library, again with the
/// new token, then revocation: in both header modes (the hold-mode Envoy
/// serves the token and revocation endpoints).
fn refresh_and_revoke_with(ctx: &Ctx, program: &[&str; 2]) {
    let issuer = format!("http://127.0.0.1:{}/realms/{REALM}", ctx.envoy.port);
    let hold_base = format!("http://127.0.0.1:{}", ctx.envoy_hold.port);
    for (envoy, base) in [(&ctx.envoy, None), (&ctx.envoy_hold, Some(hold_base.as_str()))] {
        let dropped_before = envoy.counter("id_token_dropped");
        let mut refresh_token = admin_openid_refresh_token(ctx, "alice");
        for round in 0..2 {
            let mut args = vec!["refresh", issuer.as_str(), MOBILE_CLIENT, refresh_token.as_str()];
            args.extend(base);
            let result = library(program, &args);
            assert_eq!(result["ok"], true, "{program:?} round {round}: {result}");
            assert_eq!(
                result["keys"],
                json!([
                    "access_token",
                    "expires_in",
                    "not-before-policy",
                    "refresh_expires_in",
                    "refresh_token",
                    "scope",
                    "session_state",
                    "token_type"
                ]),
                "{program:?}"
            );
            assert_eq!(claims(result["access_token"].as_str().unwrap())["azp"], ADMIN_CLIENT);
            refresh_token = result["refresh_token"].as_str().unwrap().to_owned();
            ctx.tokens.lock().unwrap().push(refresh_token.clone());
        }
        let mut args = vec!["revoke", issuer.as_str(), MOBILE_CLIENT, refresh_token.as_str()];
        args.extend(base);
        assert_eq!(library(program, &args)["ok"], true, "{program:?} revoke");
        let after = refresh_as(ctx, envoy.port, MOBILE_CLIENT, &refresh_token);
        assert_eq!(
            (after.status, &after.json["error"]),
            (400, &json!("invalid_grant")),
            "revoked"
        );
        assert_eq!(envoy.counter("id_token_dropped"), dropped_before + 2);
    }
}

fn openid_client_refreshes_and_revokes_through_the_bridge(ctx: &Ctx) {
    refresh_and_revoke_with(ctx, OPENID_CLIENT);
}

fn authlib_refreshes_and_revokes_through_the_bridge(ctx: &Ctx) {
    refresh_and_revoke_with(ctx, AUTHLIB);
}

/// With the ID token kept, openid-client refuses the bridged response: the
/// ID token's audience is the confidential client. This is why it goes.
fn openid_client_rejects_a_kept_id_token(ctx: &Ctx) {
    let issuer = format!("http://127.0.0.1:{}/realms/{REALM}", ctx.envoy.port);
    let keep_base = format!("http://127.0.0.1:{}", ctx.envoy_keep.port);
    let refresh_token = admin_openid_refresh_token(ctx, "bob");
    let result = library(
        OPENID_CLIENT,
        &["refresh", &issuer, MOBILE_CLIENT, &refresh_token, &keep_base],
    );
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["message"], "unexpected JWT claim value encountered", "{result}");
    assert_eq!(
        result["cause"], "unexpected JWT \"aud\" (audience) claim value",
        "{result}"
    );
    assert_eq!(ctx.envoy_keep.counter("rewritten"), 1);
}

/// 60 s (AZP_LOAD_SECONDS) of mixed load through Envoy; Keycloak is stopped
/// after 20 s and started again. Envoy must answer 503 quickly while it is
/// down, the filter must keep its state, traffic must recover by itself, no
/// status may be unexpected, and Envoy's memory must stay flat.
fn load_with_keycloak_stopped_midway(ctx: &Ctx) {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    use support::load::{self, Kind, Load, Phase};

    let seconds: u64 = std::env::var("AZP_LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let rewritten_before = ctx.envoy.counter("rewritten");
    let load = Arc::new(Load {
        envoy_port: ctx.envoy.port,
        realm_path: format!("/realms/{REALM}"),
        admin_client: ADMIN_CLIENT,
        admin_secret: ADMIN_CLIENT_SECRET,
        mobile_client: MOBILE_CLIENT,
    });
    let phase = Arc::new(Phase::default());
    let started = Instant::now();
    let mut rss = Vec::new();
    let mut downtime = Duration::ZERO;
    let tally = load::run(load, 2, phase.clone(), || {
        std::thread::sleep(Duration::from_secs(10));
        rss.push(ctx.envoy.rss_kib());
        std::thread::sleep(Duration::from_secs(10));
        phase.keycloak_down.store(true, Ordering::SeqCst);
        phase.epoch.fetch_add(1, Ordering::SeqCst);
        let down_at = Instant::now();
        ctx.keycloak.stop();
        std::thread::sleep(Duration::from_secs(3));
        ctx.keycloak.restart();
        downtime = down_at.elapsed();
        phase.epoch.fetch_add(1, Ordering::SeqCst);
        phase.keycloak_down.store(false, Ordering::SeqCst);
        let recovered = Instant::now();
        let end = (started + Duration::from_secs(seconds)).max(recovered + Duration::from_secs(10));
        std::thread::sleep(end.saturating_duration_since(Instant::now()));
        rss.push(ctx.envoy.rss_kib());
    });
    let rewritten = ctx.envoy.counter("rewritten") - rewritten_before;
    println!(
        "  load: {} requests in {:.0} s, Keycloak down {:.0} s, {rewritten} rewritten, slowest 503 while down {:?}",
        tally.total,
        started.elapsed().as_secs_f64(),
        downtime.as_secs_f64(),
        tally.slowest_while_down
    );
    println!("  load: by kind and status {:?}", tally.by_kind);
    println!("  load: Envoy RSS {} KiB after 10 s, {} KiB at the end", rss[0], rss[1]);
    assert!(
        tally.unexpected.is_empty(),
        "unexpected statuses: {:?}",
        tally.unexpected
    );
    assert!(
        tally.by_kind.contains_key(&(Kind::Rewrite, 503)),
        "the load met Keycloak's downtime"
    );
    assert!(
        tally.slowest_while_down < Duration::from_secs(2),
        "Envoy was slow while Keycloak was down"
    );
    assert!(rewritten >= 50, "only {rewritten} rewrites");
    assert!(rss[1] <= rss[0] + rss[0] / 5 + 4096, "Envoy memory grew: {rss:?}");
    // Recovered by itself: a new session refreshes through Envoy again.
    let refresh_token = admin_refresh_token(ctx, "bob");
    expect_tokens(
        &refresh_as(ctx, ctx.envoy.port, MOBILE_CLIENT, &refresh_token),
        ADMIN_CLIENT,
    );
}

fn logs_carry_no_secret_or_token(ctx: &Ctx) {
    let tokens = ctx.tokens.lock().unwrap().clone();
    assert!(tokens.len() > 20, "the scenarios saw tokens");
    let tenant_secrets: Vec<String> = ["tenant-a", "tenant-b", "tenant-c"]
        .iter()
        .map(|t| tenant_secret(t))
        .collect();
    let mut never: Vec<&str> = vec![ADMIN_CLIENT_SECRET, BASIC_ONLY_SECRET, SECRET_JWT_SECRET, "PRIVATE KEY"];
    never.extend(JWT_KEY_PEM.lines().filter(|l| l.len() > 20));
    never.extend(EDDSA_KEY_PEM.lines().filter(|l| l.len() > 20));
    never.extend(tenant_secrets.iter().map(String::as_str));
    never.extend(tokens.iter().map(String::as_str));
    for envoy in [&ctx.envoy, &ctx.envoy_hold, &ctx.envoy_keep] {
        envoy.assert_log_clean(&never);
        envoy.wait_log("outcome=rewritten");
    }
}

// --- signed-JWT targets and realms ---

/// A client assertion for a login the test makes itself (the filter mints
/// its own for the bridged requests).
fn test_assertion(ctx: &Ctx, client_id: &str) -> String {
    use azp_bridge::assertion::{mint, AssertionKey, Claims};
    static N: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    let (key, key_id) = match client_id {
        JWT_CLIENT => (
            AssertionKey::from_private_key_pem(JWT_KEY_PEM).unwrap(),
            Some(JWT_KEY_ID),
        ),
        EDDSA_CLIENT => (
            AssertionKey::from_private_key_pem(EDDSA_KEY_PEM).unwrap(),
            Some(EDDSA_KEY_ID),
        ),
        _ => (AssertionKey::Hs256(SECRET_JWT_SECRET.as_bytes().to_vec()), None),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut jti = [0u8; 16];
    jti[..8].copy_from_slice(&now.to_be_bytes());
    jti[8] = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let audience = format!("http://127.0.0.1:{}/realms/{REALM}", ctx.envoy.port);
    let claims = Claims {
        client_id,
        audience: &audience,
        now_seconds: now,
        jti,
    };
    mint(&key, key_id, &claims).unwrap()
}

fn signed_login(ctx: &Ctx, client_id: &str, user: &str) -> String {
    let password = format!("{user}-password");
    let assertion = test_assertion(ctx, client_id);
    let answer = direct(
        ctx,
        "token",
        &[
            ("grant_type", "password"),
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("username", user),
            ("password", &password),
        ],
    );
    expect_tokens(&answer, client_id)
}

/// private_key_jwt (ES256 and EdDSA) and client_secret_jwt (HS256) targets: refused
/// directly, bridged through Envoy 20 times in a row (each assertion needs a
/// fresh jti: Keycloak refuses a replay), then revoke and logout, in both
/// header modes.
fn signed_jwt_targets_refresh_revoke_and_log_out_through_the_bridge(ctx: &Ctx) {
    for client_id in [JWT_CLIENT, EDDSA_CLIENT, SECRET_JWT_CLIENT] {
        let refresh_token = signed_login(ctx, client_id, "alice");
        let direct_refresh = refresh_as(ctx, ctx.keycloak.port, MOBILE_CLIENT, &refresh_token);
        expect_error(&direct_refresh, 400, "invalid_grant", MISMATCH);
        for envoy in [&ctx.envoy, &ctx.envoy_hold] {
            let before = envoy.counter("rewritten");
            let mut refresh_token = signed_login(ctx, client_id, "alice");
            for _ in 0..20 {
                let answer = refresh_as(ctx, envoy.port, MOBILE_CLIENT, &refresh_token);
                refresh_token = expect_tokens(&answer, client_id);
            }
            let revoke = post(
                ctx,
                envoy.port,
                "revoke",
                &[],
                &[("token", &refresh_token), ("client_id", MOBILE_CLIENT)],
            );
            assert_eq!((revoke.status, revoke.raw.as_str()), (200, ""), "{client_id}");
            let after = refresh_as(ctx, envoy.port, MOBILE_CLIENT, &refresh_token);
            assert_eq!(after.status, 400, "revoked: {}", after.raw);
            let session = signed_login(ctx, client_id, "bob");
            let logout = post(
                ctx,
                envoy.port,
                "logout",
                &[],
                &[("refresh_token", &session), ("client_id", MOBILE_CLIENT)],
            );
            assert_eq!((logout.status, logout.raw.as_str()), (204, ""), "{client_id}");
            // 20 refreshes, the revoke, the refresh of the revoked token, the logout.
            assert_eq!(envoy.counter("rewritten"), before + 23, "{client_id}");
        }
    }
}

/// portal-backend in tenant-a and tenant-b, each with its own secret, and
/// in tenant-c, which no entry names: each configured realm is bridged with
/// its own secret; tenant-c passes unchanged and Keycloak refuses it.
fn one_client_id_in_two_realms_with_two_secrets(ctx: &Ctx) {
    let mismatch_before = ctx.envoy.counter("passed.realm_mismatch");
    for tenant in ["tenant-a", "tenant-b", "tenant-c"] {
        let token_path = format!("/realms/{tenant}/protocol/openid-connect/token");
        let exchange = |port: u16, pairs: &[(&str, &str)]| {
            let resp = http1::exchange(port, &form_post(&token_path, &[], &form_body(pairs)));
            let raw = resp.body_str();
            let json: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
            if let Some(t) = json["refresh_token"].as_str() {
                ctx.tokens.lock().unwrap().push(t.to_owned());
            }
            Answer {
                status: resp.status,
                json,
                raw,
            }
        };
        let secret = tenant_secret(tenant);
        let login = exchange(
            ctx.keycloak.port,
            &[
                ("grant_type", "password"),
                ("client_id", TENANT_CLIENT),
                ("client_secret", &secret),
                ("username", "alice"),
                ("password", "alice-password"),
            ],
        );
        let refresh_token = expect_tokens(&login, TENANT_CLIENT);
        let refresh = [
            ("grant_type", "refresh_token"),
            ("client_id", TENANT_PUBLIC_CLIENT),
            ("refresh_token", refresh_token.as_str()),
        ];
        let answer = exchange(ctx.envoy.port, &refresh);
        if tenant == "tenant-c" {
            expect_error(&answer, 400, "invalid_grant", MISMATCH);
        } else {
            expect_tokens(&answer, TENANT_CLIENT);
        }
    }
    assert_eq!(ctx.envoy.counter("passed.realm_mismatch"), mismatch_before + 1);
}
