//! The whole policy of azp-bridge: which requests it looks at, when it swaps
//! the caller's client credentials for the token's `azp` client, and what the
//! forwarded request then looks like. Plain Rust, no proxy-wasm: the filter
//! glue only carries bytes between Envoy and these functions.

use crate::assertion;
use crate::basic::{self, Authorization};
use crate::config::{AuthMethod, Config, IdToken, TargetClient, Upstream};
use crate::content_type::{self, FormType};
use crate::endpoint::{self, Endpoint, Target};
use crate::form::{self, Pair};
use crate::token;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

/// Parameters through which a client authenticates in the body; all of them
/// go when the credentials are swapped.
const CLIENT_AUTH_PARAMETERS: [&[u8]; 4] = [
    b"client_id",
    b"client_secret",
    b"client_assertion",
    b"client_assertion_type",
];

/// Read access to the request headers (Envoy's, or a map in tests). Names
/// are lower case, pseudo-headers included (`:method`, `:path`).
pub trait RequestHeaders {
    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&[u8]>;
    /// How many times `name` appears (a repeated header is read differently
    /// by different servers).
    fn count(&self, name: &str) -> usize;
}

/// The headers as the SDK hands them over (`hostcalls::get_map_bytes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderPairs(pub Vec<(String, Vec<u8>)>);

impl RequestHeaders for HeaderPairs {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    fn count(&self, name: &str) -> usize {
        self.0.iter().filter(|(n, _)| n == name).count()
    }
}

/// What the request headers decide, before any body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadPlan {
    /// Not a token request: forward untouched, never look at the body.
    Ignore,
    /// A token request forwarded untouched, for this reason (counted).
    Pass(Target, PassReason),
    /// A token request whose declared length is over the limit.
    RejectTooLarge,
    /// A token request: buffer the body and call [`decide`] at its end.
    Inspect(Inspection),
}

/// What a token request's headers said, kept until its body has arrived
/// (headers may no longer be readable then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub target: Target,
    pub caller: CallerHeader,
    /// Whether the request declared a `Content-Length` (to be set again
    /// when headers are held and the body changes).
    pub has_content_length: bool,
}

/// Classifies a request from its headers, reading as few as it can: most
/// requests are settled by `:method` alone, other POSTs by `:path`.
///
/// A token request is read only when its authority is Keycloak's
/// ([`authority_is_keycloak`]) and when Keycloak is bound to read it the
/// same way (SECURITY.md, "Rewrite only unambiguous requests"): one
/// `Content-Type`, the plain form type ([`content_type`]), no
/// `Content-Encoding`, at most one `Authorization`. The routed cluster
/// (`upstream_clusters`) is not read here: [`confirm_destination`] reads it
/// once a rewrite has been decided, so a passing refresh does not pay for it.
pub fn plan(config: &Config, headers: &dyn RequestHeaders) -> HeadPlan {
    if headers.get(":method") != Some(b"POST") {
        return HeadPlan::Ignore;
    }
    // The path before the content type: it settles other POSTs with one
    // more header read.
    let Some(target) = headers.get(":path").and_then(endpoint::classify_path) else {
        return HeadPlan::Ignore;
    };
    let form_type = match headers.count("content-type") {
        0 => FormType::NotForm,
        1 => headers
            .get("content-type")
            .map_or(FormType::NotForm, content_type::classify),
        _ => FormType::Ambiguous("more than one Content-Type"),
    };
    if form_type == FormType::NotForm {
        return HeadPlan::Ignore;
    }
    if !authority_is_keycloak(&config.upstream, headers.get(":authority")) {
        return HeadPlan::Pass(target, PassReason::UpstreamNotAllowed);
    }
    let ambiguous = |why| HeadPlan::Pass(target.clone(), PassReason::Ambiguous(why));
    if let FormType::Ambiguous(why) = form_type {
        return ambiguous(why);
    }
    if headers.count("content-encoding") > 0 {
        return ambiguous("the body has a Content-Encoding");
    }
    if headers.count("authorization") > 1 {
        return ambiguous("more than one Authorization");
    }
    let content_length = headers.get("content-length");
    let declared = content_length
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > config.max_body_bytes as u64) {
        return HeadPlan::RejectTooLarge;
    }
    HeadPlan::Inspect(Inspection {
        target,
        caller: CallerHeader::from_authorization(headers.get("authorization")),
        has_content_length: content_length.is_some(),
    })
}

/// Whether a request goes to Keycloak: every list the configuration sets
/// must name its destination ([`cluster_is_keycloak`] and
/// [`authority_is_keycloak`]). The filter asks the two at different times:
/// the authority with the headers, the cluster once a rewrite is decided.
pub fn goes_to_keycloak(upstream: &Upstream, authority: Option<&[u8]>, cluster: &dyn Fn() -> Option<Vec<u8>>) -> bool {
    authority_is_keycloak(upstream, authority) && cluster_is_keycloak(upstream, cluster)
}

/// With `upstream_clusters`: the cluster Envoy routed the request to is one
/// of them (unknown: not Keycloak). `cluster` is called only then.
pub fn cluster_is_keycloak(upstream: &Upstream, cluster: &dyn Fn() -> Option<Vec<u8>>) -> bool {
    let Some(clusters) = &upstream.clusters else {
        return true;
    };
    cluster().is_some_and(|cluster| clusters.iter().any(|c| c.as_bytes() == cluster.as_slice()))
}

/// With `authorities`: the authority is one the operator listed, port
/// included, compared case-insensitively as Envoy compares domains and with
/// nothing cut or normalized: what Envoy routes by is this very header
/// (after the listener's port stripping), so a spelling that is not listed
/// may have gone to another virtual host.
pub fn authority_is_keycloak(upstream: &Upstream, authority: Option<&[u8]>) -> bool {
    let Some(authorities) = &upstream.authorities else {
        return true;
    };
    authority.is_some_and(|authority| authorities.iter().any(|a| a.as_bytes().eq_ignore_ascii_case(authority)))
}

/// A decided rewrite goes ahead only to a listed cluster; anything else
/// passes (`upstream_not_allowed`). The route, and so the cluster, is fixed
/// before the first filter runs and stays so: the filter is the last before
/// the router in every shipped configuration, nothing after it clears the
/// route cache, and the router forwards to the cluster this reads (in the
/// default header mode it has already picked it, since headers left with
/// `Continue`). Reading it here rather than with the headers spares every
/// request that is not rewritten a host call.
pub fn confirm_destination(config: &Config, verdict: Verdict, cluster: &dyn Fn() -> Option<Vec<u8>>) -> Verdict {
    match verdict.outcome {
        Outcome::Rewrite(_) if !cluster_is_keycloak(&config.upstream, cluster) => Verdict {
            outcome: Outcome::Pass(PassReason::UpstreamNotAllowed),
            ..verdict
        },
        _ => verdict,
    }
}

/// The caller's `Authorization` header, read while headers are still
/// readable (they may be gone by the time the body has arrived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerHeader {
    /// No `Authorization`, or one that is not Basic.
    None,
    Basic(Vec<u8>),
    Malformed,
}

impl CallerHeader {
    pub fn from_authorization(value: Option<&[u8]>) -> Self {
        match value.map(basic::parse) {
            None | Some(Ok(Authorization::Other)) => CallerHeader::None,
            Some(Ok(Authorization::Basic(id))) => CallerHeader::Basic(id),
            Some(Err(_)) => CallerHeader::Malformed,
        }
    }
}

/// Why a token request is forwarded unchanged. Each is a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassReason {
    /// The token's `azp` is the caller: Keycloak accepts it as it is.
    SameClient,
    /// `azp` is not a configured client.
    UnknownAzp,
    /// The caller is not in the `azp` client's `allowed_callers`.
    CallerNotAllowed,
    /// The path's realm is not allowed for the client, or the token's issuer
    /// is another realm: which of the two.
    RealmMismatch(&'static str),
    /// The form, the token or the Basic header could not be read.
    NotDecodable(&'static str),
    /// A parameter appears twice: Keycloak refuses that itself.
    DuplicateParameter,
    /// A token-endpoint grant other than `refresh_token`.
    NotRefreshGrant,
    /// The token parameter is absent.
    NoToken,
    /// The request is routed somewhere else than the configured Keycloak
    /// (`upstream_clusters`, `authorities`): no credential may go there.
    UpstreamNotAllowed,
    /// The signed client assertion could not be made (no clock or random
    /// source from the host): no credential is added.
    SigningFailed,
    /// Keycloak could read the request otherwise than the filter does
    /// (charset, odd names, encodings): only a request both read alike is
    /// rewritten.
    Ambiguous(&'static str),
}

impl PassReason {
    pub const ALL: [PassReason; 11] = [
        PassReason::SameClient,
        PassReason::UnknownAzp,
        PassReason::CallerNotAllowed,
        PassReason::RealmMismatch(""),
        PassReason::NotDecodable(""),
        PassReason::DuplicateParameter,
        PassReason::NotRefreshGrant,
        PassReason::NoToken,
        PassReason::UpstreamNotAllowed,
        PassReason::SigningFailed,
        PassReason::Ambiguous(""),
    ];

    /// The counter name suffix and the log word.
    pub fn as_str(self) -> &'static str {
        match self {
            PassReason::SameClient => "same_client",
            PassReason::UnknownAzp => "unknown_azp",
            PassReason::CallerNotAllowed => "caller_not_allowed",
            PassReason::RealmMismatch(_) => "realm_mismatch",
            PassReason::NotDecodable(_) => "not_decodable",
            PassReason::DuplicateParameter => "duplicate_parameter",
            PassReason::NotRefreshGrant => "not_refresh_grant",
            PassReason::NoToken => "no_token",
            PassReason::UpstreamNotAllowed => "upstream_not_allowed",
            PassReason::SigningFailed => "signing_failed",
            PassReason::Ambiguous(_) => "ambiguous",
        }
    }
}

/// How the `Authorization` header must change along with the body.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthorizationChange {
    Keep,
    Remove,
    /// Set to this value (the target's Basic credentials: never log it).
    Set(String),
}

impl fmt::Debug for AuthorizationChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthorizationChange::Keep => f.write_str("Keep"),
            AuthorizationChange::Remove => f.write_str("Remove"),
            AuthorizationChange::Set(_) => f.write_str("Set(<redacted>)"),
        }
    }
}

/// The forwarded request when credentials are swapped.
#[derive(Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub body: Vec<u8>,
    pub authorization: AuthorizationChange,
    /// Remove the `id_token` from a successful response ([`crate::response`]):
    /// a refresh at the token endpoint for a client with `id_token: drop`.
    pub drop_id_token: bool,
}

impl fmt::Debug for Rewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rewrite")
            .field("body_len", &self.body.len())
            .field("authorization", &self.authorization)
            .field("drop_id_token", &self.drop_id_token)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Rewrite(Rewrite),
    Pass(PassReason),
}

/// A decision and what it was made of, for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub caller: Option<Vec<u8>>,
    pub azp: Option<String>,
}

impl Verdict {
    pub fn pass(reason: PassReason, caller: Option<Vec<u8>>, azp: Option<String>) -> Self {
        Verdict {
            outcome: Outcome::Pass(reason),
            caller,
            azp,
        }
    }

    /// One line for the debug log: client ids (shortened, escaped), never
    /// secrets, tokens or headers. A value that contains a configured secret
    /// (a client may send anything as its id) is shown as `<redacted>`.
    pub fn describe(&self, config: &Config, target: &Target) -> String {
        let shown = |bytes: &[u8]| config.redactor.field(Some(bytes));
        let outcome = match &self.outcome {
            Outcome::Rewrite(_) => "rewritten".to_owned(),
            Outcome::Pass(PassReason::NotDecodable(what)) => format!("passed:not_decodable ({what})"),
            Outcome::Pass(PassReason::Ambiguous(what)) => format!("passed:ambiguous ({what})"),
            Outcome::Pass(PassReason::RealmMismatch(which)) => format!("passed:realm_mismatch ({which})"),
            Outcome::Pass(reason) => format!("passed:{}", reason.as_str()),
        };
        format!(
            "endpoint={} realm={} caller={} azp={} outcome={}",
            target.endpoint.as_str(),
            shown(target.realm.as_bytes()),
            config.redactor.field(self.caller.as_deref()),
            config.redactor.field(self.azp.as_deref().map(str::as_bytes)),
            outcome,
        )
    }
}

/// Why a request is a realm mismatch (the log line says which).
const REALM_NOT_LISTED: &str = "the path's realm is not in the client's realms";
const ISSUER_ELSEWHERE: &str = "the token's issuer is not the path's realm";
const NOT_THE_CONFIGURED_ISSUER: &str = "the token's issuer is not the configured issuer's realm";

/// What a signed client assertion needs from the host, per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    /// The host's clock, in seconds since the Unix epoch.
    pub now_seconds: u64,
    /// 128 random bits from the host (WASI `random_get`): the assertion's `jti`.
    pub jti: [u8; 16],
}

/// [`decide_with`] without a clock or random source: a signed-JWT target
/// then passes (`signing_failed`). For callers that have no host.
pub fn decide(config: &Config, inspection: &Inspection, body: &[u8]) -> Verdict {
    decide_with(config, inspection, body, &|| None)
}

/// Decides a token request once its whole body is known. `fresh` is asked
/// only when a signed assertion is minted.
pub fn decide_with(
    config: &Config,
    inspection: &Inspection,
    body: &[u8],
    fresh: &dyn Fn() -> Option<Fresh>,
) -> Verdict {
    let Inspection {
        target,
        caller: caller_header,
        ..
    } = inspection;
    let pairs = match form::parse(body) {
        Ok(pairs) => pairs,
        Err(ambiguity) => return Verdict::pass(PassReason::Ambiguous(ambiguity.as_str()), None, None),
    };
    if has_duplicate_name(&pairs) {
        return Verdict::pass(PassReason::DuplicateParameter, None, None);
    }
    let caller = match caller_header {
        CallerHeader::Basic(id) => Some(id.clone()),
        CallerHeader::Malformed => {
            return Verdict::pass(PassReason::NotDecodable("authorization is not valid Basic"), None, None)
        }
        CallerHeader::None => value_of(&pairs, b"client_id").map(Cow::into_owned),
    };
    if target.endpoint == Endpoint::Token && value_of(&pairs, b"grant_type").as_deref() != Some(b"refresh_token") {
        return Verdict::pass(PassReason::NotRefreshGrant, caller, None);
    }
    let Some(token) = value_of(&pairs, target.endpoint.token_parameter()) else {
        return Verdict::pass(PassReason::NoToken, caller, None);
    };
    let claims = match token::claims(&token) {
        Ok(claims) => claims,
        Err(e) => return Verdict::pass(PassReason::NotDecodable(e.as_str()), caller, None),
    };
    let token::Claims { azp, iss } = claims;
    if caller.as_deref() == Some(azp.as_bytes()) {
        return Verdict::pass(PassReason::SameClient, caller, Some(azp));
    }
    let Some(client) = config.client(&azp, &target.realm) else {
        // A client id configured for other realms only is a realm mismatch.
        let reason = if config.knows(&azp) {
            PassReason::RealmMismatch(REALM_NOT_LISTED)
        } else {
            PassReason::UnknownAzp
        };
        return Verdict::pass(reason, caller, Some(azp));
    };
    let allowed = caller
        .as_deref()
        .is_some_and(|c| client.allowed_callers.iter().any(|a| a.as_bytes() == c));
    if !allowed {
        return Verdict::pass(PassReason::CallerNotAllowed, caller, Some(azp));
    }
    let issuer = match realm_issuer(client, &target.realm, iss) {
        Ok(issuer) => issuer,
        Err(which) => return Verdict::pass(PassReason::RealmMismatch(which), caller, Some(azp)),
    };
    let Some(credential) = credential(client, &issuer, fresh) else {
        return Verdict::pass(PassReason::SigningFailed, caller, Some(azp));
    };
    let mut rewrite = rewrite(&pairs, client, caller_header, config.hold_headers, credential);
    rewrite.drop_id_token = target.endpoint == Endpoint::Token && client.id_token == IdToken::Drop;
    Verdict {
        outcome: Outcome::Rewrite(rewrite),
        caller,
        azp: Some(azp),
    }
}

/// The JSON body of the local 413 answer.
pub fn too_large_body(config: &Config) -> String {
    format!(
        r#"{{"error":"invalid_request","error_description":"Request body exceeds the azp-bridge limit of {} bytes"}}"#,
        config.max_body_bytes
    )
}

/// The issuer of the path's realm, which the token must name: the entry was
/// chosen by the path's realm, so the token must come from it. With a
/// configured issuer, exactly `<issuer>/realms/<realm>`; else the token's
/// own `iss`, if it names that realm. Otherwise, why not.
fn realm_issuer(client: &TargetClient, realm: &str, iss: Option<String>) -> Result<String, &'static str> {
    match &client.issuer {
        Some(base) => {
            let expected = format!("{base}/realms/{realm}");
            if iss.as_deref() == Some(expected.as_str()) {
                Ok(expected)
            } else {
                Err(NOT_THE_CONFIGURED_ISSUER)
            }
        }
        None => iss.filter(|iss| issued_in(iss, realm)).ok_or(ISSUER_ELSEWHERE),
    }
}

/// `iss` names `realm`: `<base>/realms/<realm>`.
fn issued_in(iss: &str, realm: &str) -> bool {
    iss.strip_suffix(realm).is_some_and(|base| base.ends_with("/realms/"))
}

/// How the target's credentials go to Keycloak.
enum Credential {
    /// `client_id` and `client_secret` in the body.
    PostSecret,
    /// An `Authorization: Basic` header.
    BasicSecret,
    /// `client_id`, `client_assertion_type` and this `client_assertion`.
    Assertion(String),
}

/// How the target authenticates, by its `auth_method`: a signed-JWT method
/// mints an assertion for `issuer` (the audience Keycloak expects) with the
/// host's clock and randomness; `None` if it cannot (no key, clock or random
/// bits, or signing failed).
fn credential(client: &TargetClient, issuer: &str, fresh: &dyn Fn() -> Option<Fresh>) -> Option<Credential> {
    match (client.auth_method, &client.assertion_key) {
        (AuthMethod::ClientSecretPost, _) => Some(Credential::PostSecret),
        (AuthMethod::ClientSecretBasic, _) => Some(Credential::BasicSecret),
        (AuthMethod::ClientSecretJwt | AuthMethod::PrivateKeyJwt, key) => {
            let (key, fresh) = key.as_ref().zip(fresh())?;
            let claims = assertion::Claims {
                client_id: &client.client_id,
                audience: issuer,
                now_seconds: fresh.now_seconds,
                jti: fresh.jti,
            };
            assertion::mint(key, client.key_id.as_deref(), &claims)
                .ok()
                .map(Credential::Assertion)
        }
    }
}

/// Every segment but the caller's credentials, in place and byte for byte,
/// then the target's credentials.
fn rewrite(
    pairs: &[Pair<'_>],
    client: &TargetClient,
    caller_header: &CallerHeader,
    hold_headers: bool,
    credential: Credential,
) -> Rewrite {
    let secret = client.secret.expose();
    let capacity =
        pairs.iter().map(|p| p.raw.len() + 1).sum::<usize>() + client.client_id.len() * 3 + secret.len() * 3 + 32;
    let mut body = Vec::with_capacity(capacity);
    let kept = pairs.iter().filter(|p| !CLIENT_AUTH_PARAMETERS.contains(&p.name));
    for (i, pair) in kept.enumerate() {
        if i > 0 {
            body.push(b'&');
        }
        body.extend_from_slice(pair.raw);
    }
    // In the body, the caller's Basic header (if any) goes when headers are
    // held; otherwise it stays, and Keycloak lets the body's credentials win.
    let body_authorization = if hold_headers && *caller_header != CallerHeader::None {
        AuthorizationChange::Remove
    } else {
        AuthorizationChange::Keep
    };
    let authorization = match credential {
        Credential::BasicSecret => AuthorizationChange::Set(basic::header_value(&client.client_id, secret)),
        Credential::Assertion(assertion) => {
            append_pair(&mut body, b"client_id", client.client_id.as_bytes());
            append_pair(&mut body, b"client_assertion_type", assertion::JWT_BEARER.as_bytes());
            append_pair(&mut body, b"client_assertion", assertion.as_bytes());
            body_authorization
        }
        Credential::PostSecret => {
            append_pair(&mut body, b"client_id", client.client_id.as_bytes());
            append_pair(&mut body, b"client_secret", secret.as_bytes());
            body_authorization
        }
    };
    Rewrite {
        body,
        authorization,
        drop_id_token: false,
    }
}

fn append_pair(body: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    if !body.is_empty() {
        body.push(b'&');
    }
    body.extend_from_slice(name);
    body.push(b'=');
    form::encode_into(value, body);
}

/// The decoded value of a parameter, `None` if absent.
fn value_of<'a>(pairs: &[Pair<'a>], name: &[u8]) -> Option<Cow<'a, [u8]>> {
    pairs.iter().find(|p| p.name == name).map(Pair::value)
}

fn has_duplicate_name(pairs: &[Pair<'_>]) -> bool {
    let mut seen = BTreeSet::new();
    pairs.iter().any(|p| !seen.insert(p.name))
}

#[cfg(test)]
mod tests;
