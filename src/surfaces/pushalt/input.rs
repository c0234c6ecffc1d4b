//! What this surface reads from requests, parsed at the edge: ids (numbers or numeric strings,
//! nothing else), lifetimes, pagination, JSON bodies into their own types; and the two time
//! formats its answers use.

use std::fmt;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

use super::ApiError;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use super::error::text;
use crate::surfaces::read_body;

/// A row id (workspace, user, channel token, CORS entry): a positive whole number, sent as a
/// number or a string of digits. Negatives, fractions, other strings and SQL are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Id(pub i64);

/// Longest id text looked at (`i64::MAX` has 19 digits).
const MAX_ID_DIGITS: usize = 19;

impl Id {
    /// An id from a path segment or a string field.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        Self::from_digits(raw).ok_or_else(Self::invalid)
    }

    fn invalid() -> ApiError {
        ApiError::bad("Invalid id: expected a positive whole number")
    }

    fn from_digits(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty() && raw.len() <= MAX_ID_DIGITS && raw.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| raw.parse::<i64>().ok()).flatten().filter(|n| *n > 0).map(Self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive whole number (or a string of digits) as id")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                i64::try_from(v)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Id)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Some(v).filter(|n| *n > 0).map(Id).ok_or_else(|| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Id, E> {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Id::from_digits(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// Push-Alt's JavaScript clients send numbers and numeric strings alike; the document says so.
fn number_or_digits(description: &str, minimum: i64) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(minimum)),
        )
        .item(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9]+$")))
        .description(Some(description))
        .into()
}

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        number_or_digits("A positive whole number, or a string of its digits.", 1)
    }
}

impl ToSchema for Id {}

impl PartialSchema for Text {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("A string (a whole number is taken as its digits)."))
            .into()
    }
}

impl ToSchema for Text {}

impl PartialSchema for Seconds {
    fn schema() -> RefOr<Schema> {
        number_or_digits("Whole seconds, 0 or more, as a number or a string of digits.", 0)
    }
}

impl ToSchema for Seconds {}

/// The `{id}` of a route's path as an [`Id`]; a segment that is not one (or does not decode) is
/// a 400 in this surface's envelope.
pub struct IdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| Id::invalid())?;
        Ok(Self(Id::parse(&raw)?.0))
    }
}

/// A `{name}` path segment, decoded; one that does not decode is a 400 in this surface's
/// envelope.
pub struct NamePath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for NamePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad("The path does not decode to text"))?;
        Ok(Self(raw))
    }
}

/// A string field that JavaScript clients may also send as a number (an `app_id` such as
/// `4827163`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(TextVisitor)
    }
}

/// A lifetime in whole seconds, as a number or a numeric string (Push-Alt ran it through
/// `parseInt`); negatives and fractions are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SecondsVisitor;
        impl Visitor<'_> for SecondsVisitor {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of seconds, 0 or more")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v).map(Seconds).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Seconds, E> {
                let t = v.trim();
                let digits = !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit());
                // Past u64 it is "forever", which the 30-day cap cuts anyway.
                digits
                    .then(|| Seconds(t.parse().unwrap_or(u64::MAX)))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(SecondsVisitor)
    }
}

/// For `Option<Option<T>>` fields: absent is `None`, `null` is `Some(None)`.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Reads at most `limit` bytes and parses them into `T`, the request's own type (fields it does
/// not name are skipped unbuilt). Anything else is a 400 saying why.
pub async fn json<T: DeserializeOwned>(headers: &HeaderMap, body: Body, limit: usize) -> Result<T, ApiError> {
    let bytes = read_body(headers, body, limit).await?;
    parse(&bytes)
}

/// [`json`] on bytes already read.
pub fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad("Body must be a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        if e.is_data() {
            ApiError::bad(format!("Invalid request body: {e}"))
        } else {
            ApiError::bad(format!("Body must be a JSON object: {e}"))
        }
    })
}

/// A whole number query parameter within `range`, or `default` when it is absent.
pub fn query_number(
    query: Option<&str>,
    name: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ApiError> {
    let value = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v);
    match value {
        None => Ok(default),
        Some(v) => {
            let digits = !v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit());
            digits
                .then(|| v.parse::<i64>().ok())
                .flatten()
                .filter(|n| range.contains(n))
                .ok_or_else(|| ApiError::bad(text::INVALID_PAGINATION))
        }
    }
}

/// `YYYY-MM-DD HH:mm:ss` in UTC, Push-Alt's text times (channel rows, CORS entries).
pub fn text_time(ms: i64) -> String {
    let t = utc(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `YYYY-MM-DDTHH:mm:ss.sssZ`, how Push-Alt's timestamp columns reached JSON.
pub fn iso_time(ms: i64) -> String {
    let t = utc(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// `YYYY-MM-DD` in UTC (`installed_at`).
pub fn date(ms: i64) -> String {
    text_time(ms)[..10].to_owned()
}

fn utc(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positive_whole_numbers_as_numbers_or_digit_strings() {
        for (raw, want) in [("7", Some(7)), ("\"7\"", Some(7)), ("9223372036854775807", Some(i64::MAX))] {
            assert_eq!(serde_json::from_str::<Id>(raw).ok().map(|i| i.0), want, "{raw}");
        }
        let refused = [
            "0",
            "-1",
            "1.5",
            "1e3",
            "\"-1\"",
            "\"1.5\"",
            "\"abc\"",
            "\"\"",
            "\"1 OR 1=1\"",
            "\"1; DROP TABLE apps\"",
            "\" 7\"",
            "null",
            "true",
            "[1]",
            "{}",
            "9223372036854775808",
            "\"99999999999999999999\"",
        ];
        for raw in refused {
            assert!(serde_json::from_str::<Id>(raw).is_err(), "{raw}");
        }
        assert!(Id::parse("12").is_ok());
        assert!(Id::parse("1.0").is_err() && Id::parse("-3").is_err() && Id::parse("1'--").is_err());
    }

    #[test]
    fn seconds_take_whole_numbers_and_numeric_strings() {
        assert_eq!(serde_json::from_str::<Seconds>("60").unwrap(), Seconds(60));
        assert_eq!(serde_json::from_str::<Seconds>("\"60\"").unwrap(), Seconds(60));
        assert_eq!(serde_json::from_str::<Seconds>("\"99999999999999999999\"").unwrap(), Seconds(u64::MAX));
        for raw in ["-1", "1.5", "\"1.5\"", "\"soon\"", "\"\"", "true"] {
            assert!(serde_json::from_str::<Seconds>(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn times_are_utc_in_both_forms() {
        assert_eq!(text_time(1_700_000_000_123), "2023-11-14 22:13:20");
        assert_eq!(iso_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(date(1_700_000_000_123), "2023-11-14");
    }

    #[test]
    fn pagination_is_whole_numbers_in_range() {
        assert_eq!(query_number(Some("page=2&take=5"), "take", 10, 1..=100).unwrap(), 5);
        assert_eq!(query_number(None, "take", 10, 1..=100).unwrap(), 10);
        for q in ["take=0", "take=101", "take=-1", "take=1.5", "take=x", "take=", "take=1%20OR%201%3D1"] {
            assert!(query_number(Some(q), "take", 10, 1..=100).is_err(), "{q}");
        }
    }
}
