//! `application/x-www-form-urlencoded` bodies, read without copying and
//! written back byte for byte: a pair keeps its original bytes unless it is
//! one we replace.

use crate::scan;
use std::borrow::Cow;

/// One `name=value` segment of a form body, with the raw bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair<'a> {
    /// The segment exactly as sent (between two `&`, or the body's ends).
    pub raw: &'a [u8],
    /// The decoded name.
    pub name: Cow<'a, [u8]>,
    raw_value: &'a [u8],
}

impl<'a> Pair<'a> {
    /// The decoded value; `None` when its percent-encoding is malformed.
    pub fn value(&self) -> Option<Cow<'a, [u8]>> {
        decode(self.raw_value)
    }
}

/// The body could not be read as a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedName;

/// Splits a body into its segments, empty ones included (they are forwarded
/// as they are). Names are decoded now because every name is needed to find
/// duplicates; values are decoded on demand.
pub fn parse(body: &[u8]) -> Result<Vec<Pair<'_>>, MalformedName> {
    let mut pairs = Vec::with_capacity(16);
    for raw in scan::split(body, b'&') {
        let (raw_name, raw_value) = scan::split_once(raw, b'=').unwrap_or((raw, b""));
        let name = decode(raw_name).ok_or(MalformedName)?;
        pairs.push(Pair { raw, name, raw_value });
    }
    Ok(pairs)
}

/// Decodes `+` as space and `%XX` as a byte. A `%` not followed by two hex
/// digits is malformed (`None`): Keycloak refuses it, so the filter must not
/// guess.
pub fn decode(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
    let escaped = scan::position(
        raw,
        |w| scan::bytes_equal(w, b'%') | scan::bytes_equal(w, b'+'),
        |b| b == b'%' || b == b'+',
    );
    if escaped.is_none() {
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
        assert_eq!(pairs[1].value().unwrap().as_ref(), b"A B");
        assert_eq!(pairs[2].name.as_ref(), b"c");
        assert_eq!(pairs[2].value().unwrap().as_ref(), b"");
    }

    #[test]
    fn keeps_empty_segments() {
        assert_eq!(
            names(b"&a=1&&"),
            vec![b"".to_vec(), b"a".to_vec(), b"".to_vec(), b"".to_vec()]
        );
        assert_eq!(names(b""), vec![b"".to_vec()]);
    }

    #[test]
    fn value_may_contain_equals() {
        let pairs = parse(b"t=a=b==").unwrap();
        assert_eq!(pairs[0].value().unwrap().as_ref(), b"a=b==");
    }

    #[test]
    fn decodes_percent_and_plus_in_names() {
        assert_eq!(
            names(b"client%5Fid=x&a+b=y"),
            vec![b"client_id".to_vec(), b"a b".to_vec()]
        );
    }

    #[test]
    fn malformed_percent_encoding_is_refused() {
        assert_eq!(decode(b"%"), None);
        assert_eq!(decode(b"%4"), None);
        assert_eq!(decode(b"%zz"), None);
        assert_eq!(decode(b"a%4g"), None);
        assert_eq!(parse(b"a%=1"), Err(MalformedName));
        // A malformed value only fails when that value is read.
        let pairs = parse(b"a=%ZZ").unwrap();
        assert_eq!(pairs[0].value(), None);
    }

    #[test]
    fn non_utf8_bytes_pass_as_bytes() {
        let pairs = parse(b"a=\xff%FE").unwrap();
        assert_eq!(pairs[0].value().unwrap().as_ref(), b"\xff\xfe");
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
        assert_eq!(pairs[0].value().unwrap().len(), 1 << 20);
    }
}
