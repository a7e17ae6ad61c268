//! Whole JSON documents as a tree, for the plugin configuration (read once
//! per configuration, never per request). Same grammar and limits as the
//! payload reader; a repeated member name keeps its last value.

use super::{NotJsonObject, Reader, MAX_DEPTH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A number, as written (the configuration only has whole numbers).
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in document order.
    Object(Vec<(String, Value)>),
}

impl Value {
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A number written as plain digits that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(members) => Some(members),
            _ => None,
        }
    }

    /// A member of an object; the last one when the name repeats.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_object()?.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// Where a document stops being JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based, as editors count.
    pub line: usize,
    pub column: usize,
}

impl SyntaxError {
    fn at(json: &[u8], offset: usize) -> Self {
        let before = json.get(..offset).unwrap_or(json);
        let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        SyntaxError {
            line: before.iter().filter(|&&b| b == b'\n').count() + 1,
            column: offset - line_start + 1,
        }
    }
}

pub fn parse(json: &[u8]) -> Result<Value, SyntaxError> {
    if let Err(e) = std::str::from_utf8(json) {
        return Err(SyntaxError::at(json, e.valid_up_to()));
    }
    let mut reader = Reader { bytes: json, pos: 0 };
    let parsed = reader.value(1).and_then(|value| {
        reader.skip_whitespace();
        if reader.pos == json.len() {
            Ok(value)
        } else {
            Err(NotJsonObject)
        }
    });
    parsed.map_err(|_| SyntaxError::at(json, reader.pos))
}

impl Reader<'_> {
    fn value(&mut self, depth: usize) -> Result<Value, NotJsonObject> {
        self.skip_whitespace();
        match self.peek().ok_or(NotJsonObject)? {
            b'{' => self
                .container(depth, b'}', |reader, members: &mut Vec<(String, Value)>| {
                    let mut name = Vec::new();
                    reader.string(Some(&mut name))?;
                    reader.skip_whitespace();
                    reader.expect(b':')?;
                    let value = reader.value(depth + 1)?;
                    // The document is UTF-8 and escapes decode to UTF-8.
                    members.push((String::from_utf8(name).map_err(|_| NotJsonObject)?, value));
                    Ok(())
                })
                .map(Value::Object),
            b'[' => self
                .container(depth, b']', |reader, items: &mut Vec<Value>| {
                    items.push(reader.value(depth + 1)?);
                    Ok(())
                })
                .map(Value::Array),
            b'"' => {
                let mut text = Vec::new();
                self.string(Some(&mut text))?;
                String::from_utf8(text).map(Value::String).map_err(|_| NotJsonObject)
            }
            b't' => self.literal(b"true").map(|()| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Value::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                self.number()?;
                let raw = self.bytes.get(start..self.pos).ok_or(NotJsonObject)?;
                Ok(Value::Number(String::from_utf8_lossy(raw).into_owned()))
            }
            _ => Err(NotJsonObject),
        }
    }

    /// `{...}` or `[...]`: `element` reads one member or item; recursion is
    /// bounded by `MAX_DEPTH`.
    fn container<T>(
        &mut self,
        depth: usize,
        close: u8,
        mut element: impl FnMut(&mut Self, &mut Vec<T>) -> Result<(), NotJsonObject>,
    ) -> Result<Vec<T>, NotJsonObject> {
        if depth > MAX_DEPTH {
            return Err(NotJsonObject);
        }
        self.pos += 1;
        let mut elements = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(elements);
        }
        loop {
            self.skip_whitespace();
            element(self, &mut elements)?;
            self.skip_whitespace();
            match self.next() {
                Some(b',') => {}
                Some(b) if b == close => return Ok(elements),
                _ => return Err(NotJsonObject),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(json: &str) -> Value {
        parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn reads_every_kind_of_value() {
        let v = parsed(r#" {"a": [1, -2.5e3, true, false, null, "x\u00e9\n"], "b": {}, "c": []} "#);
        assert_eq!(
            v.get("a").unwrap().as_array().unwrap(),
            &[
                Value::Number("1".into()),
                Value::Number("-2.5e3".into()),
                Value::Bool(true),
                Value::Bool(false),
                Value::Null,
                Value::String("x\u{e9}\n".into()),
            ]
        );
        assert_eq!(v.get("b"), Some(&Value::Object(vec![])));
        assert_eq!(v.get("c"), Some(&Value::Array(vec![])));
        assert_eq!(v.get("d"), None);
    }

    #[test]
    fn repeated_names_keep_the_last_value() {
        assert_eq!(parsed(r#"{"a":1,"a":2}"#).get("a").unwrap().as_u64(), Some(2));
    }

    #[test]
    fn whole_numbers_only_as_u64() {
        for (text, want) in [
            ("7", Some(7)),
            ("0", Some(0)),
            ("-1", None),
            ("1.0", None),
            ("1e3", None),
        ] {
            assert_eq!(parsed(text).as_u64(), want, "{text}");
        }
        assert_eq!(parsed("18446744073709551616").as_u64(), None);
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(parse(b"{").unwrap_err(), SyntaxError { line: 1, column: 2 });
        assert_eq!(
            parse(b"{\n  \"a\": tru }").unwrap_err(),
            SyntaxError { line: 2, column: 8 }
        );
        assert_eq!(parse(b"[1] x").unwrap_err(), SyntaxError { line: 1, column: 5 });
        assert_eq!(parse(b"[\"\xff\"]").unwrap_err(), SyntaxError { line: 1, column: 3 });
        assert!(parse(b"").is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parse(deep(MAX_DEPTH).as_bytes()).is_ok());
        assert!(parse(deep(MAX_DEPTH + 1).as_bytes()).is_err());
        assert!(parse(deep(100_000).as_bytes()).is_err());
    }
}
