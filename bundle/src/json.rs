//! A small JSON tree that rejects duplicate members, and a deterministic
//! writer.
//!
//! `serde_json` deserializing into a map keeps the last of two equal member
//! names silently; a SPIFFE bundle with two `keys` members (or a bundle map
//! with the same trust domain twice) must be rejected instead, so documents
//! are first read into [`Json`] by a visitor that fails on a repeated name.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::BundleError;

/// Marks our duplicate-member message inside a `serde_json::Error`, so it can
/// be turned back into [`BundleError::DuplicateMember`].
const DUPLICATE_MARKER: &str = "\u{1}duplicate member:";

/// A parsed JSON value. Objects are ordered maps whose names are unique.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A non-negative integer that fits in `u64`.
    Unsigned(u64),
    /// A negative integer that fits in `i64`.
    Negative(i64),
    /// Any other number (fractions, exponents, integers beyond 64 bits).
    Float,
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    /// The JSON type name, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Unsigned(_) | Json::Negative(_) | Json::Float => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "an array",
            Json::Obj(_) => "an object",
        }
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(if v >= 0 {
            Json::Unsigned(v.unsigned_abs())
        } else {
            Json::Negative(v)
        })
    }

    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Json, E> {
        Ok(Json::Float)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARKER}{name}")));
            }
            let value = map.next_value::<Json>()?;
            members.insert(name, value);
        }
        Ok(Json::Obj(members))
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Parses a whole document (trailing non-whitespace is an error).
pub(crate) fn parse(input: &[u8]) -> Result<Json, BundleError> {
    serde_json::from_slice::<Json>(input).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        let mut message = e.to_string();
        // serde_json appends " at line L column C"; we report them as fields.
        let suffix = format!(" at line {line} column {column}");
        if line != 0 && message.ends_with(&suffix) {
            message.truncate(message.len() - suffix.len());
        }
        match message.strip_prefix(DUPLICATE_MARKER) {
            Some(name) => BundleError::DuplicateMember {
                name: name.to_owned(),
                line,
                column,
            },
            None => BundleError::Json {
                line,
                column,
                message,
            },
        }
    })
}

/// Appends `s` as a JSON string literal, escaping only what JSON requires
/// (`"`, `\` and control characters), as RFC 8785 does.
pub(crate) fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes an object whose members are given in order; the caller passes them
/// sorted by name so output is canonical.
pub(crate) struct ObjectWriter<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    pub(crate) fn new(out: &'a mut String) -> Self {
        out.push('{');
        ObjectWriter { out, first: true }
    }

    /// Starts a member and returns the buffer to write its value into.
    pub(crate) fn member(&mut self, name: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_str(self.out, name);
        self.out.push(':');
        self.out
    }

    pub(crate) fn finish(self) {
        self.out.push('}');
    }
}
