//! A validating JSON reader for exactly what the filter needs from a token
//! payload: the values of a few top-level members of an object.
//!
//! It accepts what RFC 8259 accepts (as serde_json does, which the tests use as
//! the reference), allocates only for the members asked for, and walks nested
//! values without recursion, to a bounded depth. Reading a ~300-byte payload
//! this way is several times faster than building a `serde_json::Value`.

use crate::scan;

pub mod value;

/// A top-level member's value, as far as the caller cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    Absent,
    String(String),
    /// Present, but not a string.
    Other,
}

/// The input is not a JSON object (or nests deeper than [`MAX_DEPTH`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJsonObject;

/// Nesting deeper than this is refused, as serde_json refuses it.
pub const MAX_DEPTH: usize = 128;

type Result<T> = std::result::Result<T, NotJsonObject>;

/// Reads the top-level members named in `names` from a JSON object. A name
/// that appears twice keeps its last value (as serde_json and Keycloak's
/// JSON reader do).
pub fn top_level_members<const N: usize>(json: &[u8], names: [&str; N]) -> Result<[Member; N]> {
    let mut found: [Member; N] = std::array::from_fn(|_| Member::Absent);
    // JSON text is UTF-8: checked once here rather than string by string.
    std::str::from_utf8(json).map_err(|_| NotJsonObject)?;
    let mut reader = Reader { bytes: json, pos: 0 };
    let mut key = Vec::new();
    reader.skip_whitespace();
    reader.expect(b'{')?;
    reader.skip_whitespace();
    if reader.peek() == Some(b'}') {
        reader.pos += 1;
    } else {
        loop {
            key.clear();
            reader.string(Some(&mut key))?;
            reader.skip_whitespace();
            reader.expect(b':')?;
            reader.skip_whitespace();
            match names.iter().position(|name| name.as_bytes() == key.as_slice()) {
                Some(index) if reader.peek() == Some(b'"') => {
                    let mut value = Vec::new();
                    reader.string(Some(&mut value))?;
                    let value = String::from_utf8(value).map_err(|_| NotJsonObject)?;
                    set(&mut found, index, Member::String(value));
                }
                Some(index) => {
                    reader.skip_value(1)?;
                    set(&mut found, index, Member::Other);
                }
                None => reader.skip_value(1)?,
            }
            reader.skip_whitespace();
            match reader.next() {
                Some(b',') => reader.skip_whitespace(),
                Some(b'}') => break,
                _ => return Err(NotJsonObject),
            }
        }
    }
    reader.skip_whitespace();
    if reader.pos == json.len() {
        Ok(found)
    } else {
        Err(NotJsonObject)
    }
}

fn set<const N: usize>(found: &mut [Member; N], index: usize, member: Member) {
    if let Some(slot) = found.get_mut(index) {
        *slot = member;
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline(always)]
    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.next() == Some(byte) {
            Ok(())
        } else {
            Err(NotJsonObject)
        }
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            Err(NotJsonObject)
        }
    }

    fn digits(&mut self) -> Result<()> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        if self.pos > start {
            Ok(())
        } else {
            Err(NotJsonObject)
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.next() {
            Some(b'0') => {}
            Some(b'1'..=b'9') => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
            }
            _ => return Err(NotJsonObject),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.digits()?;
        }
        Ok(())
    }

    /// A string, decoded into `out` if given; validated either way.
    fn string(&mut self, mut out: Option<&mut Vec<u8>>) -> Result<()> {
        self.expect(b'"')?;
        loop {
            // Runs of plain bytes in one step (most of a token's payload).
            let rest = self.bytes.get(self.pos..).unwrap_or_default();
            let plain = scan::position(
                rest,
                |w| scan::bytes_equal(w, b'"') | scan::bytes_equal(w, b'\\') | scan::bytes_below(w, 0x20),
                |b| b == b'"' || b == b'\\' || b < 0x20,
            )
            .unwrap_or(rest.len());
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(rest.get(..plain).unwrap_or_default());
            }
            self.pos += plain;
            match self.next().ok_or(NotJsonObject)? {
                b'"' => break,
                b'\\' => {
                    let decoded = self.escape()?;
                    if let Some(out) = out.as_deref_mut() {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(decoded.encode_utf8(&mut buf).as_bytes());
                    }
                }
                0x00..=0x1f => return Err(NotJsonObject),
                byte => {
                    if let Some(out) = out.as_deref_mut() {
                        out.push(byte);
                    }
                }
            }
        }
        // UTF-8 is checked once for the whole text by the entry points
        // (`top_level_members`, `value::parse`).
        Ok(())
    }

    /// After a backslash: one escape, surrogate pairs included.
    fn escape(&mut self) -> Result<char> {
        let simple = match self.next().ok_or(NotJsonObject)? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return Err(NotJsonObject),
        };
        Ok(simple)
    }

    fn unicode_escape(&mut self) -> Result<char> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                self.literal(b"\\u")?;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(NotJsonObject);
                }
                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(NotJsonObject),
            _ => first,
        };
        char::from_u32(code).ok_or(NotJsonObject)
    }

    fn hex4(&mut self) -> Result<u32> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = match self.next().ok_or(NotJsonObject)? {
                b @ b'0'..=b'9' => b - b'0',
                b @ b'a'..=b'f' => b - b'a' + 10,
                b @ b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(NotJsonObject),
            };
            value = value << 4 | u32::from(digit);
        }
        Ok(value)
    }

    /// Skips one value without recursion. `depth` is the nesting of the
    /// container holding it.
    fn skip_value(&mut self, depth: usize) -> Result<()> {
        // true: inside an object, false: inside an array.
        let mut open: Vec<bool> = Vec::new();
        loop {
            // A value starts here.
            self.skip_whitespace();
            match self.peek().ok_or(NotJsonObject)? {
                b'{' | b'[' => {
                    let is_object = self.peek() == Some(b'{');
                    if depth + open.len() + 1 > MAX_DEPTH {
                        return Err(NotJsonObject);
                    }
                    self.pos += 1;
                    self.skip_whitespace();
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        open.push(is_object);
                        if is_object {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                b'"' => self.string(None)?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return Err(NotJsonObject),
            }
            // A value ended: close containers until one continues.
            loop {
                let Some(&is_object) = open.last() else {
                    return Ok(());
                };
                self.skip_whitespace();
                match self.next() {
                    Some(b',') => {
                        if is_object {
                            self.skip_whitespace();
                            self.member_name()?;
                        }
                        break;
                    }
                    Some(b'}') if is_object => {
                        open.pop();
                    }
                    Some(b']') if !is_object => {
                        open.pop();
                    }
                    _ => return Err(NotJsonObject),
                }
            }
        }
    }

    /// `"name" :` inside a skipped object.
    fn member_name(&mut self) -> Result<()> {
        self.string(None)?;
        self.skip_whitespace();
        self.expect(b':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<[Member; 2]> {
        top_level_members(json.as_bytes(), ["azp", "iss"])
    }

    fn s(value: &str) -> Member {
        Member::String(value.to_owned())
    }

    #[test]
    fn reads_the_named_string_members() {
        assert_eq!(
            read(r#"{"iss":"http://k/realms/demo","azp":"a","typ":"Refresh"}"#),
            Ok([s("a"), s("http://k/realms/demo")])
        );
        assert_eq!(read(r#" { "azp" : "a" } "#), Ok([s("a"), Member::Absent]));
        assert_eq!(read("{}"), Ok([Member::Absent, Member::Absent]));
    }

    #[test]
    fn other_types_are_other() {
        assert_eq!(read(r#"{"azp":1,"iss":null}"#), Ok([Member::Other, Member::Other]));
        assert_eq!(
            read(r#"{"azp":["a"],"iss":{"x":"y"}}"#),
            Ok([Member::Other, Member::Other])
        );
    }

    #[test]
    fn the_last_duplicate_wins() {
        assert_eq!(read(r#"{"azp":"a","azp":"b"}"#), Ok([s("b"), Member::Absent]));
        assert_eq!(read(r#"{"azp":"a","azp":7}"#), Ok([Member::Other, Member::Absent]));
    }

    #[test]
    fn escapes_are_decoded_in_names_and_values() {
        assert_eq!(
            read(r#"{"\u0061zp":"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}"#),
            Ok([s("x\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1f600}"), Member::Absent])
        );
    }

    #[test]
    fn skips_every_kind_of_value() {
        let json = r#"{"a":[1,-2.5e+3,0.1,true,false,null,"s",{"k":[{}]},[]],"b":{},"azp":"x","c":-0}"#;
        assert_eq!(read(json), Ok([s("x"), Member::Absent]));
    }

    #[test]
    fn refuses_what_json_refuses() {
        for json in [
            "",
            "[]",
            "\"azp\"",
            "{",
            "{\"azp\"}",
            r#"{"azp":}"#,
            r#"{"azp":"a",}"#,
            r#"{"azp":"a"} x"#,
            r#"{"azp":"a""iss":"b"}"#,
            r#"{azp:"a"}"#,
            r#"{"azp":'a'}"#,
            r#"{"x":01}"#,
            r#"{"x":1.}"#,
            r#"{"x":.1}"#,
            r#"{"x":1e}"#,
            r#"{"x":+1}"#,
            r#"{"x":tru}"#,
            r#"{"x":nul}"#,
            r#"{"x":[1,]}"#,
            r#"{"x":[1 2]}"#,
            r#"{"x":{"a" 1}}"#,
            r#"{"x":{"a":1,}}"#,
            r#"{"x":"\x"}"#,
            r#"{"x":"\u12"}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"x":"\udc00"}"#,
            r#"{"x":"\ud800\u0041"}"#,
            "{\"x\":\"\u{1}\"}",
            r#"{"x":[}"#,
            r#"{"x":]}"#,
            r#"{"x":{]}"#,
        ] {
            assert_eq!(read(json), Err(NotJsonObject), "{json}");
        }
        assert_eq!(top_level_members(b"{\"x\":\"\xff\"}", ["azp"]), Err(NotJsonObject));
        assert_eq!(
            top_level_members(b"{\"azp\":\"\xc3\x28\"}", ["azp"]),
            Err(NotJsonObject)
        );
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let ok = format!(r#"{{"x":{}{}}}"#, "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(read(&ok).is_ok());
        let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(read(&deep), Err(NotJsonObject));
        let huge = format!(r#"{{"x":{}}}"#, "[".repeat(1_000_000));
        assert_eq!(read(&huge), Err(NotJsonObject));
    }
}
