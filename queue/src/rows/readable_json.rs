//! Reading a stored payload that serde_json cannot read, without failing the statement.
//!
//! PostgreSQL stores JSON that serde_json refuses: nested deeper than 127 levels, or numbers
//! beyond `f64` (`1e400`). Backstop's own enqueue refuses the first, but another producer
//! writing to the table, or an older Backstop, may have stored either. Read with sqlx's
//! `Json`, one such row failed every statement returning it: the one that moves its job to the
//! dead letters (so the job stayed locked, its failure recorded again and again), and every
//! console page listing it. Read through [`ReadableJson`], such a payload becomes a marker
//! object that says why it is not shown; the stored row is untouched.

use serde_json::Value;
use sqlx::decode::Decode;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::types::{Json, Type};
use sqlx::{TypeInfo as _, ValueRef as _};

/// The key of the marker object a payload that cannot be read becomes.
pub const UNREADABLE_PAYLOAD_KEY: &str = "backstop_unreadable_payload";

/// A `json` or `jsonb` column read as a [`Value`], or as the marker object when serde_json
/// cannot read it (see the module docs). For the rows' `FromRow`; not meant to be used alone.
#[doc(hidden)]
#[derive(Debug)]
pub struct ReadableJson(Value);

/// [`ReadableJson`] for a column that may be null.
#[doc(hidden)]
#[derive(Debug)]
pub struct ReadableJsonOrNull(Option<Value>);

impl From<ReadableJson> for Value {
    fn from(json: ReadableJson) -> Self {
        json.0
    }
}

impl From<ReadableJsonOrNull> for Option<Value> {
    fn from(json: ReadableJsonOrNull) -> Self {
        json.0
    }
}

impl Type<Postgres> for ReadableJson {
    fn type_info() -> PgTypeInfo {
        <Json<Value> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Json<Value> as Type<Postgres>>::compatible(ty)
    }
}

impl Type<Postgres> for ReadableJsonOrNull {
    fn type_info() -> PgTypeInfo {
        <Json<Value> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Json<Value> as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for ReadableJson {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Self(read(value)?))
    }
}

impl<'r> Decode<'r, Postgres> for ReadableJsonOrNull {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Ok(Self(None));
        }
        Ok(Self(Some(read(value)?)))
    }
}

fn read(value: PgValueRef<'_>) -> Result<Value, BoxDynError> {
    let binary_jsonb = value.format() == PgValueFormat::Binary && value.type_info().name() == "JSONB";
    let mut bytes = value.as_bytes()?;
    if binary_jsonb {
        // jsonb's binary form is a version byte (1, the only one) and the JSON text.
        match bytes.split_first() {
            Some((1, text)) => bytes = text,
            _ => return Err("a jsonb value in a format other than version 1".into()),
        }
    }
    Ok(parse(bytes))
}

/// The JSON text as a [`Value`], or the marker object saying why it cannot be.
pub(crate) fn parse(text: &[u8]) -> Value {
    serde_json::from_slice(text).unwrap_or_else(|error| {
        serde_json::json!({
            UNREADABLE_PAYLOAD_KEY: format!(
                "not shown: {error} ({} bytes as stored; SQL reads it as it is)",
                text.len()
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_serde_json_cannot_read_becomes_the_marker() {
        assert_eq!(parse(br#"{"a": [1, "x"]}"#), serde_json::json!({"a": [1, "x"]}));
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for text in [deep.as_str(), r#"{"n": 1e400}"#] {
            let marker = parse(text.as_bytes());
            let said = marker[UNREADABLE_PAYLOAD_KEY].as_str().unwrap();
            assert!(said.starts_with("not shown: "), "{said}");
            assert!(said.contains(&format!("({} bytes as stored", text.len())), "{said}");
        }
    }
}
