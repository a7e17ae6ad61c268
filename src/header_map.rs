//! Request headers as Envoy hands them over in one host call
//! (`proxy_get_header_map_pairs`), read in place: a little-endian `u32`
//! count, then a `u32` name length and a `u32` value length per header, then
//! each name and each value followed by a NUL byte. One buffer per request,
//! instead of two allocations per header; malformed input reads as absent.

use crate::policy::RequestHeaders;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    bytes: Vec<u8>,
}

impl HeaderMap {
    pub fn new(bytes: Vec<u8>) -> Self {
        HeaderMap { bytes }
    }

    /// The headers in order, as (name, value); stops at the first
    /// inconsistency in the serialization.
    pub fn pairs(&self) -> Pairs<'_> {
        let count = read_u32(&self.bytes, 0).unwrap_or(0);
        // Each header takes at least 10 bytes (two lengths, two NULs): a
        // count larger than that is not believed.
        let count = count.min(self.bytes.len() / 10);
        Pairs {
            bytes: &self.bytes,
            index: 0,
            count,
            data: 4 + count * 8,
        }
    }
}

impl RequestHeaders for HeaderMap {
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs().find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }

    fn count(&self, name: &str) -> usize {
        self.pairs().filter(|(n, _)| *n == name.as_bytes()).count()
    }
}

pub struct Pairs<'a> {
    bytes: &'a [u8],
    index: usize,
    count: usize,
    /// Where the next name starts.
    data: usize,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        let lengths = 4 + self.index * 8;
        let name_len = read_u32(self.bytes, lengths)?;
        let value_len = read_u32(self.bytes, lengths + 4)?;
        let name = self.bytes.get(self.data..self.data.checked_add(name_len)?)?;
        let value_start = self.data + name_len + 1;
        let value = self.bytes.get(value_start..value_start.checked_add(value_len)?)?;
        self.data = value_start + value_len + 1;
        self.index += 1;
        Some((name, value))
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let word = bytes.get(at..)?.first_chunk::<4>()?;
    usize::try_from(u32::from_le_bytes(*word)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serializes as Envoy does.
    fn serialize(headers: &[(&str, &str)]) -> Vec<u8> {
        let mut out = (headers.len() as u32).to_le_bytes().to_vec();
        for (name, value) in headers {
            out.extend((name.len() as u32).to_le_bytes());
            out.extend((value.len() as u32).to_le_bytes());
        }
        for (name, value) in headers {
            out.extend(name.as_bytes());
            out.push(0);
            out.extend(value.as_bytes());
            out.push(0);
        }
        out
    }

    #[test]
    fn reads_every_header_in_order() {
        let headers = [(":method", "POST"), (":path", "/t"), ("empty", ""), ("x", "1")];
        let map = HeaderMap::new(serialize(&headers));
        let read: Vec<(&[u8], &[u8])> = map.pairs().collect();
        let want: Vec<(&[u8], &[u8])> = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        assert_eq!(read, want);
        assert_eq!(map.get(":path"), Some(&b"/t"[..]));
        assert_eq!(map.get("empty"), Some(&b""[..]));
        assert_eq!(map.get("missing"), None);
    }

    #[test]
    fn first_of_repeated_headers_wins() {
        let map = HeaderMap::new(serialize(&[("a", "1"), ("b", "0"), ("a", "2")]));
        assert_eq!(map.get("a"), Some(&b"1"[..]));
        assert_eq!((map.count("a"), map.count("b"), map.count("c")), (2, 1, 0));
    }

    #[test]
    fn empty_and_malformed_buffers_read_as_no_headers() {
        assert_eq!(HeaderMap::default().pairs().count(), 0);
        assert_eq!(HeaderMap::new(vec![1, 0]).pairs().count(), 0);
        // A count far beyond the buffer, and lengths running past its end.
        assert_eq!(HeaderMap::new(u32::MAX.to_le_bytes().to_vec()).pairs().count(), 0);
        let mut bytes = serialize(&[("name", "value"), ("b", "2")]);
        bytes.truncate(bytes.len() - 3);
        let map = HeaderMap::new(bytes);
        assert_eq!(map.pairs().count(), 1);
        assert_eq!(map.get("b"), None);
    }

    #[test]
    fn never_panics_on_any_truncation() {
        let bytes = serialize(&[
            (":method", "POST"),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        for len in 0..=bytes.len() {
            let map = HeaderMap::new(bytes.get(..len).unwrap().to_vec());
            let _ = map.pairs().count();
            let _ = map.get("content-type");
        }
    }
}
