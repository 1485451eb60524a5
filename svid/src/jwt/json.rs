//! JSON decoding that refuses duplicate object members at any depth.
//!
//! `serde_json::Value` silently keeps the last of two members with the same
//! name. In a JOSE header or a claim set that is a classic confusion vector
//! (two parsers reading two different `alg` or `sub` values), so the header
//! and the claims are decoded through [`Strict`] instead.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a JSON part could not be decoded.
#[derive(Debug)]
pub(crate) enum JsonProblem {
    /// Not valid JSON (or trailing data, or too deeply nested).
    Syntax(String),
    /// An object has two members with this name.
    Duplicate(String),
    /// Valid JSON, but not an object.
    NotAnObject,
}

/// Parses `bytes` as one JSON object, refusing duplicate members anywhere.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonProblem> {
    let strict: Strict = serde_json::from_slice(bytes).map_err(|e| {
        let msg = e.to_string();
        match msg.strip_prefix(DUPLICATE_PREFIX) {
            Some(rest) => {
                JsonProblem::Duplicate(rest.split(" at line ").next().unwrap_or(rest).to_owned())
            }
            None => JsonProblem::Syntax(msg),
        }
    })?;
    match strict.0 {
        Value::Object(map) => Ok(map),
        _ => Err(JsonProblem::NotAnObject),
    }
}

const DUPLICATE_PREFIX: &str = "duplicate member: ";

/// A `serde_json::Value` whose objects had no duplicate member names.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number is not finite"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_PREFIX}{key:?}")));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn duplicates_rejected_at_any_depth() {
        assert!(matches!(
            parse_object(br#"{"a":1,"a":2}"#),
            Err(JsonProblem::Duplicate(name)) if name == "\"a\""
        ));
        assert!(matches!(
            parse_object(br#"{"a":{"b":1,"b":1}}"#),
            Err(JsonProblem::Duplicate(_))
        ));
        assert!(matches!(
            parse_object(br#"{"a":[{"b":1,"b":1}]}"#),
            Err(JsonProblem::Duplicate(_))
        ));
    }

    #[test]
    fn objects_only() {
        assert!(matches!(
            parse_object(b"[1]"),
            Err(JsonProblem::NotAnObject)
        ));
        assert!(matches!(parse_object(b"{} x"), Err(JsonProblem::Syntax(_))));
        let m = parse_object(br#"{"a":1.5,"b":[true,null,"x"],"c":-3}"#).unwrap();
        assert_eq!(m.len(), 3);
    }
}
