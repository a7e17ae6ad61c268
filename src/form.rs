//! `application/x-www-form-urlencoded` bodies, read without copying and
//! written back byte for byte: a pair keeps its original bytes unless it is
//! one we replace.
//!
//! Only bodies that every form reader reads alike are accepted. Keycloak's
//! reader (Quarkus RESTEasy Reactive) differs from a plain one in ways an
//! attacker can use to make it see other parameters than the filter does
//! (SECURITY.md, "Rewrite only unambiguous requests"): it decodes escapes
//! with the `Content-Type` charset, turns raw non-ASCII bytes into Latin-1
//! characters, and counts empty names as parameters. So a body is read only
//! when it is ASCII, its names are plain (`[A-Za-z0-9_.-]`, no escapes), it
//! has no `;` and no empty segment, and every escape is well formed and
//! decodes to UTF-8. Anything else is [`Ambiguity`]: the caller forwards it
//! unchanged.

use std::borrow::Cow;

/// One `name=value` segment of a form body, with the raw bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The segment exactly as sent (between two `&`, or the body's ends).
    pub raw: &'a [u8],
    /// The name: plain bytes, never escaped.
    pub name: &'a [u8],
    raw_value: &'a [u8],
}

impl<'a> Pair<'a> {
    /// The decoded value (checked well formed when the body was parsed).
    pub fn value(&self) -> Cow<'a, [u8]> {
        decode(self.raw_value).unwrap_or(Cow::Borrowed(b""))
    }
}

/// Why a body is not read: a form reader could read it otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguity {
    NotAscii,
    Semicolon,
    EmptySegment,
    NameNotPlain,
    MalformedEscape,
    ValueNotUtf8,
}

impl Ambiguity {
    pub fn as_str(self) -> &'static str {
        match self {
            Ambiguity::NotAscii => "body has a byte outside ASCII",
            Ambiguity::Semicolon => "body has a ';'",
            Ambiguity::EmptySegment => "body has an empty parameter name",
            Ambiguity::NameNotPlain => "a parameter name is not plain [A-Za-z0-9_.-]",
            Ambiguity::MalformedEscape => "a value has a malformed percent-escape",
            Ambiguity::ValueNotUtf8 => "a value's escapes do not decode to UTF-8",
        }
    }
}

/// Splits an unambiguous body into its segments; an empty body has none.
pub fn parse(body: &[u8]) -> Result<Vec<Pair<'_>>, Ambiguity> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    if !body.is_ascii() {
        return Err(Ambiguity::NotAscii);
    }
    if body.contains(&b';') {
        return Err(Ambiguity::Semicolon);
    }
    let mut pairs = Vec::with_capacity(16);
    for raw in segments(body) {
        let (name, raw_value) = match memchr::memchr(b'=', raw) {
            Some(eq) => (raw.get(..eq).unwrap_or_default(), raw.get(eq + 1..).unwrap_or_default()),
            None => (raw, &b""[..]),
        };
        if name.is_empty() {
            return Err(Ambiguity::EmptySegment);
        }
        if !name.iter().all(|&b| is_plain_name_byte(b)) {
            return Err(Ambiguity::NameNotPlain);
        }
        // A value without escapes is ASCII like the whole body, so UTF-8:
        // only decoded bytes need the check (saves a pass over the refresh
        // token, 2,200 Envoy instructions per request: bench/icount.sh).
        if let Cow::Owned(decoded) = decode(raw_value).ok_or(Ambiguity::MalformedEscape)? {
            if std::str::from_utf8(&decoded).is_err() {
                return Err(Ambiguity::ValueNotUtf8);
            }
        }
        pairs.push(Pair { raw, name, raw_value });
    }
    Ok(pairs)
}

/// The `&`-separated segments of a body, as `split` would give them (a
/// trailing `&` ends with an empty one), found with memchr rather than a
/// byte-by-byte loop.
fn segments(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(body);
    std::iter::from_fn(move || {
        let current = rest?;
        match memchr::memchr(b'&', current) {
            Some(at) => {
                rest = current.get(at + 1..);
                current.get(..at)
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// The bytes a parameter name may have: every reader reads them alike.
pub fn is_plain_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Decodes `+` as space and `%XX` as a byte. A `%` not followed by two hex
/// digits is malformed (`None`): Keycloak refuses it, so the filter must not
/// guess.
pub fn decode(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    if memchr::memchr2(b'%', b'+', raw).is_none() {
        return Some(Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex_value(*bytes.next()?)?;
                let lo = hex_value(*bytes.next()?)?;
                out.push(hi << 4 | lo);
            }
            other => out.push(other),
        }
    }
    Some(Cow::Owned(out))
}

/// Encodes bytes the way browsers encode form values: unreserved bytes stay,
/// space becomes `+`, everything else `%XX`.
pub fn encode_into(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b),
            b' ' => out.push(b'+'),
            _ => {
                out.push(b'%');
                out.push(hex_digit(b >> 4));
                out.push(hex_digit(b & 0x0f));
            }
        }
    }
}

fn hex_digit(nibble: u8) -> u8 {
    match nibble {
        0..=9 => b'0' + nibble,
        _ => b'A' + (nibble & 0x0f) - 10,
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &[u8]) -> Vec<Vec<u8>> {
        parse(body).unwrap().iter().map(|p| p.name.to_vec()).collect()
    }

    #[test]
    fn splits_into_segments_keeping_raw_bytes() {
        let pairs = parse(b"a=1&b=%41+B&c").unwrap();
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[1].raw, b"b=%41+B");
        assert_eq!(pairs[1].value().as_ref(), b"A B");
        assert_eq!(pairs[2].name, b"c");
        assert_eq!(pairs[2].value().as_ref(), b"");
    }

    #[test]
    fn an_empty_body_has_no_segments() {
        assert_eq!(parse(b""), Ok(Vec::new()));
    }

    #[test]
    fn segments_are_split_on_ampersands() {
        for body in [&b"a=1&b=2"[..], b"a", b"&", b"a&&b", b"&a&", b"a=1&b=&c", b""] {
            let want: Vec<&[u8]> = body.split(|&b| b == b'&').collect();
            assert_eq!(segments(body).collect::<Vec<_>>(), want, "{body:?}");
        }
    }

    #[test]
    fn value_may_contain_equals() {
        let pairs = parse(b"t=a=b==").unwrap();
        assert_eq!(pairs[0].value().as_ref(), b"a=b==");
    }

    #[test]
    fn plain_names_of_every_allowed_byte() {
        assert_eq!(
            names(b"client_id=x&A.z-9_=y"),
            vec![b"client_id".to_vec(), b"A.z-9_".to_vec()]
        );
    }

    #[test]
    fn escaped_or_odd_names_are_ambiguous() {
        // Keycloak decodes names with the Content-Type charset: `%67rant_type`
        // is `grant_type` to one reader and not to another.
        for body in [
            &b"client%5Fid=x"[..],
            b"a+b=y",
            b"grant type=x",
            b"a*=1",
            b"a/b=1",
            b"\x00=1",
        ] {
            assert_eq!(parse(body), Err(Ambiguity::NameNotPlain), "{body:?}");
        }
    }

    #[test]
    fn empty_names_and_segments_are_ambiguous() {
        // Keycloak counts `&&` and `=x` as a parameter named "".
        for body in [&b"&a=1"[..], b"a=1&&b=2", b"a=1&", b"=x", b"a=1&=x", b"&", b"="] {
            assert_eq!(parse(body), Err(Ambiguity::EmptySegment), "{body:?}");
        }
    }

    #[test]
    fn a_semicolon_anywhere_is_ambiguous() {
        // Some readers split on `;` as well as `&`.
        for body in [&b"a=1;b=2"[..], b"t=a.b.c;x", b";"] {
            assert_eq!(parse(body), Err(Ambiguity::Semicolon), "{body:?}");
        }
    }

    #[test]
    fn raw_non_ascii_is_ambiguous() {
        // Keycloak reads raw bytes as Latin-1 characters, a BOM included.
        assert_eq!(parse(b"\xef\xbb\xbfgrant_type=x"), Err(Ambiguity::NotAscii));
        assert_eq!(parse(b"a=\xc3\xa9"), Err(Ambiguity::NotAscii));
    }

    #[test]
    fn malformed_escapes_anywhere_are_ambiguous() {
        for body in [&b"a=%"[..], b"a=%4", b"a=%zz", b"a=1&b=x%4g"] {
            assert_eq!(parse(body), Err(Ambiguity::MalformedEscape), "{body:?}");
        }
        assert_eq!(decode(b"%"), None);
        assert_eq!(decode(b"a%4g"), None);
    }

    #[test]
    fn escapes_must_decode_to_utf8() {
        assert_eq!(parse(b"a=%FF%FE"), Err(Ambiguity::ValueNotUtf8));
        assert_eq!(parse(b"a=%C3"), Err(Ambiguity::ValueNotUtf8));
        let pairs = parse(b"a=%C3%A9%00").unwrap();
        assert_eq!(pairs[0].value().as_ref(), "\u{e9}\0".as_bytes());
    }

    #[test]
    fn raw_control_characters_in_values_are_ascii() {
        let pairs = parse(b"a=\x00\x01 b").unwrap();
        assert_eq!(pairs[0].value().as_ref(), b"\x00\x01 b");
    }

    #[test]
    fn decoding_without_escapes_borrows() {
        assert!(matches!(decode(b"plain"), Some(Cow::Borrowed(_))));
    }

    #[test]
    fn encodes_like_a_browser() {
        let mut out = Vec::new();
        encode_into(b"a b&c=d/\xffZz09*-._~", &mut out);
        assert_eq!(out, b"a+b%26c%3Dd%2F%FFZz09*-._%7E");
    }

    #[test]
    fn encode_then_decode_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        encode_into(&all, &mut out);
        assert_eq!(decode(&out).unwrap().as_ref(), all.as_slice());
    }

    #[test]
    fn huge_values_are_fine() {
        let body = [b"a=".as_slice(), &vec![b'x'; 1 << 20]].concat();
        let pairs = parse(&body).unwrap();
        assert_eq!(pairs[0].value().len(), 1 << 20);
    }
}
