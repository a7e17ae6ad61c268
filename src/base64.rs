//! Base64 (RFC 4648): the URL-safe alphabet of JWS segments and the standard
//! one of Basic credentials. Decoding the token payload is the largest single
//! cost of a decision; a table and one 24-bit group per step is all it needs.
//!
//! Decoding is strict where it matters for agreement with Keycloak: unknown
//! characters, a length that leaves a lone character, padding anywhere but at
//! the end, and non-zero bits after the last byte are refused. Padding is
//! optional (JWS omits it); when present it must complete the last group.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alphabet {
    encode: &'static [u8; 64],
    decode: [u8; 256],
}

const INVALID: u8 = 0xff;

// Evaluated at compile time only (for the two constants below): an index out
// of bounds would fail the build, never a request.
#[allow(clippy::indexing_slicing)]
const fn alphabet(encode: &'static [u8; 64]) -> Alphabet {
    let mut decode = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        decode[encode[i] as usize] = i as u8;
        i += 1;
    }
    Alphabet { encode, decode }
}

/// `A-Z a-z 0-9 - _` (RFC 4648 section 5): JWS segments.
pub const URL_SAFE: Alphabet = alphabet(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
/// `A-Z a-z 0-9 + /` (RFC 4648 section 4): HTTP Basic credentials.
pub const STANDARD: Alphabet = alphabet(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidBase64;

impl Alphabet {
    #[inline(always)]
    fn value(&self, c: u8) -> u32 {
        u32::from(self.decode.get(usize::from(c)).copied().unwrap_or(INVALID))
    }

    #[inline(always)]
    fn char(&self, sextet: u32) -> u8 {
        self.encode.get((sextet & 63) as usize).copied().unwrap_or(b'=')
    }

    pub fn decode(&self, input: &[u8]) -> Result<Vec<u8>, InvalidBase64> {
        let data = match input {
            [rest @ .., b'=', b'='] | [rest @ .., b'='] if input.len() % 4 == 0 => rest,
            _ => input,
        };
        let full = data.len() / 4;
        let mut out = vec![0u8; full * 3];
        let mut groups = data.chunks_exact(4);
        for (group, bytes) in groups.by_ref().zip(out.chunks_exact_mut(3)) {
            let (&[a, b, c, d], [x, y, z]) = (group, bytes) else {
                return Err(InvalidBase64);
            };
            let (a, b, c, d) = (self.value(a), self.value(b), self.value(c), self.value(d));
            // INVALID has its high bit set; sextets never do.
            if (a | b | c | d) & 0x80 != 0 {
                return Err(InvalidBase64);
            }
            let n = a << 18 | b << 12 | c << 6 | d;
            (*x, *y, *z) = ((n >> 16) as u8, (n >> 8) as u8, n as u8);
        }
        match *groups.remainder() {
            [] => {}
            [a, b] => {
                let (a, b) = (self.value(a), self.value(b));
                if (a | b) & 0x80 != 0 || b & 0x0f != 0 {
                    return Err(InvalidBase64);
                }
                out.push((a << 2 | b >> 4) as u8);
            }
            [a, b, c] => {
                let (a, b, c) = (self.value(a), self.value(b), self.value(c));
                if (a | b | c) & 0x80 != 0 || c & 0x03 != 0 {
                    return Err(InvalidBase64);
                }
                let n = a << 18 | b << 12 | c << 6;
                out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
            }
            _ => return Err(InvalidBase64),
        }
        Ok(out)
    }

    /// Encodes with padding (Basic credentials carry it).
    pub fn encode(&self, input: &[u8]) -> String {
        let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
        let mut groups = input.chunks_exact(3);
        for group in groups.by_ref() {
            let &[a, b, c] = group else { break };
            let n = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
            for shift in [18, 12, 6, 0] {
                out.push(char::from(self.char(n >> shift)));
            }
        }
        match *groups.remainder() {
            [a] => {
                let n = u32::from(a) << 16;
                out.push(char::from(self.char(n >> 18)));
                out.push(char::from(self.char(n >> 12)));
                out.push_str("==");
            }
            [a, b] => {
                let n = u32::from(a) << 16 | u32::from(b) << 8;
                for shift in [18, 12, 6] {
                    out.push(char::from(self.char(n >> shift)));
                }
                out.push('=');
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(STANDARD.encode(plain.as_bytes()), encoded);
            assert_eq!(STANDARD.decode(encoded.as_bytes()).unwrap(), plain.as_bytes());
            let unpadded = encoded.trim_end_matches('=');
            assert_eq!(URL_SAFE.decode(unpadded.as_bytes()).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn alphabets_differ_in_two_characters() {
        assert_eq!(URL_SAFE.decode(b"-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(STANDARD.decode(b"+/8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(URL_SAFE.decode(b"+/8"), Err(InvalidBase64));
        assert_eq!(STANDARD.decode(b"-_8="), Err(InvalidBase64));
    }

    #[test]
    fn refuses_what_is_not_canonical_base64() {
        for bad in [
            &b"Z"[..],    // a lone character
            b"Zh",        // bits after the last byte
            b"Zm9=",      // likewise, padded
            b"Zg=",       // padding that does not complete the group
            b"Z===",      // too much padding
            b"Zg==Zg==",  // padding before the end
            b"Zm 9v",     // a space
            b"Zm9v\n",    // a line break
            b"\xc3\xa9A", // not ASCII
        ] {
            assert_eq!(
                URL_SAFE.decode(bad),
                Err(InvalidBase64),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
