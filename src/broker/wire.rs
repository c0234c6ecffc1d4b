//! The one envelope every broker backend carries. Plain data: no core or surface types, so
//! cluster backends can serialise it and the in-process one can pass it as is.

use std::sync::Arc;

/// Version tag cluster backends put in front of serialised envelopes.
pub const VERSION: u8 = 1;

/// Something published for an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub app: Arc<str>,
    pub message: Message,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// An event for every subscriber of `channel` (but `except`).
    Event { channel: Arc<str>, name: Arc<str>, data: Data, user_id: Option<Arc<str>>, except: Option<Arc<str>> },
    /// End every connection of a signed-in user.
    TerminateUser { user_id: Arc<str> },
    /// Every connection subscribed to `from` also subscribes to `to` (a user joins a room).
    Attach { from: Arc<str>, to: Arc<str> },
    /// Every connection subscribed to `from` leaves `to` (a user leaves a room).
    Detach { from: Arc<str>, to: Arc<str> },
    /// Close every connection subscribed to `channel` (its account is gone).
    CloseSubscribers { channel: Arc<str> },
}

/// An event's payload, in the form it was published in (SPEC §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A string (what Pusher publishers send).
    Text(Arc<str>),
    /// A JSON value, kept as its compact serialisation (Notif, Push-Alt, internal events).
    Json(Arc<str>),
}

impl Data {
    /// A JSON value from its text as a client sent it (already known to be valid JSON), kept
    /// compact: whitespace outside strings is dropped, nothing else changes.
    pub fn json_from_raw(raw: &str) -> Self {
        let mut out = String::with_capacity(raw.len());
        let (mut in_string, mut escaped) = (false, false);
        for c in raw.chars() {
            if in_string {
                out.push(c);
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
            } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
                in_string = c == '"';
                out.push(c);
            }
        }
        Self::Json(out.into())
    }
}

/// A JSON value: Notif and Socket.IO clients get it as is, Pusher clients as its JSON text.
impl From<serde_json::Value> for Data {
    fn from(value: serde_json::Value) -> Self {
        Self::Json(value.to_string().into())
    }
}

/// A string: every client gets it as a string, as a Pusher publisher's `data`.
impl From<&str> for Data {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<String> for Data {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_json_is_kept_compact_and_strings_untouched() {
        let raw = " { \"a\" : [ 1 , 2 ],\n\t\"b\": \"x  \\\" y\" , \"c\":\"\\\\\" } ";
        let Data::Json(compact) = Data::json_from_raw(raw) else { panic!() };
        assert_eq!(&*compact, r#"{"a":[1,2],"b":"x  \" y","c":"\\"}"#);
        let parsed: serde_json::Value = serde_json::from_str(&compact).unwrap();
        assert_eq!(parsed, serde_json::from_str::<serde_json::Value>(raw).unwrap());
    }

    #[test]
    fn strings_stay_text_and_json_values_are_kept_compact() {
        assert_eq!(Data::from("a \"b\""), Data::Text("a \"b\"".into()));
        assert_eq!(Data::from(String::from("x")), Data::Text("x".into()));
        assert_eq!(Data::from(serde_json::json!({"id": 7, "s": "x y"})), Data::Json(r#"{"id":7,"s":"x y"}"#.into()));
        assert_eq!(Data::from(serde_json::json!("x")), Data::Json("\"x\"".into()));
    }
}
