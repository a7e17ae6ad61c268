//! The configuration's parsing and refusals. Every refusal names the field
//! and never repeats a value (a value in the wrong place may be a secret).

use super::*;
use serde_json::{json, Value};

const SECRET: &str = "s3cr3t-value";

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse_str(json: &str) -> Result<Config, ConfigError> {
    parse(json.as_bytes(), &|name| {
        (name == "ADMIN_SECRET").then(|| SECRET.to_owned())
    })
}

fn refused(json: &str) -> ConfigError {
    let err = parse_str(json).unwrap_err();
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert!(!err.to_string().contains("inline-secret"), "{err}");
    err
}

const MINIMAL: &str = r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"admin","client_secret":"inline-secret","allowed_callers":["mobile"]}]}"#;

/// A test configuration, built from a valid one by changing what a test is
/// about: Keycloak's cluster and one client `a` ([`client`]). Keys come out
/// in alphabetical order; where the order of the input matters (which of
/// two errors serde meets first), the tests write the JSON out.
#[derive(Clone)]
struct Builder(Value);

fn config() -> Builder {
    Builder(json!({"upstream_clusters": ["keycloak"], "clients": [client("a")]}))
}

/// A client with an inline secret (which no refusal may repeat), allowed for `m`.
fn client(id: &str) -> Value {
    json!({"client_id": id, "client_secret": "inline-secret", "allowed_callers": ["m"]})
}

impl Builder {
    /// Sets a root field.
    fn with(mut self, key: &str, value: Value) -> Self {
        self.0[key] = value;
        self
    }

    /// Sets a field of the first client (`Value::Null`: removes it).
    fn client_with(mut self, key: &str, value: Value) -> Self {
        if let Some(client) = self.0["clients"][0].as_object_mut() {
            if value.is_null() {
                client.remove(key);
            } else {
                client.insert(key.to_owned(), value);
            }
        }
        self
    }

    fn clients(self, clients: Vec<Value>) -> Self {
        self.with("clients", Value::Array(clients))
    }

    fn text(&self) -> String {
        self.0.to_string()
    }

    fn parse(&self) -> Config {
        parse_str(&self.text()).unwrap()
    }

    fn refused(&self) -> ConfigError {
        refused(&self.text())
    }
}

#[test]
fn minimal_configuration_gets_defaults() {
    let config = parse_str(MINIMAL).unwrap();
    assert!(!config.hold_headers);
    assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    let client = config.client("admin", "demo").unwrap();
    assert_eq!(client.secret.expose(), "inline-secret");
    assert_eq!(client.auth_method, AuthMethod::ClientSecretPost);
    assert_eq!(client.allowed_callers, vec!["mobile"]);
    assert_eq!(client.realms, None);
    assert_eq!(client.id_token, IdToken::Drop);
    assert_eq!(config.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES);
    assert!(config.client("mobile", "demo").is_none());
}

#[test]
fn full_configuration() {
    let config = config()
        .clients(vec![
            json!({"client_id": "a", "client_secret_env": "ADMIN_SECRET", "auth_method": "client_secret_basic",
                   "allowed_callers": ["m", "n"], "realms": ["demo"]}),
            json!({"client_id": "b", "client_secret": "x", "auth_method": "client_secret_post",
                   "allowed_callers": ["m"], "id_token": "keep"}),
        ])
        .with("hold_headers", json!(true))
        .with("max_body_bytes", json!(1024))
        .with("max_response_bytes", json!(4096))
        .parse();
    assert!(config.hold_headers);
    assert_eq!(config.max_body_bytes, 1024);
    assert_eq!(config.max_response_bytes, 4096);
    assert_eq!(config.client("b", "demo").unwrap().id_token, IdToken::Keep);
    let a = config.client("a", "demo").unwrap();
    assert_eq!(a.secret.expose(), SECRET);
    assert_eq!(a.auth_method, AuthMethod::ClientSecretBasic);
    assert_eq!(a.realms.as_deref(), Some(&["demo".to_owned()][..]));
}

#[test]
fn where_keycloak_is_must_be_said() {
    let err = refused(r#"{"clients":[{"client_id":"a","client_secret":"inline-secret","allowed_callers":["m"]}]}"#);
    assert_eq!(
        err.to_string(),
        "invalid configuration: `upstream_clusters` is missing: set it (or `authorities`) to where Keycloak is, so that a secret only ever goes there"
    );
    for (json, field, problem) in [
        (r#""upstream_clusters":[]"#, "upstream_clusters", "must not be empty"),
        (
            r#""upstream_clusters":"keycloak""#,
            "upstream_clusters",
            "must be a list of strings",
        ),
        (
            r#""upstream_clusters":[""]"#,
            "upstream_clusters[0]",
            "must not be empty",
        ),
        (r#""authorities":["a","kc.example.com/x"]"#, "authorities[1]", AUTHORITY),
        (r#""authorities":["kc.example.com:x"]"#, "authorities[0]", AUTHORITY),
        (r#""authorities":["kc.example.com:"]"#, "authorities[0]", AUTHORITY),
        (
            r#""authorities":["kc.example.com:123456"]"#,
            "authorities[0]",
            AUTHORITY,
        ),
        (r#""authorities":[":8443"]"#, "authorities[0]", AUTHORITY),
        (r#""authorities":["user@kc.example.com"]"#, "authorities[0]", AUTHORITY),
        (r#""authorities":["kc example.com"]"#, "authorities[0]", AUTHORITY),
        (r#""authorities":["[::1"]"#, "authorities[0]", AUTHORITY),
        (r#""authorities":["[::1]x"]"#, "authorities[0]", AUTHORITY),
    ] {
        let err = refused(&format!(
            r#"{{{json},"clients":[{{"client_id":"a","client_secret":"inline-secret","allowed_callers":["m"]}}]}}"#
        ));
        assert_eq!((err.field.as_str(), err.problem.as_str()), (field, problem), "{json}");
    }
    let config = parse_str(
        r#"{"authorities":["KeyCloak.Example.com","kc.example.com:8443","[::1]:8080","[::1]"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"]}]}"#,
    )
    .unwrap();
    assert_eq!(
        config.upstream,
        Upstream {
            clusters: None,
            authorities: Some(
                ["keycloak.example.com", "kc.example.com:8443", "[::1]:8080", "[::1]"]
                    .map(str::to_owned)
                    .to_vec()
            )
        }
    );
}

const AUTHORITY: &str = "must be an authority as requests name Keycloak, `host` or `host:port` (matched exactly, port included: list every spelling Envoy routes to Keycloak)";

#[test]
fn secret_never_shows_in_debug_output() {
    let config = parse_str(MINIMAL).unwrap();
    assert!(!format!("{config:?}").contains("inline-secret"));
}

#[test]
fn refusals_name_the_field() {
    // The shape of the whole document: written out.
    for (json, field, problem) in [
        ("{", "(root)", "is not valid JSON"),
        (r#"{"clients":"inline-secret"}"#, "clients", "must be a list"),
        ("[]", "(root)", "must be an object"),
        ("{}", "clients", "is missing"),
        (
            r#"{"upstream_clusters":["keycloak"],"extra":1,"clients":[{}]}"#,
            "extra",
            "is not a known field",
        ),
    ] {
        let err = refused(json);
        assert_eq!(err.field, field, "{json}");
        assert!(err.problem.contains(problem), "{json}: {}", err.problem);
    }
    // One thing wrong in a valid configuration.
    let two_fallbacks = config().clients(vec![client("a"), client("a")]);
    let cases = [
        (config().clients(vec![]), "clients", "must not be empty"),
        (
            config().client_with("colour", json!(1)),
            "clients[0].colour",
            "is not a known field",
        ),
        (
            config().client_with("client_id", Value::Null),
            "clients[0].client_id",
            "is missing",
        ),
        (
            config().client_with("client_id", json!("")),
            "clients[0].client_id",
            "must not be empty",
        ),
        (
            config().client_with("client_id", json!(7)),
            "clients[0].client_id",
            "must be a string",
        ),
        (
            config().client_with("client_secret", Value::Null),
            "clients[0].client_secret",
            "or client_secret_env must be set",
        ),
        (
            config().client_with("client_secret_env", json!("ADMIN_SECRET")),
            "clients[0].client_secret",
            "both set",
        ),
        (
            config().client_with("client_secret", json!("")),
            "clients[0].client_secret",
            "must not be empty",
        ),
        (
            config().client_with("client_secret", json!(["inline-secret"])),
            "clients[0].client_secret",
            "must be a string",
        ),
        (
            config()
                .client_with("client_secret", Value::Null)
                .client_with("client_secret_env", json!("NOT_SET")),
            "clients[0].client_secret_env",
            "NOT_SET, which is not set",
        ),
        (
            config().client_with("allowed_callers", Value::Null),
            "clients[0].allowed_callers",
            "is missing",
        ),
        (
            config().client_with("allowed_callers", json!([])),
            "clients[0].allowed_callers",
            "must not be empty",
        ),
        (
            config().client_with("allowed_callers", json!("m")),
            "clients[0].allowed_callers",
            "must be a list",
        ),
        (
            config().client_with("allowed_callers", json!(["m", ""])),
            "clients[0].allowed_callers[1]",
            "must not be empty",
        ),
        (
            config().client_with("realms", json!([])),
            "clients[0].realms",
            "must not be empty",
        ),
        (
            config().client_with("realms", json!([1])),
            "clients[0].realms[0]",
            "must be a string",
        ),
        (
            config().client_with("auth_method", json!("rs256_jwt")),
            "clients[0].auth_method",
            "must be",
        ),
        (
            config().client_with("auth_method", json!("client_secret_basic")),
            "clients[0].auth_method",
            "needs \"hold_headers\": true",
        ),
        (two_fallbacks, "clients[1].realms", "no realms either"),
        (
            config().with("hold_headers", json!("yes")),
            "hold_headers",
            "true or false",
        ),
        (
            config().with("max_body_bytes", json!(0)),
            "max_body_bytes",
            "whole number",
        ),
        (
            config().with("max_body_bytes", json!(-1)),
            "max_body_bytes",
            "whole number",
        ),
        (
            config().with("max_body_bytes", json!(99_999_999_999u64)),
            "max_body_bytes",
            "whole number",
        ),
    ];
    for (config, field, problem) in cases {
        let err = config.refused();
        let json = config.text();
        assert_eq!(err.field, field, "{json}");
        assert!(err.problem.contains(problem), "{json}: {}", err.problem);
    }
}

#[test]
fn null_is_an_absent_optional_field_and_escaped_names_are_names() {
    let config = parse_str(
        r#"{"upstream_clusters":["k"],"authorities":null,"issuer":null,"max_body_bytes":null,"clients":[{"client\u005fid":"a","client_secret":"x","allowed_callers":["m"],"realms":null,"key_id":null}]}"#,
    )
    .unwrap();
    assert_eq!(config.clients[0].client_id, "a");
    assert_eq!(config.clients[0].realms, None);
    assert_eq!(config.upstream.authorities, None);
    assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
}

#[test]
fn serde_errors_say_what_a_field_must_be_without_its_value() {
    let client = r#"{"client_id":"a","client_secret":"x","allowed_callers":["m"]}"#;
    let cases = [
        (format!(r#"{{"upstream_clusters":["k"],"clients":[{client}],"hold_headers":true,"hold_headers":false}}"#), "hold_headers", "is given twice".to_owned()),
        (format!(r#"{{"upstream_clusters":["k"],"clients":[{client}],"max_body_bytes":1.5}}"#), "max_body_bytes", format!("must be a whole number from 1 to {MAX_MAX_BODY_BYTES}, e.g. 65536")),
        (format!(r#"{{"upstream_clusters":["k"],"clients":[{client}],"max_body_bytes":"65536"}}"#), "max_body_bytes", format!("must be a whole number from 1 to {MAX_MAX_BODY_BYTES}, e.g. 65536")),
        (format!(r#"{{"upstream_clusters":[7],"clients":[{client}]}}"#), "upstream_clusters[0]", "must be a string".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":["inline-secret"]}"#.to_owned(), "clients[0]", "must be an object".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_secret":"inline-secret","allowed_callers":["m"],"auth_method":"inline-secret"}]}"#.to_owned(), "clients[0].auth_method", "must be \"client_secret_post\", \"client_secret_basic\", \"client_secret_jwt\" or \"private_key_jwt\"".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_secret":"inline-secret","allowed_callers":["m"],"inline-secret":1}]}"#.to_owned(), "clients[0].inline-secret", "is not a known field (known: client_id, client_secret, client_secret_env, private_key, private_key_env, key_id, auth_method, allowed_callers, realms, id_token, issuer)".to_owned()),
        (r#"{"inline-secret":1}"#.to_owned(), "inline-secret", "is not a known field (known: clients, upstream_clusters, authorities, issuer, hold_headers, max_body_bytes, max_response_bytes)".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"],"id_token":"inline-secret"}]}"#.to_owned(), "clients[0].id_token", "must be \"drop\" or \"keep\"".to_owned()),
        (format!(r#"{{"upstream_clusters":["k"],"clients":[{client}],"max_response_bytes":0}}"#), "max_response_bytes", format!("must be a whole number from 1 to {MAX_MAX_BODY_BYTES}, e.g. 262144")),
        (r#"{"clients":[{"client_id":"a","client_secret":"inline-secret","allowed_callers":["m"]}]} inline-secret"#.to_owned(), "(root)", "is not valid JSON (line 1, column 89)".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_id":"b","client_secret":"x","allowed_callers":["m"]}]}"#.to_owned(), "clients[0].client_id", "is given twice".to_owned()),
        (format!(r#"{{"upstream_clusters":["k"],"clients":[{client}],"hold_headers":null}}"#), "hold_headers", "must be true or false".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":null}]}"#.to_owned(), "clients[0].allowed_callers", "must be a list of strings".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m",["inline-secret"]]}]}"#.to_owned(), "clients[0].allowed_callers[1]", "must be a string".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"]},{"client_id":"b","client_secret":"x","allowed_callers":["m"],"realms":{"inline-secret":1}}]}"#.to_owned(), "clients[1].realms", "must be a list of strings".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"],"auth_method":null}]}"#.to_owned(), "clients[0].auth_method", "must be \"client_secret_post\", \"client_secret_basic\", \"client_secret_jwt\" or \"private_key_jwt\"".to_owned()),
        (r#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"],"id_token":null}]}"#.to_owned(), "clients[0].id_token", "must be \"drop\" or \"keep\"".to_owned()),
    ];
    for (json, field, problem) in cases {
        let err = parse_str(&json).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.problem.as_str()),
            (field, problem.as_str()),
            "{json}"
        );
    }
}

#[test]
fn whole_valued_numbers_are_accepted_for_max_body_bytes() {
    let client = r#"{"client_id":"a","client_secret":"x","allowed_callers":["m"]}"#;
    for (written, bytes) in [
        ("65536", 65536),
        ("65536.0", 65536),
        ("6.5536e4", 65536),
        ("1", 1),
        ("16777216.0", 16_777_216),
    ] {
        let config = parse_str(&format!(
            r#"{{"upstream_clusters":["k"],"clients":[{client}],"max_body_bytes":{written}}}"#
        ))
        .unwrap();
        assert_eq!(config.max_body_bytes, bytes, "{written}");
    }
    for written in ["0.0", "1.5", "-1.0", "16777217.0", "1e300", "-0.5"] {
        let err = parse_str(&format!(
            r#"{{"upstream_clusters":["k"],"clients":[{client}],"max_body_bytes":{written}}}"#
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: `max_body_bytes` must be a whole number from 1 to 16777216, e.g. 65536",
            "{written}"
        );
    }
}

#[test]
fn an_unset_variable_names_both_causes() {
    let err = refused(
        r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret_env":"NOT_SET","allowed_callers":["m"]}]}"#,
    );
    assert_eq!(
        err.to_string(),
        "invalid configuration: `clients[0].client_secret_env` names environment variable NOT_SET, which is not set in the VM: \
         set it in Envoy's environment and list it in vm_config.environment_variables.host_env_keys \
         (Istio: vmConfig.env with valueFrom: HOST; Envoy Gateway: env.hostKeys)"
    );
}

#[test]
fn a_value_where_a_variable_name_belongs_is_never_repeated() {
    // What a template makes of "client_secret_env": "${ADMIN_CLIENT_SECRET}".
    for value in [
        "topsecret-VALUE-123",
        "s3cr3t value",
        "9LEADING_DIGIT",
        &"A".repeat(65),
        "a=b",
    ] {
        let json = format!(
            r#"{{"upstream_clusters":["keycloak"],"clients":[{{"client_id":"a","client_secret_env":"{value}","allowed_callers":["m"]}}]}}"#
        );
        let err = parse_str(&json).unwrap_err();
        assert!(!err.to_string().contains(value), "{err}");
        assert_eq!(
            err.to_string(),
            "invalid configuration: `clients[0].client_secret_env` names an environment variable whose name is not shown \
             (it is not shaped like a variable name, [A-Za-z_][A-Za-z0-9_]*, and may be a secret: give the variable's name, \
             not its value), which is not set in the VM: set it in Envoy's environment and list it in \
             vm_config.environment_variables.host_env_keys (Istio: vmConfig.env with valueFrom: HOST; Envoy Gateway: env.hostKeys)"
        );
        let empty = parse(json.as_bytes(), &|_| Some(String::new())).unwrap_err();
        assert!(!empty.to_string().contains(value), "{empty}");
    }
    // A variable name is named; one that is set is used, whatever its shape.
    assert!(is_variable_name("ADMIN_CLIENT_SECRET") && is_variable_name("_x9") && is_variable_name(&"A".repeat(64)));
    let config = parse(
        br#"{"upstream_clusters":["k"],"clients":[{"client_id":"a","client_secret_env":"odd-name","allowed_callers":["m"]}]}"#,
        &|name| (name == "odd-name").then(|| "v".to_owned()),
    )
    .unwrap();
    assert_eq!(config.clients[0].secret.expose(), "v");
}

#[test]
fn a_body_limit_above_envoys_buffer_is_warned_about() {
    let with = |bytes: usize| {
        parse_str(&format!(
            r#"{{"upstream_clusters":["k"],"clients":[{{"client_id":"a","client_secret":"x","allowed_callers":["m"]}}],"max_body_bytes":{bytes}}}"#
        ))
        .unwrap()
    };
    assert_eq!(with(ENVOY_DEFAULT_BUFFER_LIMIT).buffer_limit_warning(), None);
    assert_eq!(parse_str(MINIMAL).unwrap().buffer_limit_warning(), None);
    assert_eq!(
        with(2 * 1024 * 1024).buffer_limit_warning().unwrap(),
        "max_body_bytes=2097152 is above Envoy's default buffer limit (1048576 bytes): Envoy answers a larger body \
         with its own 413 before the filter sees it, unless the listener's per_connection_buffer_limit_bytes \
         (or the route's per_request_buffer_limit_bytes) is at least max_body_bytes"
    );
}

const TEST_KEY: &str = include_str!("../../tests/fixtures/es256-test-key.pem");
const ED25519_KEY: &str = include_str!("../../tests/fixtures/ed25519-test-key.pem");

#[test]
fn one_client_id_per_realm_and_one_fallback() {
    let portal = |secret: &str, realms: Option<Value>| {
        let mut entry = json!({"client_id": "portal", "client_secret": secret, "allowed_callers": ["web"]});
        if let Some(realms) = realms {
            entry["realms"] = realms;
        }
        entry
    };
    let entries = config()
        .clients(vec![
            portal("a-secret", Some(json!(["tenant-a"]))),
            portal("b-secret", Some(json!(["tenant-b", "tenant-x"]))),
            portal("any-secret", None),
        ])
        .parse();
    let secret = |realm| entries.client("portal", realm).unwrap().secret.expose().to_owned();
    assert_eq!(secret("tenant-a"), "a-secret");
    assert_eq!(secret("tenant-b"), "b-secret");
    assert_eq!(secret("tenant-x"), "b-secret");
    assert_eq!(secret("tenant-z"), "any-secret");
    assert!(entries.knows("portal") && !entries.knows("web"));
    assert!(entries.client("web", "tenant-a").is_none());
    let no_fallback = config().clients(vec![portal("a", Some(json!(["tenant-a"])))]).parse();
    assert!(no_fallback.client("portal", "tenant-b").is_none());
}

#[test]
fn overlapping_entries_are_refused_naming_both() {
    let entry = |realms: &str| {
        format!(r#"{{"client_id":"portal","client_secret":"inline-secret","allowed_callers":["web"]{realms}}}"#)
    };
    for (second, fourth, problem) in [
        (entry(""), entry(""), "is missing, and clients[1] of the same client_id has no realms either: one entry per client_id may go without realms (the fallback)"),
        (entry(r#","realms":["a","b"]"#), entry(r#","realms":["c","b"]"#), "shares a realm with clients[1].realms of the same client_id: each realm takes one entry"),
    ] {
        let other = r#"{"client_id":"other","client_secret":"x","allowed_callers":["web"]}"#;
        let json = format!(r#"{{"upstream_clusters":["k"],"clients":[{other},{second},{other2},{other3},{fourth}]}}"#,
            other2 = other.replace("other", "other2"), other3 = other.replace("other", "other3"));
        let err = refused(&json);
        assert_eq!((err.field.as_str(), err.problem.as_str()), ("clients[4].realms", problem));
    }
}

#[test]
fn signed_jwt_methods_read_their_keys_once() {
    let pem = TEST_KEY.replace('\n', "\\n");
    let config = parse(
        format!(
            r#"{{"upstream_clusters":["k"],"issuer":"https://kc.example.com","clients":[
                {{"client_id":"hs","client_secret_env":"ADMIN_SECRET_32","auth_method":"client_secret_jwt","key_id":"k1","allowed_callers":["m"]}},
                {{"client_id":"es","private_key":"{pem}","auth_method":"private_key_jwt","allowed_callers":["m"]}},
                {{"client_id":"es-env","private_key_env":"PEM","auth_method":"private_key_jwt","allowed_callers":["m"]}},
                {{"client_id":"ed","private_key_env":"ED25519_PEM","auth_method":"private_key_jwt","allowed_callers":["m"]}}
            ]}}"#
        )
        .as_bytes(),
        &|name| match name {
            "ADMIN_SECRET_32" => Some("0123456789abcdef0123456789abcdef".to_owned()),
            "PEM" => Some(TEST_KEY.to_owned()),
            "ED25519_PEM" => Some(ED25519_KEY.to_owned()),
            _ => None,
        },
    )
    .unwrap();
    let hs = config.client("hs", "r").unwrap();
    assert_eq!(
        hs.assertion_key,
        Some(AssertionKey::Hs256(b"0123456789abcdef0123456789abcdef".to_vec()))
    );
    assert_eq!(hs.key_id.as_deref(), Some("k1"));
    let es = config.client("es", "r").unwrap();
    assert!(matches!(es.assertion_key, Some(AssertionKey::Es256(_))));
    assert_eq!(es.secret.expose(), "");
    assert_eq!(config.client("es-env", "r").unwrap().assertion_key, es.assertion_key);
    // The key's type picks the algorithm: no field names it.
    let ed = config.client("ed", "r").unwrap();
    assert!(matches!(ed.assertion_key, Some(AssertionKey::EdDsa(_))));
    assert!(!format!("{config:?}").contains("PRIVATE KEY"));
}

/// Issue 23, finding 4: the assertion's audience is configured, never
/// taken from the token.
#[test]
fn signed_jwt_targets_need_an_issuer_and_entries_may_name_their_own() {
    let hs = |issuer: &str| {
        format!(
            r#"{{"client_id":"hs","client_secret":"0123456789abcdef0123456789abcdef","auth_method":"client_secret_jwt","allowed_callers":["m"]{issuer}}}"#
        )
    };
    let plain = r#"{"client_id":"plain","client_secret":"inline-secret","allowed_callers":["m"]}"#;
    let err = refused(&format!(
        r#"{{"upstream_clusters":["k"],"clients":[{plain},{}]}}"#,
        hs("")
    ));
    assert_eq!(
        err.to_string(),
        "invalid configuration: `clients[1].issuer` is missing: a signed-JWT target (client_secret_jwt, private_key_jwt) \
         needs Keycloak's base URL as its tokens name it (`issuer` here or at the root, e.g. \"https://keycloak.example.com\"): \
         the assertion's audience is taken from it, never from the token"
    );
    let config = parse_str(&format!(
        r#"{{"upstream_clusters":["k"],"issuer":"https://kc.example.com","clients":[{plain},{}]}}"#,
        hs(r#","issuer":"http://127.0.0.1:8080/auth""#)
    ))
    .unwrap();
    assert_eq!(config.clients[0].issuer.as_deref(), Some("https://kc.example.com"));
    assert_eq!(config.clients[1].issuer.as_deref(), Some("http://127.0.0.1:8080/auth"));
    // Without one, a plain entry reads the issuer from the token as before.
    let config = parse_str(&format!(r#"{{"upstream_clusters":["k"],"clients":[{plain}]}}"#)).unwrap();
    assert_eq!(config.clients[0].issuer, None);
    for (issuer, field) in [
        (r#","issuer":"kc.example.com""#, "clients[0].issuer"),
        (r#","issuer":"https://kc.example.com/""#, "clients[0].issuer"),
        (r#","issuer":"https://kc.example.com/realms/demo""#, "clients[0].issuer"),
        (r#","issuer":"https://""#, "clients[0].issuer"),
        (r#","issuer":"https://kc.example.com/a b""#, "clients[0].issuer"),
    ] {
        let err = refused(&format!(r#"{{"upstream_clusters":["k"],"clients":[{}]}}"#, hs(issuer)));
        assert_eq!(
            (err.field.as_str(), err.problem.as_str()),
            (
                field,
                "must be Keycloak's base URL as its tokens name it, e.g. \"https://keycloak.example.com\" \
                 (tokens' `iss` without `/realms/<realm>`, no trailing `/`)"
            ),
            "{issuer}"
        );
    }
    let err = refused(&format!(
        r#"{{"upstream_clusters":["k"],"issuer":"x","clients":[{plain}]}}"#
    ));
    assert_eq!(err.field, "issuer");
}

#[test]
fn signed_jwt_refusals_name_the_field_and_no_value() {
    let client = |fields: Value| {
        let mut client = json!({"client_id": "c", "allowed_callers": ["m"]});
        if let (Some(client), Value::Object(fields)) = (client.as_object_mut(), fields) {
            client.extend(fields);
        }
        config().with("upstream_clusters", json!(["k"])).clients(vec![client])
    };
    const HS256: &str = "must be at least 32 bytes for client_secret_jwt (an HS256 key)";
    const PEM: &str = "is not a PKCS#8 PEM of a P-256 or Ed25519 private key (-----BEGIN PRIVATE KEY-----)";
    for (fields, field, problem) in [
        (
            json!({"client_secret": "inline-secret", "auth_method": "client_secret_jwt"}),
            "clients[0].client_secret",
            HS256,
        ),
        (
            json!({"client_secret_env": "ADMIN_SECRET", "auth_method": "client_secret_jwt"}),
            "clients[0].client_secret_env",
            HS256,
        ),
        (
            json!({"private_key": "inline-secret", "auth_method": "private_key_jwt"}),
            "clients[0].private_key",
            PEM,
        ),
        (
            json!({"private_key_env": "ADMIN_SECRET", "auth_method": "private_key_jwt"}),
            "clients[0].private_key_env",
            PEM,
        ),
        (
            json!({"auth_method": "private_key_jwt"}),
            "clients[0].private_key",
            "or private_key_env must be set",
        ),
        (
            json!({"private_key": "a", "private_key_env": "B", "auth_method": "private_key_jwt"}),
            "clients[0].private_key",
            "and private_key_env are both set; set exactly one",
        ),
        (
            json!({"client_secret": "inline-secret", "private_key": "a", "auth_method": "private_key_jwt"}),
            "clients[0].client_secret",
            "and client_secret_env must not be set for private_key_jwt (it signs with private_key or private_key_env)",
        ),
        (
            json!({"client_secret": "inline-secret", "private_key": "a"}),
            "clients[0].private_key",
            "and private_key_env are only for auth_method private_key_jwt",
        ),
        (
            json!({"client_secret": "inline-secret", "key_id": "k"}),
            "clients[0].key_id",
            "is only for client_secret_jwt and private_key_jwt",
        ),
    ] {
        let err = client(fields.clone()).refused();
        assert_eq!((err.field.as_str(), err.problem.as_str()), (field, problem), "{fields}");
    }
}

#[test]
fn empty_environment_variable_is_refused() {
    let err = parse(
        br#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret_env":"E","allowed_callers":["m"]}]}"#,
        &|_| Some(String::new()),
    )
    .unwrap_err();
    assert_eq!(err.field, "clients[0].client_secret_env");
    assert!(err.problem.contains("empty"));
}

#[test]
fn invalid_json_error_does_not_quote_input() {
    let err = parse(br#"{"clients": inline-secret}"#, &no_env).unwrap_err();
    assert!(!err.to_string().contains("inline"), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");
}
