//! Reads the claims the policy needs from a Keycloak refresh token.
//!
//! The signature is deliberately not checked: only Keycloak holds the realm's
//! HMAC key, and Keycloak verifies the token after the rewrite. A forged `azp`
//! therefore gains nothing but Keycloak's own refusal.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use serde::Deserialize;
use std::borrow::Cow;

/// JWS segments are base64url without padding; a padded one is read too.
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The claims of a refresh token that decide a rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The client the token was issued to.
    pub azp: String,
    /// The issuer, `<base>/realms/<realm>`.
    pub iss: Option<String>,
}

/// The two members read from the payload; every other member is skipped
/// without being built. A member given twice is refused by serde, and such a
/// token passes unchanged: Keycloak never signs one (SECURITY.md).
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    azp: Cow<'a, str>,
    #[serde(borrow, default)]
    iss: Option<Cow<'a, str>>,
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
    let mut segments = token.split(|&b| b == b'.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(TokenError::NotCompactJws);
    };
    let json = URL_SAFE.decode(payload).map_err(|_| TokenError::PayloadNotBase64)?;
    // serde also reads a struct from a JSON array; claims are an object.
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(TokenError::PayloadNotClaims);
    }
    let payload: Payload<'_> = serde_json::from_slice(&json).map_err(|_| TokenError::PayloadNotClaims)?;
    Ok(Claims {
        azp: payload.azp.into_owned(),
        iss: payload.iss.map(Cow::into_owned),
    })
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
            r#"["a","http://k/realms/demo"]"#,
            r#"{"azp":"a","iss":5}"#,
            r#"{"azp":"a"} trailing"#,
        ] {
            assert_eq!(claims(&jws(payload)), Err(TokenError::PayloadNotClaims), "{payload}");
        }
        assert_eq!(claims(b"h.__8.s"), Err(TokenError::PayloadNotClaims));
    }

    #[test]
    fn repeated_claims_are_refused() {
        // Keycloak never signs such a token; which copy counts is the JSON
        // reader's choice, so the request passes unchanged.
        assert_eq!(
            claims(&jws(r#"{"azp":"a","azp":"b"}"#)),
            Err(TokenError::PayloadNotClaims)
        );
        assert_eq!(
            claims(&jws(r#"{"azp":"a","iss":"x","iss":"y"}"#)),
            Err(TokenError::PayloadNotClaims)
        );
    }

    #[test]
    fn a_null_iss_is_no_iss() {
        // Then no realm matches: the policy passes it (realm_mismatch).
        assert_eq!(claims(&jws(r#"{"azp":"a","iss":null}"#)).unwrap().iss, None);
    }

    #[test]
    fn lone_surrogate_escapes_are_refused() {
        assert_eq!(
            claims(&jws(r#"{"azp":"\ud800admin"}"#)),
            Err(TokenError::PayloadNotClaims)
        );
    }

    #[test]
    fn deep_nesting_never_overflows_the_stack() {
        // Inside azp, past serde_json's limit (128): refused.
        let deep_azp = format!(r#"{{"azp":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(claims(&jws(&deep_azp)), Err(TokenError::PayloadNotClaims));
        // Inside a member that is not read, serde_json skips without
        // recursing: read (Keycloak refuses such a token itself).
        let deep = format!(r#"{{"azp":"a","x":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(claims(&jws(&deep)).unwrap().azp, "a");
    }

    #[test]
    fn ignores_other_claims() {
        let c = claims(&jws(r#"{"sub":"u","azp":"x","aud":["a","b"],"nested":{"k":[1,2]}}"#)).unwrap();
        assert_eq!(c.azp, "x");
    }
}
