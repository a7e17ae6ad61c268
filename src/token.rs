//! Reads the claims the policy needs from a Keycloak refresh token.
//!
//! The signature is deliberately not checked: only Keycloak holds the realm's
//! HMAC key, and Keycloak verifies the token after the rewrite. A forged `azp`
//! therefore gains nothing but Keycloak's own refusal.

use crate::base64::URL_SAFE;
use crate::json::{self, Member};
use crate::scan;

/// The claims of a refresh token that decide a rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The client the token was issued to.
    pub azp: String,
    /// The issuer, `<base>/realms/<realm>`.
    pub iss: Option<String>,
}

/// Why a token could not be read. Never carries token bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not three dot-separated segments.
    NotCompactJws,
    /// The payload segment is not base64url.
    PayloadNotBase64,
    /// The payload is not a JSON object with a string `azp` (and a string
    /// `iss`, if present).
    PayloadNotClaims,
}

impl TokenError {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenError::NotCompactJws => "token is not a compact JWS",
            TokenError::PayloadNotBase64 => "token payload is not base64url",
            TokenError::PayloadNotClaims => "token payload has no string azp",
        }
    }
}

/// Decodes the payload of a compact JWS and reads `azp` and `iss`.
pub fn claims(token: &[u8]) -> Result<Claims, TokenError> {
    let mut segments = scan::split(token, b'.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(TokenError::NotCompactJws);
    };
    let json = URL_SAFE.decode(payload).map_err(|_| TokenError::PayloadNotBase64)?;
    // Only the two members are read (crate::json): building a serde_json
    // Value cost more than the rest of the decision together. A repeated
    // member keeps its last value, as Keycloak's JSON reader does.
    let [azp, iss] = json::top_level_members(&json, ["azp", "iss"]).map_err(|_| TokenError::PayloadNotClaims)?;
    let Member::String(azp) = azp else {
        return Err(TokenError::PayloadNotClaims);
    };
    let iss = match iss {
        Member::Absent => None,
        Member::String(iss) => Some(iss),
        Member::Other => return Err(TokenError::PayloadNotClaims),
    };
    Ok(Claims { azp, iss })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::base64::Engine;

    fn jws(payload: &str) -> Vec<u8> {
        format!(
            "eyJhbGciOiJIUzUxMiJ9.{}.c2ln",
            ::base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload)
        )
        .into_bytes()
    }

    #[test]
    fn reads_azp_and_iss() {
        let c = claims(&jws(
            r#"{"azp":"a","iss":"http://k/realms/demo","typ":"Refresh","exp":1}"#,
        ))
        .unwrap();
        assert_eq!(c.azp, "a");
        assert_eq!(c.iss.as_deref(), Some("http://k/realms/demo"));
    }

    #[test]
    fn iss_is_optional() {
        assert_eq!(claims(&jws(r#"{"azp":"a"}"#)).unwrap().iss, None);
    }

    #[test]
    fn json_escapes_are_decoded() {
        assert_eq!(claims(&jws(r#"{"azp":"a\u0062\"c"}"#)).unwrap().azp, "ab\"c");
    }

    #[test]
    fn padded_payload_is_tolerated() {
        let padded = format!(
            "h.{}.s",
            ::base64::engine::general_purpose::URL_SAFE.encode(r#"{"azp":"abc"}"#)
        );
        assert!(padded.contains('='));
        assert_eq!(claims(padded.as_bytes()).unwrap().azp, "abc");
    }

    #[test]
    fn refuses_what_is_not_a_jws() {
        assert_eq!(claims(b"opaque"), Err(TokenError::NotCompactJws));
        assert_eq!(claims(b"a.b"), Err(TokenError::NotCompactJws));
        assert_eq!(claims(b"a.b.c.d.e"), Err(TokenError::NotCompactJws));
        assert_eq!(claims(b""), Err(TokenError::NotCompactJws));
        assert_eq!(claims(b"...."), Err(TokenError::NotCompactJws));
    }

    #[test]
    fn refuses_bad_base64() {
        assert_eq!(claims(b"h.!!!.s"), Err(TokenError::PayloadNotBase64));
        // Standard-alphabet characters are not base64url.
        assert_eq!(claims(b"h.ab+/.s"), Err(TokenError::PayloadNotBase64));
    }

    #[test]
    fn refuses_payloads_without_a_string_azp() {
        for payload in [
            "not json",
            "[]",
            "{}",
            r#"{"azp":1}"#,
            r#"{"azp":null}"#,
            r#"{"azp":["a"]}"#,
            r#"{"azp":"a","iss":5}"#,
            r#"{"azp":"a"} trailing"#,
        ] {
            assert_eq!(claims(&jws(payload)), Err(TokenError::PayloadNotClaims), "{payload}");
        }
        assert_eq!(claims(b"h.__8.s"), Err(TokenError::PayloadNotClaims));
    }

    #[test]
    fn repeated_claims_keep_the_last_value_like_keycloak() {
        assert_eq!(claims(&jws(r#"{"azp":"a","azp":"b"}"#)).unwrap().azp, "b");
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let shallow = format!(r#"{{"azp":"a","x":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert_eq!(claims(&jws(&shallow)).unwrap().azp, "a");
        let deep = format!(r#"{{"azp":"a","x":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(claims(&jws(&deep)), Err(TokenError::PayloadNotClaims));
        let deep_azp = format!(r#"{{"azp":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(claims(&jws(&deep_azp)), Err(TokenError::PayloadNotClaims));
    }

    #[test]
    fn ignores_other_claims() {
        let c = claims(&jws(r#"{"sub":"u","azp":"x","aud":["a","b"],"nested":{"k":[1,2]}}"#)).unwrap();
        assert_eq!(c.azp, "x");
    }
}
