//! Which paths are Keycloak's client-authenticated token endpoints, decided
//! from `:path` alone so that every other request passes without its body
//! being buffered (the method and `Content-Type` are the policy's `plan`).

/// The Keycloak endpoints that bind a token to its client (`azp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    Revoke,
    Logout,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Revoke => "revoke",
            Endpoint::Logout => "logout",
        }
    }

    /// The form parameter carrying the token whose `azp` matters.
    pub fn token_parameter(self) -> &'static [u8] {
        match self {
            Endpoint::Token | Endpoint::Logout => b"refresh_token",
            Endpoint::Revoke => b"token",
        }
    }
}

/// A request that may need a rewrite once its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub endpoint: Endpoint,
    /// The realm segment of the path, as sent (percent-encoded if it was).
    pub realm: String,
}

/// The longest realm segment a Keycloak realm can have: a realm name is at
/// most 255 characters (Keycloak's `REALM.NAME` column), each at most 4
/// bytes of UTF-8, each byte at most 3 percent-encoded. A longer segment
/// names no realm: its request is not a token request, and is neither
/// buffered nor logged (a 58 KB realm cost the filter CPU in every log line).
pub const MAX_REALM_BYTES: usize = 255 * 4 * 3;

/// The endpoint and realm a path names, whatever the method and body.
pub fn classify_path(path: &[u8]) -> Option<Target> {
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let mut segments = path.rsplit(|&b| b == b'/');
    let endpoint = match segments.next()? {
        b"token" => Endpoint::Token,
        b"revoke" => Endpoint::Revoke,
        b"logout" => Endpoint::Logout,
        _ => return None,
    };
    if segments.next()? != b"openid-connect" || segments.next()? != b"protocol" {
        return None;
    }
    let realm = segments.next()?;
    if realm.is_empty() || realm.len() > MAX_REALM_BYTES || segments.next()? != b"realms" {
        return None;
    }
    let realm = std::str::from_utf8(realm).ok()?.to_owned();
    Some(Target { endpoint, realm })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(endpoint: Endpoint, realm: &str) -> Option<Target> {
        Some(Target {
            endpoint,
            realm: realm.to_owned(),
        })
    }

    #[test]
    fn matches_the_three_endpoints() {
        let base = "/realms/demo/protocol/openid-connect/";
        for (name, endpoint) in [
            ("token", Endpoint::Token),
            ("revoke", Endpoint::Revoke),
            ("logout", Endpoint::Logout),
        ] {
            let path = format!("{base}{name}");
            assert_eq!(classify_path(path.as_bytes()), target(endpoint, "demo"), "{path}");
        }
    }

    #[test]
    fn any_prefix_before_realms() {
        for path in [
            "/auth/realms/demo/protocol/openid-connect/token",
            "/identity/kc/realms/demo/protocol/openid-connect/token",
            "realms/demo/protocol/openid-connect/token",
        ] {
            assert_eq!(
                classify_path(path.as_bytes()),
                target(Endpoint::Token, "demo"),
                "{path}"
            );
        }
    }

    #[test]
    fn query_string_is_ignored() {
        assert_eq!(
            classify_path(b"/realms/demo/protocol/openid-connect/token?x=/revoke"),
            target(Endpoint::Token, "demo")
        );
    }

    #[test]
    fn realm_is_kept_as_sent() {
        assert_eq!(
            classify_path(b"/realms/my%20realm/protocol/openid-connect/token"),
            target(Endpoint::Token, "my%20realm")
        );
    }

    #[test]
    fn other_paths_do_not_match() {
        for path in [
            "/realms/demo/protocol/openid-connect/token/",
            "/realms/demo/protocol/openid-connect/userinfo",
            "/realms/demo/protocol/openid-connect/token/introspect",
            "/realms//protocol/openid-connect/token",
            "/realm/demo/protocol/openid-connect/token",
            "/realms/demo/protocol/saml/token",
            "/realms/demo/protocol/openid-connect/TOKEN",
            "/protocol/openid-connect/token",
            "/demo/protocol/openid-connect/token",
            "",
            "/",
        ] {
            assert_eq!(classify_path(path.as_bytes()), None, "{path}");
        }
    }

    #[test]
    fn realms_longer_than_keycloak_allows_do_not_match() {
        let path = |realm: &str| format!("/realms/{realm}/protocol/openid-connect/token");
        let longest = "%F0".repeat(MAX_REALM_BYTES / 3);
        assert_eq!(
            classify_path(path(&longest).as_bytes()),
            target(Endpoint::Token, &longest)
        );
        assert_eq!(classify_path(path(&format!("{longest}a")).as_bytes()), None);
        assert_eq!(classify_path(path(&"a".repeat(58_000)).as_bytes()), None);
    }

    #[test]
    fn non_utf8_realm_does_not_match() {
        assert_eq!(classify_path(b"/realms/\xff/protocol/openid-connect/token"), None);
    }
}
