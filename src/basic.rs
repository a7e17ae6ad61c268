//! HTTP Basic client authentication as RFC 6749 2.3.1 defines it: the id and
//! the secret are form-urlencoded before base64.

use crate::form;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};

/// Keycloak's (Java's) decoder accepts Basic credentials without padding.
const STANDARD_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a Basic header was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicError {
    NotBase64,
    NoColon,
    BadEncoding,
}

/// What an `Authorization` header says about the calling client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Basic` credentials; the client id, decoded. The secret is dropped here.
    Basic(Vec<u8>),
    /// Some other scheme: it does not authenticate a client at the token endpoint.
    Other,
}

/// Reads the client id from an `Authorization` header value.
pub fn parse(header: &[u8]) -> Result<Authorization, BasicError> {
    let header = header.trim_ascii();
    let Some((scheme, credentials)) = split_scheme(header) else {
        return Ok(Authorization::Other);
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Ok(Authorization::Other);
    }
    let decoded = STANDARD_ANY_PADDING
        .decode(credentials.trim_ascii())
        .map_err(|_| BasicError::NotBase64)?;
    let colon = decoded.iter().position(|&b| b == b':').ok_or(BasicError::NoColon)?;
    let raw_id = decoded.get(..colon).unwrap_or_default();
    let id = form::decode(raw_id).ok_or(BasicError::BadEncoding)?;
    Ok(Authorization::Basic(id.into_owned()))
}

/// The `Authorization` value for a client id and secret.
pub fn header_value(client_id: &str, secret: &str) -> String {
    let mut plain = Vec::with_capacity(client_id.len() + secret.len() + 8);
    form::encode_into(client_id.as_bytes(), &mut plain);
    plain.push(b':');
    form::encode_into(secret.as_bytes(), &mut plain);
    format!("Basic {}", STANDARD.encode(&plain))
}

fn split_scheme(header: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = header.iter().position(|&b| b == b' ')?;
    Some((header.get(..space)?, header.get(space + 1..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(plain: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(plain.as_bytes())).into_bytes()
    }

    #[test]
    fn reads_the_client_id() {
        assert_eq!(
            parse(&basic("mobile:secret")).unwrap(),
            Authorization::Basic(b"mobile".to_vec())
        );
    }

    #[test]
    fn id_is_form_decoded() {
        assert_eq!(
            parse(&basic("my%20app+x:s%3A")).unwrap(),
            Authorization::Basic(b"my app x".to_vec())
        );
    }

    #[test]
    fn secret_may_contain_colons_and_be_empty() {
        assert_eq!(parse(&basic("a:b:c")).unwrap(), Authorization::Basic(b"a".to_vec()));
        assert_eq!(parse(&basic("a:")).unwrap(), Authorization::Basic(b"a".to_vec()));
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let header = format!("bAsIc {}", STANDARD.encode(b"x:y"));
        assert_eq!(parse(header.as_bytes()).unwrap(), Authorization::Basic(b"x".to_vec()));
    }

    #[test]
    fn other_schemes_are_not_client_authentication() {
        assert_eq!(parse(b"Bearer abc").unwrap(), Authorization::Other);
        assert_eq!(parse(b"Basic").unwrap(), Authorization::Other);
        assert_eq!(parse(b"").unwrap(), Authorization::Other);
    }

    #[test]
    fn padding_may_be_left_out() {
        // "mobile:x" is bW9iaWxlOng= in full.
        assert_eq!(
            parse(b"Basic bW9iaWxlOng").unwrap(),
            Authorization::Basic(b"mobile".to_vec())
        );
        assert_eq!(
            parse(b"Basic bW9iaWxlOng=").unwrap(),
            Authorization::Basic(b"mobile".to_vec())
        );
    }

    #[test]
    fn malformed_basic_is_an_error() {
        assert_eq!(parse(b"Basic ***"), Err(BasicError::NotBase64));
        assert_eq!(parse(&basic("nocolon")), Err(BasicError::NoColon));
        assert_eq!(parse(&basic("bad%zz:s")), Err(BasicError::BadEncoding));
    }

    #[test]
    fn header_value_encodes_before_base64() {
        let value = header_value("my app", "p:w%d");
        let encoded = value.strip_prefix("Basic ").unwrap();
        assert_eq!(STANDARD.decode(encoded.as_bytes()).unwrap(), b"my+app:p%3Aw%25d");
        assert_eq!(
            parse(value.as_bytes()).unwrap(),
            Authorization::Basic(b"my app".to_vec())
        );
    }
}
