//! A JSON reader that rejects duplicate members, and a deterministic writer.
//!
//! `serde_json` deserializing into a map keeps the last of two equal member
//! names silently; a SPIFFE bundle with two `keys` members (or a bundle map
//! with the same trust domain twice) must be rejected instead, so documents
//! are read by a visitor that fails on a repeated name, into [`Json`] here
//! and into `serde_json::Value` for the JOSE headers and claims of
//! `spiffe-svid` (shared through [`__private::json`](crate::__private::json)).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::BundleError;

/// Marks our duplicate-member message inside a `serde_json::Error`, so it can
/// be told apart from syntax errors.
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

/// A tree of JSON values that [`parse`] can build: one constructor for each
/// kind of value, and objects that tell whether they hold a member.
pub trait JsonTree: Sized {
    /// The type of an object's members.
    type Members: Default;
    /// `null`.
    fn null() -> Self;
    /// `true` or `false`.
    fn boolean(value: bool) -> Self;
    /// A non-negative integer that fits in `u64`.
    fn unsigned(value: u64) -> Self;
    /// A negative integer that fits in `i64`.
    fn negative(value: i64) -> Self;
    /// Any other number; `None` refuses it (with the message "number is not
    /// finite").
    fn float(value: f64) -> Option<Self>;
    /// A string.
    fn string(value: String) -> Self;
    /// An array.
    fn array(items: Vec<Self>) -> Self;
    /// An object whose members were added with [`JsonTree::insert`].
    fn object(members: Self::Members) -> Self;
    /// Whether `members` holds a member called `name`.
    fn contains(members: &Self::Members, name: &str) -> bool;
    /// Adds a member (`name` is not in `members` yet).
    fn insert(members: &mut Self::Members, name: String, value: Self);
}

impl JsonTree for Json {
    type Members = BTreeMap<String, Json>;

    fn null() -> Self {
        Json::Null
    }

    fn boolean(value: bool) -> Self {
        Json::Bool(value)
    }

    fn unsigned(value: u64) -> Self {
        Json::Unsigned(value)
    }

    fn negative(value: i64) -> Self {
        Json::Negative(value)
    }

    fn float(_value: f64) -> Option<Self> {
        Some(Json::Float)
    }

    fn string(value: String) -> Self {
        Json::Str(value)
    }

    fn array(items: Vec<Self>) -> Self {
        Json::Arr(items)
    }

    fn object(members: Self::Members) -> Self {
        Json::Obj(members)
    }

    fn contains(members: &Self::Members, name: &str) -> bool {
        members.contains_key(name)
    }

    fn insert(members: &mut Self::Members, name: String, value: Self) {
        members.insert(name, value);
    }
}

impl JsonTree for serde_json::Value {
    type Members = serde_json::Map<String, serde_json::Value>;

    fn null() -> Self {
        serde_json::Value::Null
    }

    fn boolean(value: bool) -> Self {
        serde_json::Value::Bool(value)
    }

    fn unsigned(value: u64) -> Self {
        serde_json::Value::Number(value.into())
    }

    fn negative(value: i64) -> Self {
        serde_json::Value::Number(value.into())
    }

    fn float(value: f64) -> Option<Self> {
        serde_json::Number::from_f64(value).map(serde_json::Value::Number)
    }

    fn string(value: String) -> Self {
        serde_json::Value::String(value)
    }

    fn array(items: Vec<Self>) -> Self {
        serde_json::Value::Array(items)
    }

    fn object(members: Self::Members) -> Self {
        serde_json::Value::Object(members)
    }

    fn contains(members: &Self::Members, name: &str) -> bool {
        members.contains_key(name)
    }

    fn insert(members: &mut Self::Members, name: String, value: Self) {
        members.insert(name, value);
    }
}

/// Deserializes any JSON value into a `T`, refusing repeated member names.
struct Strict<T>(T);

impl<'de, T: JsonTree> Deserialize<'de> for Strict<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(StrictVisitor(PhantomData))
            .map(Strict)
    }
}

struct StrictVisitor<T>(PhantomData<T>);

impl<'de, T: JsonTree> Visitor<'de> for StrictVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<T, E> {
        Ok(T::boolean(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Ok(if v >= 0 {
            T::unsigned(v.unsigned_abs())
        } else {
            T::negative(v)
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        T::float(v).ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::string(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<T, E> {
        Ok(T::string(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::null())
    }

    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        Ok(T::null())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element::<Strict<T>>()? {
            items.push(item);
        }
        Ok(T::array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut members = T::Members::default();
        while let Some(name) = map.next_key::<String>()? {
            // Refused as soon as the name is read, before its value.
            if T::contains(&members, &name) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARKER}{name}")));
            }
            let Strict(value) = map.next_value::<Strict<T>>()?;
            T::insert(&mut members, name, value);
        }
        Ok(T::object(members))
    }
}

/// Why [`parse`] refused a document. Positions are `serde_json`'s: 1-based
/// line and column, both 0 when the input ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// An object has two members called `name`; the position is just after
    /// the second name.
    DuplicateMember {
        /// The repeated member name.
        name: String,
        /// Line of the second occurrence.
        line: usize,
        /// Column just after the second name.
        column: usize,
    },
    /// Not one JSON value (syntax, trailing data, nesting too deep, ...).
    Syntax {
        /// `serde_json`'s message, without its " at line L column C" end.
        message: String,
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
}

impl fmt::Display for JsonError {
    /// As `serde_json::Error` displays: the message, then " at line L
    /// column C" unless the line is 0.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, column) = match self {
            JsonError::DuplicateMember { name, line, column } => {
                write!(f, "duplicate member: {name}")?;
                (*line, *column)
            }
            JsonError::Syntax {
                message,
                line,
                column,
            } => {
                f.write_str(message)?;
                (*line, *column)
            }
        };
        if line != 0 {
            write!(f, " at line {line} column {column}")?;
        }
        Ok(())
    }
}

/// Parses a whole document (trailing non-whitespace is an error) into a
/// `T`, refusing duplicate member names in every object at any depth.
///
/// # Errors
///
/// [`JsonError::DuplicateMember`] for the first repeated name met,
/// [`JsonError::Syntax`] for anything else.
pub fn parse<T: JsonTree>(input: &[u8]) -> Result<T, JsonError> {
    match serde_json::from_slice::<Strict<T>>(input) {
        Ok(Strict(tree)) => Ok(tree),
        Err(e) => {
            let (line, column) = (e.line(), e.column());
            let mut message = e.to_string();
            // serde_json appends " at line L column C"; we keep them apart.
            let suffix = format!(" at line {line} column {column}");
            if line != 0 && message.ends_with(&suffix) {
                message.truncate(message.len() - suffix.len());
            }
            Err(match message.strip_prefix(DUPLICATE_MARKER) {
                Some(name) => JsonError::DuplicateMember {
                    name: name.to_owned(),
                    line,
                    column,
                },
                None => JsonError::Syntax {
                    message,
                    line,
                    column,
                },
            })
        }
    }
}

/// Parses a bundle document into a [`Json`] tree.
pub(crate) fn parse_document(input: &[u8]) -> Result<Json, BundleError> {
    parse(input).map_err(|e| match e {
        JsonError::DuplicateMember { name, line, column } => {
            BundleError::DuplicateMember { name, line, column }
        }
        JsonError::Syntax {
            message,
            line,
            column,
        } => BundleError::Json {
            line,
            column,
            message,
        },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_at_any_depth_in_both_trees() {
        for doc in [
            &br#"{"a":1,"a":2}"#[..],
            br#"{"b":{"a":1,"a":1}}"#,
            br#"{"b":[{"a":1,"a":1}]}"#,
            br#"[{"a":null,"a":"x"}]"#,
        ] {
            assert!(
                matches!(parse::<Json>(doc), Err(JsonError::DuplicateMember { ref name, .. }) if name == "a")
            );
            assert!(
                matches!(parse::<serde_json::Value>(doc), Err(JsonError::DuplicateMember { ref name, .. }) if name == "a")
            );
        }
        // Refused at the second name (its closing quote), before its value
        // is read.
        assert_eq!(
            parse::<serde_json::Value>(b"{\"k\":1,\n\"k\":"),
            Err(JsonError::DuplicateMember {
                name: "k".into(),
                line: 2,
                column: 3
            })
        );
    }

    #[test]
    fn values_and_errors_are_serde_json_s() {
        let doc = br#"{"f":1.5,"n":-3,"u":18446744073709551615,"b":[true,null,"x"],"o":{}}"#;
        assert_eq!(
            parse::<serde_json::Value>(doc).unwrap(),
            serde_json::from_slice::<serde_json::Value>(doc).unwrap()
        );
        let Json::Obj(members) = parse::<Json>(doc).unwrap() else {
            panic!("not an object");
        };
        assert_eq!(members.get("f"), Some(&Json::Float));
        assert_eq!(members.get("n"), Some(&Json::Negative(-3)));
        assert_eq!(members.get("u"), Some(&Json::Unsigned(u64::MAX)));

        // The error displays as serde_json's own does.
        for bad in [&b"{} x"[..], b"{\"a\":", b"[1,]", b"1e400", b""] {
            let ours = parse::<serde_json::Value>(bad).unwrap_err();
            let theirs = serde_json::from_slice::<serde_json::Value>(bad).unwrap_err();
            assert!(matches!(ours, JsonError::Syntax { .. }), "{ours:?}");
            assert_eq!(ours.to_string(), theirs.to_string());
        }
    }
}
