//! The plugin configuration: parsed, validated and with secrets resolved once,
//! in `on_configure`, so that requests only read it.
//!
//! serde_json reads the JSON into [`Raw`] one field at a time
//! (config/fields.rs: types, unknown fields, defaults); [`parse`] then
//! checks what serde cannot say (non-empty values, exactly one secret
//! source, where Keycloak is). Errors name the field and the problem
//! and never repeat a value: a value in the wrong place may well be a secret,
//! so serde's own messages, which quote values, are never shown.

use crate::assertion::AssertionKey;
use crate::redact::Redactor;
use fields::Object;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;

/// The filter's default limit on a token request body (a refresh is well
/// under 8 KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Keycloak's token responses are a few KiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Envoy's default buffer limit (a listener's `per_connection_buffer_limit_bytes`):
/// Envoy itself answers 413 to a buffered body over it, before the filter sees it.
pub const ENVOY_DEFAULT_BUFFER_LIMIT: usize = 1024 * 1024;

/// How the target client's credentials are sent to Keycloak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    ClientSecretPost,
    /// An `Authorization: Basic` header (needs `hold_headers`).
    ClientSecretBasic,
    /// A client assertion signed HS256 with the client secret.
    ClientSecretJwt,
    /// A client assertion signed ES256 with a P-256 private key.
    PrivateKeyJwt,
}

/// What becomes of the ID token in the response to a bridged refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdToken {
    /// Removed: it is issued to the confidential client, and a public client
    /// that checks its audience rejects the whole response (docs/configuration.md).
    #[default]
    Drop,
    /// Forwarded as Keycloak sent it.
    Keep,
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
    /// The client secret (also the HS256 key of `client_secret_jwt`);
    /// empty for `private_key_jwt`.
    pub secret: Secret,
    /// The key of a signed-JWT method (`client_secret_jwt`, `private_key_jwt`).
    pub assertion_key: Option<AssertionKey>,
    /// The `kid` of the assertions' header.
    pub key_id: Option<String>,
    pub auth_method: AuthMethod,
    pub allowed_callers: Vec<String>,
    /// `None`: any realm.
    pub realms: Option<Vec<String>>,
    pub id_token: IdToken,
    /// Keycloak's base URL as its tokens name it (the entry's own, else the
    /// configuration's): a token must then come from
    /// `<issuer>/realms/<path realm>`, and a signed assertion's audience is
    /// that URL. Required for the signed-JWT methods.
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub clients: Vec<TargetClient>,
    /// The entry of each (client id, realm): built once, so a decision costs
    /// the same with one entry or ten thousand.
    index: HashMap<String, ClientEntries>,
    /// Where Keycloak is: a credential is added only to a request going
    /// there. At least one of the two is set.
    pub upstream: Upstream,
    pub hold_headers: bool,
    pub max_body_bytes: usize,
    /// The largest bridged token response whose `id_token` is removed;
    /// larger ones pass as they are.
    pub max_response_bytes: usize,
    /// Request values as log fields, never showing a configured secret.
    pub redactor: Redactor,
}

/// Which upstream is Keycloak. A request is rewritten only when every list
/// that is set names its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Envoy cluster names of Keycloak, matched exactly against the cluster
    /// the request was routed to.
    pub clusters: Option<Vec<String>>,
    /// The authorities (`host` or `host:port`) Keycloak is served on, lower
    /// case, matched exactly against `:authority` as Envoy routes it (after
    /// the listener's port stripping, if any), case-insensitively. Nothing
    /// is cut or normalized: a spelling the operator did not list is never
    /// taken for Keycloak (SECURITY.md, "A port in the authority").
    pub authorities: Option<Vec<String>>,
}

/// The entries of one client id: one per realm, and at most one fallback
/// for the realms no entry of that id names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientEntries {
    by_realm: HashMap<String, usize>,
    fallback: Option<usize>,
}

impl Config {
    /// The entry for a token issued to `client_id`, refreshed in `realm`.
    pub fn client(&self, client_id: &str, realm: &str) -> Option<&TargetClient> {
        let entries = self.index.get(client_id)?;
        let at = entries.by_realm.get(realm).copied().or(entries.fallback)?;
        self.clients.get(at)
    }

    /// Whether any entry names this client id (for the pass reason).
    pub fn knows(&self, client_id: &str) -> bool {
        self.index.contains_key(client_id)
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

/// The configuration as written.
struct Raw {
    clients: Vec<RawClient>,
    upstream_clusters: Option<Vec<String>>,
    authorities: Option<Vec<String>>,
    issuer: Option<String>,
    hold_headers: bool,
    /// Any JSON number; whole-valued ones (`65536.0`, `6.5e4`) are accepted.
    max_body_bytes: Option<serde_json::Number>,
    max_response_bytes: Option<serde_json::Number>,
}

struct RawClient {
    client_id: String,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    private_key: Option<String>,
    private_key_env: Option<String>,
    key_id: Option<String>,
    auth_method: AuthMethod,
    allowed_callers: Vec<String>,
    realms: Option<Vec<String>>,
    id_token: IdToken,
    issuer: Option<String>,
}

const ROOT_NAMES: &[&str] = &[
    "clients",
    "upstream_clusters",
    "authorities",
    "issuer",
    "hold_headers",
    "max_body_bytes",
    "max_response_bytes",
];
const CLIENT_NAMES: &[&str] = &[
    "client_id",
    "client_secret",
    "client_secret_env",
    "private_key",
    "private_key_env",
    "key_id",
    "auth_method",
    "allowed_callers",
    "realms",
    "id_token",
    "issuer",
];

/// Parses the plugin configuration. `env` looks up environment variables
/// (the VM's, exposed by `vm_config.environment_variables`).
pub fn parse(json: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let raw = raw_config(json)?;

    let hold_headers = raw.hold_headers;
    let max_body_bytes = byte_limit(raw.max_body_bytes, DEFAULT_MAX_BODY_BYTES, "max_body_bytes")?;
    let max_response_bytes = byte_limit(raw.max_response_bytes, DEFAULT_MAX_RESPONSE_BYTES, "max_response_bytes")?;
    if raw.clients.is_empty() {
        return Err(error("clients", "must not be empty"));
    }
    let issuer = checked_issuer(raw.issuer, "issuer")?;
    let mut clients: Vec<TargetClient> = Vec::with_capacity(raw.clients.len());
    let mut index: HashMap<String, ClientEntries> = HashMap::with_capacity(raw.clients.len());
    for (i, raw_client) in raw.clients.into_iter().enumerate() {
        let path = format!("clients[{i}]");
        let mut client = target_client(raw_client, &path, env)?;
        if client.issuer.is_none() {
            client.issuer.clone_from(&issuer);
        }
        if client.issuer.is_none() && client.assertion_key.is_some() {
            return Err(error(
                format!("{path}.issuer"),
                "is missing: a signed-JWT target (client_secret_jwt, private_key_jwt) needs Keycloak's base URL as \
                 its tokens name it (`issuer` here or at the root, e.g. \"https://keycloak.example.com\"): the \
                 assertion's audience is taken from it, never from the token",
            ));
        }
        if client.auth_method == AuthMethod::ClientSecretBasic && !hold_headers {
            return Err(error(
                format!("{path}.auth_method"),
                "client_secret_basic needs \"hold_headers\": true (headers must wait for the body to be changed)",
            ));
        }
        index_entry(&mut index, &client, i)?;
        clients.push(client);
    }

    let clusters = non_empty_list(raw.upstream_clusters, "upstream_clusters")?;
    let authorities = non_empty_list(raw.authorities, "authorities")?;
    if let Some(i) = authorities.iter().flatten().position(|a| !is_authority(a)) {
        return Err(error(
            format!("authorities[{i}]"),
            "must be an authority as requests name Keycloak, `host` or `host:port` (matched exactly, \
             port included: list every spelling Envoy routes to Keycloak)",
        ));
    }
    if clusters.is_none() && authorities.is_none() {
        return Err(error(
            "upstream_clusters",
            "is missing: set it (or `authorities`) to where Keycloak is, so that a secret only ever goes there",
        ));
    }
    let redactor = Redactor::new(clients.iter().map(|c| c.secret.expose()));
    Ok(Config {
        redactor,
        clients,
        index,
        upstream: Upstream {
            clusters,
            authorities: authorities.map(|hosts| hosts.iter().map(|h| h.to_ascii_lowercase()).collect()),
        },
        hold_headers,
        max_body_bytes,
        max_response_bytes,
    })
}

/// The document as [`Raw`]: every error of type or shape, in the order
/// the fields are read, before any other check.
fn raw_config(json: &[u8]) -> Result<Raw, ConfigError> {
    let root = Object::read(fields::document(json)?, "", "(root)", ROOT_NAMES)?;
    let clients = root.required::<Vec<&serde_json::value::RawValue>>("clients")?;
    let clients = clients.into_iter().enumerate().map(|(i, raw)| {
        let client = Object::read(raw, &format!("clients[{i}]"), "clients[]", CLIENT_NAMES)?;
        Ok(RawClient {
            client_id: client.required("client_id")?,
            client_secret: client.optional("client_secret")?,
            client_secret_env: client.optional("client_secret_env")?,
            private_key: client.optional("private_key")?,
            private_key_env: client.optional("private_key_env")?,
            key_id: client.optional("key_id")?,
            auth_method: client.defaulted("auth_method")?,
            allowed_callers: client.required_strings("allowed_callers")?,
            realms: client.strings("realms")?,
            id_token: client.defaulted("id_token")?,
            issuer: client.optional("issuer")?,
        })
    });
    Ok(Raw {
        clients: clients.collect::<Result<_, _>>()?,
        upstream_clusters: root.strings("upstream_clusters")?,
        authorities: root.strings("authorities")?,
        issuer: root.optional("issuer")?,
        hold_headers: root.defaulted("hold_headers")?,
        max_body_bytes: root.optional("max_body_bytes")?,
        max_response_bytes: root.optional("max_response_bytes")?,
    })
}

/// Adds entry `i` to the index. Entries of one client id must name disjoint
/// realms, and at most one of them may name none (the fallback); refusals
/// name both entries. One lookup per realm, so 10,000 entries stay cheap.
fn index_entry(index: &mut HashMap<String, ClientEntries>, client: &TargetClient, i: usize) -> Result<(), ConfigError> {
    let entries = index.entry(client.client_id.clone()).or_default();
    match &client.realms {
        None => {
            if let Some(j) = entries.fallback {
                return Err(error(
                    format!("clients[{i}].realms"),
                    format!("is missing, and clients[{j}] of the same client_id has no realms either: one entry per client_id may go without realms (the fallback)"),
                ));
            }
            entries.fallback = Some(i);
        }
        Some(realms) => {
            for realm in realms {
                if let Some(&j) = entries.by_realm.get(realm) {
                    if j != i {
                        return Err(error(
                            format!("clients[{i}].realms"),
                            format!("shares a realm with clients[{j}].realms of the same client_id: each realm takes one entry"),
                        ));
                    }
                }
                entries.by_realm.insert(realm.clone(), i);
            }
        }
    }
    Ok(())
}

fn target_client(
    mut raw: RawClient,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TargetClient, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    if raw.client_id.is_empty() {
        return Err(error(field("client_id"), "must not be empty"));
    }
    let secret_inline = raw.client_secret.is_some();
    let secret = client_secret(&mut raw, path, env)?;
    let assertion_key = assertion_key(&mut raw, &secret, secret_inline, path, env)?;
    if raw.key_id.as_deref() == Some("") {
        return Err(error(field("key_id"), "must not be empty"));
    }
    if raw.key_id.is_some() && assertion_key.is_none() {
        return Err(error(
            field("key_id"),
            "is only for client_secret_jwt and private_key_jwt",
        ));
    }
    let allowed_callers = non_empty_list(Some(raw.allowed_callers), &field("allowed_callers"))?.unwrap_or_default();
    let realms = non_empty_list(raw.realms, &field("realms"))?;
    Ok(TargetClient {
        client_id: raw.client_id,
        secret: Secret(secret),
        assertion_key,
        key_id: raw.key_id,
        auth_method: raw.auth_method,
        allowed_callers,
        realms,
        id_token: raw.id_token,
        issuer: checked_issuer(raw.issuer, &field("issuer"))?,
    })
}

/// The client secret, from `client_secret` or `client_secret_env` (exactly
/// one). `private_key_jwt` has none (empty): it signs with a key, and only
/// it may name one.
fn client_secret(raw: &mut RawClient, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    if raw.auth_method == AuthMethod::PrivateKeyJwt {
        if raw.client_secret.is_some() || raw.client_secret_env.is_some() {
            return Err(error(
                field("client_secret"),
                "and client_secret_env must not be set for private_key_jwt (it signs with private_key or private_key_env)",
            ));
        }
        return Ok(String::new());
    }
    if raw.private_key.is_some() || raw.private_key_env.is_some() {
        return Err(error(
            field("private_key"),
            "and private_key_env are only for auth_method private_key_jwt",
        ));
    }
    from_value_or_env(
        raw.client_secret.take(),
        raw.client_secret_env.take(),
        &field("client_secret"),
        "client_secret_env",
        env,
    )
}

/// The key of a signed-JWT method's assertions, read once: the client
/// secret as an HS256 key (`client_secret_jwt`, at least 32 bytes), or the
/// P-256 key of `private_key` or `private_key_env` (`private_key_jwt`).
/// Errors name the field the value came from (`secret_inline`: the secret
/// was `client_secret`), never the value.
fn assertion_key(
    raw: &mut RawClient,
    secret: &str,
    secret_inline: bool,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<AssertionKey>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    match raw.auth_method {
        AuthMethod::ClientSecretPost | AuthMethod::ClientSecretBasic => Ok(None),
        AuthMethod::ClientSecretJwt => {
            if secret.len() < 32 {
                let name = if secret_inline {
                    "client_secret"
                } else {
                    "client_secret_env"
                };
                return Err(error(
                    field(name),
                    "must be at least 32 bytes for client_secret_jwt (an HS256 key)",
                ));
            }
            Ok(Some(AssertionKey::Hs256(secret.as_bytes().to_vec())))
        }
        AuthMethod::PrivateKeyJwt => {
            let inline = raw.private_key.is_some();
            let pem = from_value_or_env(
                raw.private_key.take(),
                raw.private_key_env.take(),
                &field("private_key"),
                "private_key_env",
                env,
            )?;
            let name = if inline { "private_key" } else { "private_key_env" };
            let key = AssertionKey::from_private_key_pem(&pem).map_err(|_| {
                error(
                    field(name),
                    "is not a PKCS#8 PEM of a P-256 or Ed25519 private key (-----BEGIN PRIVATE KEY-----)",
                )
            })?;
            Ok(Some(key))
        }
    }
}

/// Keycloak's base URL as tokens name it: `http(s)://host[:port][/path]`,
/// without `/realms/...` and without a trailing `/` (the token's `iss` is
/// this plus `/realms/<realm>`).
fn checked_issuer(issuer: Option<String>, field: &str) -> Result<Option<String>, ConfigError> {
    let Some(issuer) = issuer else { return Ok(None) };
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .unwrap_or_default();
    let host = rest.split('/').next().unwrap_or_default();
    let valid = !host.is_empty()
        && !issuer.ends_with('/')
        && !issuer.contains("/realms/")
        && issuer.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(error(
            field,
            "must be Keycloak's base URL as its tokens name it, e.g. \"https://keycloak.example.com\" \
             (tokens' `iss` without `/realms/<realm>`, no trailing `/`)",
        ));
    }
    Ok(Some(issuer))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, as a request's `:authority`
/// names a host: no path, user info or space, a port of 1 to 5 digits.
fn is_authority(authority: &str) -> bool {
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let Some((address, rest)) = v6.split_once(']') else {
                return false;
            };
            let port = match rest {
                "" => None,
                _ => match rest.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return false,
                },
            };
            let address_ok =
                !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b":.".contains(&b));
            (address_ok, port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let host_ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
            (host_ok, port)
        }
    };
    let port_ok = port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// A value given inline (`value_field`) or by the name of an environment
/// variable (`env_name`, a sibling field): exactly one of the two.
fn from_value_or_env(
    value: Option<String>,
    env_name: Option<String>,
    value_field: &str,
    env_key: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let env_field = match value_field.rsplit_once('.') {
        Some((parent, _)) => format!("{parent}.{env_key}"),
        None => env_key.to_owned(),
    };
    match (value, env_name) {
        (Some(_), Some(_)) => Err(error(
            value_field,
            format!("and {env_key} are both set; set exactly one"),
        )),
        (None, None) => Err(error(value_field, format!("or {env_key} must be set"))),
        (Some(value), None) if value.is_empty() => Err(error(value_field, "must not be empty")),
        (Some(value), None) => Ok(value),
        (None, Some(name)) if name.is_empty() => Err(error(env_field, "must not be empty")),
        (None, Some(name)) => match env(&name) {
            None => Err(error(env_field, env_not_set(&name))),
            Some(value) if value.is_empty() => {
                Err(error(env_field, format!("names {}, which is empty", variable(&name))))
            }
            Some(value) => Ok(value),
        },
    }
}

/// How an error names a `client_secret_env` value: only a value shaped like
/// a variable name (`[A-Za-z_][A-Za-z0-9_]{0,63}`) is repeated. Anything else
/// may be the secret itself, put there by a template that filled in
/// `${ADMIN_CLIENT_SECRET}` where the variable's name belonged.
fn variable(name: &str) -> String {
    if is_variable_name(name) {
        format!("environment variable {name}")
    } else {
        "an environment variable whose name is not shown (it is not shaped like a variable name, [A-Za-z_][A-Za-z0-9_]*, and may be a secret: give the variable's name, not its value)".to_owned()
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes.next().is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// The VM cannot tell a variable missing from Envoy's environment from one
/// that is there but not exposed to it, so the message names both causes.
fn env_not_set(name: &str) -> String {
    format!(
        "names {}, which is not set in the VM: set it in Envoy's environment and list it in \
         vm_config.environment_variables.host_env_keys (Istio: vmConfig.env with valueFrom: HOST; \
         Envoy Gateway: env.hostKeys)",
        variable(name)
    )
}

/// A JSON number that is a whole number (`65536`, `65536.0`, `6.5536e4`).
/// A size limit from 1 to [`MAX_MAX_BODY_BYTES`], `default` when absent.
fn byte_limit(value: Option<serde_json::Number>, default: usize, field: &str) -> Result<usize, ConfigError> {
    let Some(n) = value else { return Ok(default) };
    whole_number(&n)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_MAX_BODY_BYTES).contains(n))
        .ok_or_else(|| error(field, expected(field)))
}

fn whole_number(n: &serde_json::Number) -> Option<u64> {
    if let Some(n) = n.as_u64() {
        return Some(n);
    }
    let f = n.as_f64()?;
    // Whole and at most 2^53, so the conversion is exact.
    (f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f)).then_some(f as u64)
}

impl Config {
    /// A warning for `on_configure` when `max_body_bytes` is larger than the
    /// buffer Envoy allows by default: Envoy answers a larger body with its
    /// own 413 before the filter sees it, unless the listener's buffer grows too.
    pub fn buffer_limit_warning(&self) -> Option<String> {
        (self.max_body_bytes > ENVOY_DEFAULT_BUFFER_LIMIT).then(|| {
            format!(
                "max_body_bytes={} is above Envoy's default buffer limit ({ENVOY_DEFAULT_BUFFER_LIMIT} bytes): \
                 Envoy answers a larger body with its own 413 before the filter sees it, unless the listener's \
                 per_connection_buffer_limit_bytes (or the route's per_request_buffer_limit_bytes) is at least max_body_bytes",
                self.max_body_bytes
            )
        })
    }
}

/// A list that, when given, has items and no empty string.
fn non_empty_list(list: Option<Vec<String>>, path: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(list) = list else { return Ok(None) };
    if list.is_empty() {
        return Err(error(path, "must not be empty"));
    }
    if let Some(i) = list.iter().position(String::is_empty) {
        return Err(error(format!("{path}[{i}]"), "must not be empty"));
    }
    Ok(Some(list))
}

/// What a field must be, by its name.
fn expected(name: &str) -> String {
    match name {
        "(root)" | "clients[]" => "must be an object".to_owned(),
        "clients" => "must be a list".to_owned(),
        "upstream_clusters" | "authorities" | "allowed_callers" | "realms" => "must be a list of strings".to_owned(),
        "auth_method" => {
            "must be \"client_secret_post\", \"client_secret_basic\", \"client_secret_jwt\" or \"private_key_jwt\""
                .to_owned()
        }
        "hold_headers" => "must be true or false".to_owned(),
        "max_body_bytes" => format!("must be a whole number from 1 to {MAX_MAX_BODY_BYTES}, e.g. 65536"),
        "max_response_bytes" => format!("must be a whole number from 1 to {MAX_MAX_BODY_BYTES}, e.g. 262144"),
        "id_token" => "must be \"drop\" or \"keep\"".to_owned(),
        _ => "must be a string".to_owned(),
    }
}

mod fields;
#[cfg(test)]
mod tests;
