//! The configuration's JSON read one field at a time, so that an error names
//! the field it is in (`clients[0].allowed_callers[1]`) and never a value.
//!
//! serde_json parses everything: the whole document once, for its syntax,
//! then each member's value by itself, from the raw JSON text it kept
//! (`RawValue`). This file only walks objects and lists and says where a
//! value of the wrong type is. It replaced serde_path_to_error, whose
//! wrappers cost the module 15.9 KB more than this file (bench/LIMITS.md,
//! issue 27).

use super::{error, expected, ConfigError};
use crate::json_members::Members;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The document, checked for JSON syntax and for nothing after it.
/// Errors give only the position: the input may hold a secret.
pub(super) fn document(json: &[u8]) -> Result<&RawValue, ConfigError> {
    let not_json = |e: serde_json::Error| {
        error(
            "(root)",
            format!("is not valid JSON (line {}, column {})", e.line(), e.column()),
        )
    };
    let mut reader = serde_json::Deserializer::from_slice(json);
    let root = <&RawValue>::deserialize(&mut reader).map_err(not_json)?;
    reader.end().map_err(not_json)?;
    Ok(root)
}

/// An object of the configuration: its members in document order, each
/// known and given once.
pub(super) struct Object<'a> {
    /// Where the object is (`clients[0]`), empty at the root.
    path: String,
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Object<'a> {
    /// Reads `raw` as an object at `path` (`what`: the name [`expected`]
    /// knows it by) whose fields are named in `known`.
    pub(super) fn read(raw: &'a RawValue, path: &str, what: &str, known: &[&str]) -> Result<Self, ConfigError> {
        let at = if path.is_empty() { "(root)" } else { path };
        let Members(members) = serde_json::from_str(raw.get()).map_err(|_| error(at, expected(what)))?;
        let object = Object {
            path: path.to_owned(),
            members,
        };
        for (i, (name, _)) in object.members.iter().enumerate() {
            if !known.contains(&name.as_ref()) {
                return Err(error(
                    object.field(name),
                    format!("is not a known field (known: {})", known.join(", ")),
                ));
            }
            // Only known names come before this one, each once: a few
            // comparisons at most.
            if object.members.iter().take(i).any(|(earlier, _)| earlier == name) {
                return Err(error(object.field(name), "is given twice"));
            }
        }
        Ok(object)
    }

    /// A field that may be absent; `null` counts as absent.
    pub(super) fn optional<T: Deserialize<'a>>(&self, name: &str) -> Result<Option<T>, ConfigError> {
        match self.member(name) {
            None => Ok(None),
            Some(raw) => self.value(name, raw),
        }
    }

    /// A field that may be absent (then `T::default()`), but not `null`.
    pub(super) fn defaulted<T: Deserialize<'a> + Default>(&self, name: &str) -> Result<T, ConfigError> {
        match self.member(name) {
            None => Ok(T::default()),
            Some(raw) => self.value(name, raw),
        }
    }

    /// A field that must be there, and not `null`.
    pub(super) fn required<T: Deserialize<'a>>(&self, name: &str) -> Result<T, ConfigError> {
        match self.member(name) {
            None => Err(error(self.field(name), "is missing")),
            Some(raw) => self.value(name, raw),
        }
    }

    /// A list of strings that may be absent (or `null`).
    pub(super) fn strings(&self, name: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(items) = self.optional::<Vec<&RawValue>>(name)? else {
            return Ok(None);
        };
        self.items(name, items).map(Some)
    }

    /// A list of strings that must be there.
    pub(super) fn required_strings(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        let items = self.required::<Vec<&RawValue>>(name)?;
        self.items(name, items)
    }

    /// Each item of list `name` as a string; an error names the item.
    fn items(&self, name: &str, items: Vec<&RawValue>) -> Result<Vec<String>, ConfigError> {
        let item = |(i, raw): (usize, &RawValue)| {
            serde_json::from_str(raw.get()).map_err(|_| error(format!("{}[{i}]", self.field(name)), expected("[]")))
        };
        items.into_iter().enumerate().map(item).collect()
    }

    /// `name`'s value as a `T`; an error says what the field must be.
    fn value<T: Deserialize<'a>>(&self, name: &str, raw: &'a RawValue) -> Result<T, ConfigError> {
        serde_json::from_str(raw.get()).map_err(|_| error(self.field(name), expected(name)))
    }

    fn member(&self, name: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(n, _)| n == name).map(|&(_, raw)| raw)
    }

    /// `clients[0].realms`, or `realms` at the root. A name from the input
    /// is cut to 64 characters.
    fn field(&self, name: &str) -> String {
        let name: String = name.chars().take(64).collect();
        if self.path.is_empty() {
            name
        } else {
            format!("{}.{name}", self.path)
        }
    }
}
