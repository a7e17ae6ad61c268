//! Word-at-a-time byte search. Splitting the body and scanning the token's
//! payload are the decision's hot loops; wasm32 has 64-bit integer operations
//! but no `memchr`, so eight bytes are tested per step.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is zero. Borrows only run
/// towards higher bytes, so the lowest bit set always marks the first zero
/// byte (higher ones may be marked wrongly; they are never read).
#[inline(always)]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// Marks the bytes of `word` equal to `byte` (see `zero_bytes`).
#[inline(always)]
pub fn bytes_equal(word: u64, byte: u8) -> u64 {
    zero_bytes(word ^ (ONES * u64::from(byte)))
}

/// Marks the bytes of `word` below `limit` (`limit <= 128`; see `zero_bytes`).
#[inline(always)]
pub fn bytes_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// The index of the first byte matching `byte_matches`. `word_marks` must
/// mark, as `bytes_equal` does, the matching bytes of an 8-byte little-endian
/// word, exactly up to the first one.
#[inline(always)]
pub fn position(haystack: &[u8], word_marks: impl Fn(u64) -> u64, byte_matches: impl Fn(u8) -> bool) -> Option<usize> {
    let mut chunks = haystack.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        if let Some(word) = chunk.first_chunk::<8>() {
            let marks = word_marks(u64::from_le_bytes(*word));
            if marks != 0 {
                return Some(offset + (marks.trailing_zeros() / 8) as usize);
            }
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| byte_matches(b))
        .map(|i| offset + i)
}

/// The index of the first `needle` in `haystack`.
#[inline]
pub fn find(haystack: &[u8], needle: u8) -> Option<usize> {
    position(haystack, |w| bytes_equal(w, needle), |b| b == needle)
}

/// `haystack` split at every `separator`, like `<[u8]>::split`.
pub fn split(haystack: &[u8], separator: u8) -> Split<'_> {
    Split {
        rest: Some(haystack),
        separator,
    }
}

pub struct Split<'a> {
    rest: Option<&'a [u8]>,
    separator: u8,
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match find(rest, self.separator) {
            Some(at) => {
                let (segment, tail) = rest.split_at_checked(at)?;
                self.rest = tail.get(1..);
                Some(segment)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// `haystack` before and after its first `separator`, if it has one.
pub fn split_once(haystack: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = find(haystack, separator)?;
    let (before, after) = haystack.split_at_checked(at)?;
    Some((before, after.get(1..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_occurrence_at_every_offset_and_length() {
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![b'x'; len];
                hay[at] = b'&';
                if at + 3 < len {
                    hay[at + 3] = b'&';
                }
                assert_eq!(find(&hay, b'&'), Some(at), "len {len} at {at}");
            }
            assert_eq!(find(&vec![b'x'; len], b'&'), None);
        }
    }

    #[test]
    fn no_false_matches_from_neighbouring_bytes() {
        // Bytes one above or below the needle, and high bytes, in every lane.
        let hay: Vec<u8> = (0..=255u8).filter(|&b| b != b'&').collect();
        assert_eq!(find(&hay, b'&'), None);
        assert_eq!(find(&[0x80, 0x27, 0x25, 0xa6, 0, 0xff, 0x26], b'&'), Some(6));
    }

    #[test]
    fn the_first_mark_is_exact_for_every_pair_of_bytes() {
        // Any byte before a match must not be marked, whatever follows.
        for first in 0..=255u8 {
            for second in 0..=255u8 {
                let word = u64::from_le_bytes([b'a', first, second, b'a', b'a', b'a', b'a', b'a']);
                let lowest = |marks: u64| (marks != 0).then(|| marks.trailing_zeros() / 8);
                let expect = |hit: &dyn Fn(u8) -> bool| {
                    [b'a', first, second, b'a']
                        .iter()
                        .position(|&b| hit(b))
                        .map(|i| i as u32)
                };
                assert_eq!(lowest(bytes_equal(word, b'&')), expect(&|b| b == b'&'));
                assert_eq!(lowest(bytes_below(word, 0x20)), expect(&|b| b < 0x20));
            }
        }
    }

    #[test]
    fn split_matches_the_standard_split() {
        for input in [&b""[..], b"&", b"a", b"a&b", b"&&a&&", b"a=1&bb=22&ccc=333&dddd=4444&e"] {
            let ours: Vec<&[u8]> = split(input, b'&').collect();
            let std: Vec<&[u8]> = input.split(|&b| b == b'&').collect();
            assert_eq!(ours, std, "{:?}", String::from_utf8_lossy(input));
        }
        assert_eq!(split_once(b"a=b=c", b'='), Some((&b"a"[..], &b"b=c"[..])));
        assert_eq!(split_once(b"abc", b'='), None);
    }
}
