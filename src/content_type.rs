//! The `Content-Type` of a token request, read strictly.
//!
//! Keycloak's form reader decodes the body with whatever charset the header
//! names, and finds `charset=` anywhere after a space or `;`. A body read
//! as UTF-8 by the filter and as UTF-16 by Keycloak carries other parameter
//! names for each (SECURITY.md), so only the plain form type, with at most a
//! `charset=utf-8` parameter, is read at all.

/// What a `Content-Type` value makes of a token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormType {
    /// `application/x-www-form-urlencoded`, optionally `; charset=utf-8`:
    /// the body is read as UTF-8 by every reader.
    Form,
    /// Names the form type, but with anything else: forwarded unchanged.
    Ambiguous(&'static str),
    /// Another media type: no form parameters for Keycloak either.
    NotForm,
}

const FORM: &[u8] = b"application/x-www-form-urlencoded";

/// Classifies one `Content-Type` value.
pub fn classify(value: &[u8]) -> FormType {
    if !contains_ignore_case(value, FORM) {
        return FormType::NotForm;
    }
    let Some(rest) = value.strip_prefix(FORM) else {
        return FormType::Ambiguous("Content-Type is not exactly application/x-www-form-urlencoded");
    };
    let rest = trim_ows(rest);
    if rest.is_empty() {
        return FormType::Form;
    }
    let charset = rest
        .strip_prefix(b";")
        .map(trim_ows)
        .and_then(|p| p.strip_prefix(b"charset="));
    match charset {
        Some(v) if v.eq_ignore_ascii_case(b"utf-8") || v.eq_ignore_ascii_case(b"\"utf-8\"") => FormType::Form,
        _ => FormType::Ambiguous("Content-Type has a parameter other than charset=utf-8"),
    }
}

/// Optional whitespace (RFC 9110) on both ends.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_form_type_and_utf8_are_forms() {
        for value in [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded;charset=utf-8",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "application/x-www-form-urlencoded ;\tcharset=\"UTF-8\" ",
            "application/x-www-form-urlencoded;charset=\"utf-8\"",
        ] {
            assert_eq!(classify(value.as_bytes()), FormType::Form, "{value}");
        }
    }

    #[test]
    fn other_media_types_are_not_forms() {
        for value in ["application/json", "multipart/form-data; boundary=x", "text/plain", ""] {
            assert_eq!(classify(value.as_bytes()), FormType::NotForm, "{value}");
        }
    }

    #[test]
    fn anything_else_around_the_form_type_is_ambiguous() {
        for value in [
            // The charset trick (SECURITY.md) and its variants.
            "application/x-www-form-urlencoded; charset=UTF-16BE",
            "application/x-www-form-urlencoded; charset=\"UTF-16BE\"",
            "application/x-www-form-urlencoded; charset=UTF-16LE",
            "application/x-www-form-urlencoded; charset=UTF-32",
            "application/x-www-form-urlencoded; charset=IBM037",
            "application/x-www-form-urlencoded; charset=x",
            "application/x-www-form-urlencoded; foo=bar charset=UTF-16BE",
            "application/x-www-form-urlencoded; foo=bar",
            "application/x-www-form-urlencoded; charset=utf-8; charset=utf-16be",
            "application/x-www-form-urlencoded; charset=utf-8 charset=utf-16be",
            "application/x-www-form-urlencoded; charset=utf-8;",
            "application/x-www-form-urlencoded; charset = utf-8",
            "application/x-www-form-urlencoded; CHARSET=utf-8",
            "application/x-www-form-urlencoded;;charset=\"x\";;",
            "application/x-www-form-urlencoded;",
            "application/x-www-form-urlencodedx",
            "application/x-www-form-urlencoded, application/json",
            // Keycloak's reader compares the media type case-sensitively.
            "Application/X-WWW-Form-Urlencoded",
            "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8",
            " x application/x-www-form-urlencoded",
        ] {
            assert!(matches!(classify(value.as_bytes()), FormType::Ambiguous(_)), "{value}");
        }
    }

    #[test]
    fn reasons_name_no_value() {
        let FormType::Ambiguous(why) = classify(b"application/x-www-form-urlencoded; charset=UTF-16BE") else {
            panic!("ambiguous expected");
        };
        assert!(!why.contains("16"), "{why}");
    }
}
