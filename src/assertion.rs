//! The signed client assertion (RFC 7523, Keycloak's "Signed JWT" client
//! authentication) the filter mints for a `client_secret_jwt` or
//! `private_key_jwt` target, once per rewritten request: HS256 with the
//! client secret, ES256 with a P-256 key or EdDSA with an Ed25519 key. The
//! clock and the random `jti` come from the caller (the host), so this stays
//! pure.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde::Serialize;
use sha2::Sha256;
use std::fmt;

/// `client_assertion_type` of a signed JWT.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: Keycloak needs only the request's time.
const LIFETIME_SECONDS: u64 = 60;

/// A key the filter signs assertions with. `Debug` shows no key material.
#[derive(Clone)]
pub enum AssertionKey {
    /// HS256 keyed with the client secret's bytes (`client_secret_jwt`).
    Hs256(Vec<u8>),
    /// ES256 with a P-256 private key (`private_key_jwt`).
    Es256(SigningKey),
    /// EdDSA with an Ed25519 private key (`private_key_jwt`).
    EdDsa(ed25519_dalek::SigningKey),
}

impl fmt::Debug for AssertionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AssertionKey::Hs256(_) => f.write_str("Hs256(<redacted>)"),
            AssertionKey::Es256(_) => f.write_str("Es256(<redacted>)"),
            AssertionKey::EdDsa(_) => f.write_str("EdDsa(<redacted>)"),
        }
    }
}

impl PartialEq for AssertionKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (AssertionKey::Hs256(a), AssertionKey::Hs256(b)) => a == b,
            (AssertionKey::Es256(a), AssertionKey::Es256(b)) => a.verifying_key() == b.verifying_key(),
            (AssertionKey::EdDsa(a), AssertionKey::EdDsa(b)) => a.verifying_key() == b.verifying_key(),
            _ => false,
        }
    }
}

impl Eq for AssertionKey {}

/// Why a PEM is refused: it is not a PKCS#8 private key of a type the filter
/// signs with. Never carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsupportedKey;

impl AssertionKey {
    /// A `private_key_jwt` key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`);
    /// the key's type picks the algorithm: P-256 signs ES256, Ed25519 EdDSA.
    /// The PEM is decoded once; each crate then checks its own algorithm
    /// identifier in the DER.
    pub fn from_private_key_pem(pem: &str) -> Result<AssertionKey, UnsupportedKey> {
        use p256::pkcs8::der::pem::PemLabel;
        use p256::pkcs8::{DecodePrivateKey, PrivateKeyInfoRef, SecretDocument};
        let (label, document) = SecretDocument::from_pem(pem.trim()).map_err(|_| UnsupportedKey)?;
        PrivateKeyInfoRef::validate_pem_label(label).map_err(|_| UnsupportedKey)?;
        let der = document.as_bytes();
        if let Ok(key) = SigningKey::from_pkcs8_der(der) {
            return Ok(AssertionKey::Es256(key));
        }
        ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map(AssertionKey::EdDsa)
            .map_err(|_| UnsupportedKey)
    }

    fn alg(&self) -> &'static str {
        match self {
            AssertionKey::Hs256(_) => "HS256",
            AssertionKey::Es256(_) => "ES256",
            AssertionKey::EdDsa(_) => "EdDSA",
        }
    }
}

/// What one assertion says. `aud` is the realm's issuer URL exactly as
/// Keycloak names itself (the refresh token's own `iss`).
pub struct Claims<'a> {
    pub client_id: &'a str,
    pub audience: &'a str,
    pub now_seconds: u64,
    pub jti: [u8; 16],
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

#[derive(Serialize)]
struct Payload<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    exp: u64,
}

/// The signing failed (it cannot with a valid key): the request then goes
/// unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningFailed;

/// The compact JWS: header and claims as JSON, base64url, signed.
pub fn mint(key: &AssertionKey, key_id: Option<&str>, claims: &Claims<'_>) -> Result<String, SigningFailed> {
    let header = Header {
        alg: key.alg(),
        typ: "JWT",
        kid: key_id,
    };
    let payload = Payload {
        iss: claims.client_id,
        sub: claims.client_id,
        aud: claims.audience,
        jti: URL_SAFE_NO_PAD.encode(claims.jti),
        iat: claims.now_seconds,
        exp: claims.now_seconds.saturating_add(LIFETIME_SECONDS),
    };
    let header = serde_json::to_vec(&header).map_err(|_| SigningFailed)?;
    let payload = serde_json::to_vec(&payload).map_err(|_| SigningFailed)?;
    let signing_input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let signature = match key {
        AssertionKey::Hs256(secret) => {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).map_err(|_| SigningFailed)?;
            mac.update(signing_input.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        AssertionKey::Es256(signing_key) => {
            // JOSE's form: r || s, 64 bytes (not DER).
            let signature: Signature = signing_key
                .try_sign(signing_input.as_bytes())
                .map_err(|_| SigningFailed)?;
            signature.to_bytes().to_vec()
        }
        // RFC 8037: the 64-byte Ed25519 signature of the signing input.
        AssertionKey::EdDsa(signing_key) => signing_key
            .try_sign(signing_input.as_bytes())
            .map_err(|_| SigningFailed)?
            .to_bytes()
            .to_vec(),
    };
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;

    const TEST_KEY: &str = include_str!("../tests/fixtures/es256-test-key.pem");
    const ED25519_KEY: &str = include_str!("../tests/fixtures/ed25519-test-key.pem");

    fn claims() -> Claims<'static> {
        Claims {
            client_id: "portal-backend",
            audience: "http://kc.test/realms/demo",
            now_seconds: 1_700_000_000,
            jti: [7; 16],
        }
    }

    fn parts(jws: &str) -> (serde_json::Value, serde_json::Value, Vec<u8>, String) {
        let mut it = jws.split('.');
        let (h, p, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        assert!(it.next().is_none());
        (
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap(),
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap(),
            URL_SAFE_NO_PAD.decode(s).unwrap(),
            format!("{h}.{p}"),
        )
    }

    #[test]
    fn claims_are_those_keycloak_checks() {
        let key = AssertionKey::Hs256(b"0123456789abcdef0123456789abcdef".to_vec());
        let (header, payload, _, _) = parts(&mint(&key, Some("k1"), &claims()).unwrap());
        assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}));
        assert_eq!(
            payload,
            serde_json::json!({
                "iss": "portal-backend", "sub": "portal-backend", "aud": "http://kc.test/realms/demo",
                "jti": "BwcHBwcHBwcHBwcHBwcHBw", "iat": 1_700_000_000u64, "exp": 1_700_000_060u64
            })
        );
        let (header, _, _, _) = parts(&mint(&key, None, &claims()).unwrap());
        assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
    }

    #[test]
    fn hs256_verifies_with_the_secret() {
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let (_, _, signature, input) = parts(&mint(&AssertionKey::Hs256(secret.clone()), None, &claims()).unwrap());
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&secret).unwrap();
        mac.update(input.as_bytes());
        mac.verify_slice(&signature).unwrap();
    }

    #[test]
    fn es256_verifies_with_the_public_key_in_jose_form() {
        let key = AssertionKey::from_private_key_pem(TEST_KEY).unwrap();
        let AssertionKey::Es256(signing) = &key else { panic!() };
        let (header, _, signature, input) = parts(&mint(&key, Some("azp-bridge-test-es256"), &claims()).unwrap());
        assert_eq!(header["alg"], "ES256");
        assert_eq!(signature.len(), 64, "r || s");
        let signature = Signature::from_slice(&signature).unwrap();
        VerifyingKey::from(signing)
            .verify(input.as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn every_jti_gives_another_assertion() {
        let key = AssertionKey::from_private_key_pem(TEST_KEY).unwrap();
        let mut other = claims();
        other.jti = [8; 16];
        assert_ne!(mint(&key, None, &claims()).unwrap(), mint(&key, None, &other).unwrap());
    }

    #[test]
    fn eddsa_verifies_with_the_public_key() {
        use ed25519_dalek::pkcs8::DecodePublicKey;
        let key = AssertionKey::from_private_key_pem(ED25519_KEY).unwrap();
        assert!(matches!(key, AssertionKey::EdDsa(_)), "an Ed25519 key signs EdDSA");
        let (header, _, signature, input) = parts(&mint(&key, Some("azp-bridge-test-ed25519"), &claims()).unwrap());
        assert_eq!(
            header,
            serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": "azp-bridge-test-ed25519"})
        );
        let public = ed25519_dalek::VerifyingKey::from_public_key_pem(include_str!(
            "../tests/fixtures/ed25519-test-key.pub.pem"
        ))
        .unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        public.verify_strict(input.as_bytes(), &signature).unwrap();
    }

    #[test]
    fn the_key_type_picks_the_algorithm() {
        assert!(matches!(
            AssertionKey::from_private_key_pem(TEST_KEY),
            Ok(AssertionKey::Es256(_))
        ));
        assert!(matches!(
            AssertionKey::from_private_key_pem(&format!("\n  {ED25519_KEY}\n")),
            Ok(AssertionKey::EdDsa(_))
        ));
    }

    #[test]
    fn pems_that_are_not_p256_or_ed25519_private_keys_are_refused() {
        // Keys of other types, as `openssl genpkey` writes them.
        let p384 = include_str!("../tests/fixtures/p384-test-key.pem");
        let x25519 = include_str!("../tests/fixtures/x25519-test-key.pem");
        let ed25519_under_another_label = ED25519_KEY.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY");
        for pem in [
            "",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
            include_str!("../tests/fixtures/es256-test-key.pub.pem"),
            include_str!("../tests/fixtures/ed25519-test-key.pub.pem"),
            p384,
            x25519,
            &ed25519_under_another_label,
        ] {
            assert_eq!(AssertionKey::from_private_key_pem(pem), Err(UnsupportedKey), "{pem}");
        }
        assert_eq!(
            format!("{:?}", AssertionKey::from_private_key_pem(TEST_KEY).unwrap()),
            "Es256(<redacted>)"
        );
        assert_eq!(
            format!("{:?}", AssertionKey::from_private_key_pem(ED25519_KEY).unwrap()),
            "EdDsa(<redacted>)"
        );
    }
}
