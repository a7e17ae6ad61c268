//! The plugin configuration: parsed, validated and with secrets resolved once,
//! in `on_configure`, so that requests only read it.
//!
//! Errors name the field and the problem and never repeat a value: a value in
//! the wrong place may well be a secret.

use crate::json::value::{self, Value};
use std::fmt;

/// Envoy's own default buffer limit; a larger body never reaches the filter.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How the target client's credentials are sent to Keycloak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// An `Authorization: Basic` header (needs `hold_headers`).
    ClientSecretBasic,
}

/// A client secret. Its `Debug` output is redacted so it cannot slip into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A confidential client whose tokens other clients may refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetClient {
    pub client_id: String,
    pub secret: Secret,
    pub auth_method: AuthMethod,
    pub allowed_callers: Vec<String>,
    /// `None`: any realm.
    pub realms: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub clients: Vec<TargetClient>,
    /// Where Keycloak is: a credential is added only to a request going
    /// there. At least one of the two is set.
    pub upstream: Upstream,
    pub hold_headers: bool,
    pub max_body_bytes: usize,
}

/// Which upstream is Keycloak. A request is rewritten only when every list
/// that is set names its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Envoy cluster names of Keycloak, matched exactly against the cluster
    /// the request was routed to.
    pub clusters: Option<Vec<String>>,
    /// Host names Keycloak is served on, lower case, matched against
    /// `:authority` without its port.
    pub authorities: Option<Vec<String>>,
}

impl Config {
    /// The configured client a token was issued to.
    pub fn client(&self, client_id: &str) -> Option<&TargetClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// A refused configuration: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: `{}` {}", self.field, self.problem)
    }
}

fn error(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

/// Parses the plugin configuration. `env` looks up environment variables
/// (the VM's, exposed by `vm_config.environment_variables`).
pub fn parse(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let root = value::parse(json).map_err(|e| {
        // Only the position: the input may hold a secret.
        error(
            "(root)",
            format!("is not valid JSON (line {}, column {})", e.line, e.column),
        )
    })?;
    let root = object(&root, "(root)")?;
    only_known(
        root,
        "",
        &[
            "clients",
            "upstream_clusters",
            "authorities",
            "hold_headers",
            "max_body_bytes",
        ],
    )?;
    let upstream = Upstream {
        clusters: string_list(root.get("upstream_clusters"), "upstream_clusters")?,
        authorities: string_list(root.get("authorities"), "authorities")?
            .map(|hosts| hosts.iter().map(|h| h.to_ascii_lowercase()).collect()),
    };
    if let Some((i, _)) = upstream
        .authorities
        .iter()
        .flatten()
        .enumerate()
        .find(|(_, host)| host.contains(':') || host.contains('/'))
    {
        return Err(error(
            format!("authorities[{i}]"),
            "must be a host name without port or path (the port of a request is ignored)",
        ));
    }

    let hold_headers = match root.get("hold_headers") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or_else(|| error("hold_headers", "must be true or false"))?,
    };
    let max_body_bytes = match root.get("max_body_bytes") {
        None => DEFAULT_MAX_BODY_BYTES,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=MAX_MAX_BODY_BYTES).contains(n))
            .ok_or_else(|| {
                error(
                    "max_body_bytes",
                    format!("must be a whole number from 1 to {MAX_MAX_BODY_BYTES}"),
                )
            })?,
    };

    let clients = root
        .get("clients")
        .ok_or_else(|| error("clients", "is missing"))?
        .as_array()
        .ok_or_else(|| error("clients", "must be a list"))?;
    if clients.is_empty() {
        return Err(error("clients", "must not be empty"));
    }
    let mut parsed: Vec<TargetClient> = Vec::with_capacity(clients.len());
    for (i, client) in clients.iter().enumerate() {
        let client = target_client(client, &format!("clients[{i}]"), env)?;
        if client.auth_method == AuthMethod::ClientSecretBasic && !hold_headers {
            return Err(error(
                format!("clients[{i}].auth_method"),
                "client_secret_basic needs \"hold_headers\": true (headers must wait for the body to be changed)",
            ));
        }
        if parsed.iter().any(|c| c.client_id == client.client_id) {
            return Err(error(format!("clients[{i}].client_id"), "repeats an earlier client_id"));
        }
        parsed.push(client);
    }
    if upstream.clusters.is_none() && upstream.authorities.is_none() {
        return Err(error(
            "upstream_clusters",
            "is missing: set it (or `authorities`) to where Keycloak is, so that a secret only ever goes there",
        ));
    }
    Ok(Config {
        clients: parsed,
        upstream,
        hold_headers,
        max_body_bytes,
    })
}

fn target_client(value: &Value, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<TargetClient, ConfigError> {
    let client = object(value, path)?;
    only_known(
        client,
        path,
        &[
            "client_id",
            "client_secret",
            "client_secret_env",
            "auth_method",
            "allowed_callers",
            "realms",
        ],
    )?;
    let field = |name: &str| format!("{path}.{name}");
    let client_id = required_string(client, &field("client_id"), "client_id")?;

    let secret = match (client.get("client_secret"), client.get("client_secret_env")) {
        (Some(_), Some(_)) => {
            return Err(error(
                field("client_secret"),
                "and client_secret_env are both set; set exactly one",
            ))
        }
        (None, None) => return Err(error(field("client_secret"), "or client_secret_env must be set")),
        (Some(_), None) => required_string(client, &field("client_secret"), "client_secret")?,
        (None, Some(_)) => {
            let name = required_string(client, &field("client_secret_env"), "client_secret_env")?;
            match env(&name) {
                None => {
                    return Err(error(
                        field("client_secret_env"),
                        format!("names environment variable {name}, which is not set in the VM (vm_config.environment_variables)"),
                    ))
                }
                Some(value) if value.is_empty() => {
                    return Err(error(field("client_secret_env"), format!("names environment variable {name}, which is empty")))
                }
                Some(value) => value,
            }
        }
    };

    let auth_method = match client.get("auth_method") {
        None => AuthMethod::ClientSecretPost,
        Some(Value::String(s)) if s == "client_secret_post" => AuthMethod::ClientSecretPost,
        Some(Value::String(s)) if s == "client_secret_basic" => AuthMethod::ClientSecretBasic,
        Some(_) => {
            return Err(error(
                field("auth_method"),
                "must be \"client_secret_post\" or \"client_secret_basic\"",
            ))
        }
    };

    let allowed_callers = string_list(client.get("allowed_callers"), &field("allowed_callers"))?
        .ok_or_else(|| error(field("allowed_callers"), "is missing"))?;
    let realms = string_list(client.get("realms"), &field("realms"))?;

    Ok(TargetClient {
        client_id,
        secret: Secret(secret),
        auth_method,
        allowed_callers,
        realms,
    })
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Value, ConfigError> {
    match value {
        Value::Object(_) => Ok(value),
        _ => Err(error(path, "must be an object")),
    }
}

fn only_known(map: &Value, path: &str, known: &[&str]) -> Result<(), ConfigError> {
    let mut names = map.as_object().unwrap_or_default().iter().map(|(name, _)| name);
    match names.find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => {
            let unknown: String = unknown.chars().take(64).collect();
            let prefix = if path.is_empty() {
                String::new()
            } else {
                format!("{path}.")
            };
            Err(error(
                format!("{prefix}{unknown}"),
                format!("is not a known field (known: {})", known.join(", ")),
            ))
        }
    }
}

fn required_string(map: &Value, path: &str, key: &str) -> Result<String, ConfigError> {
    match map.get(key) {
        None => Err(error(path, "is missing")),
        Some(Value::String(s)) if s.is_empty() => Err(error(path, "must not be empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(error(path, "must be a string")),
    }
}

/// A non-empty list of non-empty strings, or `None` when absent.
fn string_list(value: Option<&Value>, path: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let items = value
        .as_array()
        .ok_or_else(|| error(path, "must be a list of strings"))?;
    if items.is_empty() {
        return Err(error(path, "must not be empty"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::String(_) => Err(error(format!("{path}[{i}]"), "must not be empty")),
            _ => Err(error(format!("{path}[{i}]"), "must be a string")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn minimal_configuration_gets_defaults() {
        let config = parse_str(MINIMAL).unwrap();
        assert!(!config.hold_headers);
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        let client = config.client("admin").unwrap();
        assert_eq!(client.secret.expose(), "inline-secret");
        assert_eq!(client.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(client.allowed_callers, vec!["mobile"]);
        assert_eq!(client.realms, None);
        assert!(config.client("mobile").is_none());
    }

    #[test]
    fn full_configuration() {
        let config = parse_str(
            r#"{"upstream_clusters":["keycloak"],"clients":[
                {"client_id":"a","client_secret_env":"ADMIN_SECRET","auth_method":"client_secret_basic","allowed_callers":["m","n"],"realms":["demo"]},
                {"client_id":"b","client_secret":"x","auth_method":"client_secret_post","allowed_callers":["m"]}
            ],"hold_headers":true,"max_body_bytes":1024}"#,
        )
        .unwrap();
        assert!(config.hold_headers);
        assert_eq!(config.max_body_bytes, 1024);
        let a = config.client("a").unwrap();
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
            (
                r#""authorities":["kc.example.com:8443"]"#,
                "authorities[0]",
                "must be a host name without port or path (the port of a request is ignored)",
            ),
            (
                r#""authorities":["a","kc.example.com/x"]"#,
                "authorities[1]",
                "must be a host name without port or path (the port of a request is ignored)",
            ),
        ] {
            let err = refused(&format!(
                r#"{{{json},"clients":[{{"client_id":"a","client_secret":"inline-secret","allowed_callers":["m"]}}]}}"#
            ));
            assert_eq!((err.field.as_str(), err.problem.as_str()), (field, problem), "{json}");
        }
        let config = parse_str(
            r#"{"authorities":["KeyCloak.Example.com"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            config.upstream,
            Upstream {
                clusters: None,
                authorities: Some(vec!["keycloak.example.com".to_owned()])
            }
        );
    }

    #[test]
    fn secret_never_shows_in_debug_output() {
        let config = parse_str(MINIMAL).unwrap();
        assert!(!format!("{config:?}").contains("inline-secret"));
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            ("{", "(root)", "is not valid JSON"),
            (r#"{"clients":"inline-secret"}"#, "clients", "must be a list"),
            ("[]", "(root)", "must be an object"),
            ("{}", "clients", "is missing"),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[]}"#,
                "clients",
                "must not be empty",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{}],"extra":1}"#,
                "extra",
                "is not a known field",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"inline-secret","allowed_callers":["m"],"colour":1}]}"#,
                "clients[0].colour",
                "is not a known field",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_secret":"inline-secret","allowed_callers":["m"]}]}"#,
                "clients[0].client_id",
                "is missing",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"","client_secret":"x","allowed_callers":["m"]}]}"#,
                "clients[0].client_id",
                "must not be empty",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":7,"client_secret":"x","allowed_callers":["m"]}]}"#,
                "clients[0].client_id",
                "must be a string",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","allowed_callers":["m"]}]}"#,
                "clients[0].client_secret",
                "or client_secret_env must be set",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"inline-secret","client_secret_env":"ADMIN_SECRET","allowed_callers":["m"]}]}"#,
                "clients[0].client_secret",
                "both set",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"","allowed_callers":["m"]}]}"#,
                "clients[0].client_secret",
                "must not be empty",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":["inline-secret"],"allowed_callers":["m"]}]}"#,
                "clients[0].client_secret",
                "must be a string",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret_env":"NOT_SET","allowed_callers":["m"]}]}"#,
                "clients[0].client_secret_env",
                "NOT_SET, which is not set",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x"}]}"#,
                "clients[0].allowed_callers",
                "is missing",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":[]}]}"#,
                "clients[0].allowed_callers",
                "must not be empty",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":"m"}]}"#,
                "clients[0].allowed_callers",
                "must be a list",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m",""]}]}"#,
                "clients[0].allowed_callers[1]",
                "must not be empty",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"],"realms":[]}]}"#,
                "clients[0].realms",
                "must not be empty",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"],"realms":[1]}]}"#,
                "clients[0].realms[0]",
                "must be a string",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"],"auth_method":"private_key_jwt"}]}"#,
                "clients[0].auth_method",
                "must be",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"],"auth_method":"client_secret_basic"}]}"#,
                "clients[0].auth_method",
                "needs \"hold_headers\": true",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"]},{"client_id":"a","client_secret":"y","allowed_callers":["n"]}]}"#,
                "clients[1].client_id",
                "repeats",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"]}],"hold_headers":"yes"}"#,
                "hold_headers",
                "true or false",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"]}],"max_body_bytes":0}"#,
                "max_body_bytes",
                "whole number",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"]}],"max_body_bytes":-1}"#,
                "max_body_bytes",
                "whole number",
            ),
            (
                r#"{"upstream_clusters":["keycloak"],"clients":[{"client_id":"a","client_secret":"x","allowed_callers":["m"]}],"max_body_bytes":99999999999}"#,
                "max_body_bytes",
                "whole number",
            ),
        ];
        for (json, field, problem) in cases {
            let err = refused(json);
            assert_eq!(err.field, field, "{json}");
            assert!(err.problem.contains(problem), "{json}: {}", err.problem);
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
}
