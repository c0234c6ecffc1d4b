//! Notif's JSON frames (SPEC §4, CONTRACTS §2.2): [`parse_frame`] turns what a client sends into
//! a [`ClientFrame`] (pure, property-tested), [`encode_event`] is the encoder the core uses for
//! Notif subscribers, and the rest build the control frames this surface answers with.
//!
//! Unlike Pusher, control-frame `data` is always a JSON object and event `data` is the published
//! JSON value itself, never a string holding JSON. Nothing here touches a connection or the core's
//! state.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use crate::core::{
    ChannelName, ChannelNameError, Data, Event, MAX_EVENT_NAME, MAX_USER_ID_LEN, Member, PresenceSnapshot, fits_chars,
};

pub const CONNECTION_ESTABLISHED: &str = "connection_established";
pub const SUBSCRIPTION_SUCCEEDED: &str = "pusher_internal:subscription_succeeded";
pub const ERROR: &str = "pusher:error";
pub const PONG: &str = "pusher:pong";
pub const CACHE_MISS: &str = "pusher:cache_miss";
pub const SIGNIN_SUCCESS: &str = "pusher:signin_success";

/// Longest serialised presence `user_info` (as Pusher, SPEC §3).
pub const MAX_USER_INFO: usize = 1024;
/// Longest piece of client input echoed back in an error message.
const ECHO_LIMIT: usize = 64;

/// A client frame, parsed and validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientFrame {
    Subscribe(Subscribe),
    /// No reply; delivery stops at once.
    Unsubscribe(ChannelName),
    /// `ping` or `pusher:ping`: answered with `pusher:pong`.
    Ping,
    /// `pusher:pong`: nothing to do (liveness is WebSocket-level).
    Pong,
    /// `pusher:signin` (only honoured with `extra_events=1`).
    Signin {
        auth: String,
        user_data: String,
    },
    /// `client-*` on a channel, as in Pusher.
    ClientEvent {
        name: String,
        channel: ChannelName,
        data: Value,
    },
}

/// `subscribe {channel, auth?, channel_data?}`. `channel_data` is kept as sent (string or any
/// JSON value), because what was signed depends on its form.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    pub channel: ChannelName,
    pub auth: Option<String>,
    pub channel_data: Option<Value>,
}

/// Why a frame was refused; each is answered with a 4300 `pusher:error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("Invalid message: expected a JSON object")]
    NotJsonObject,
    #[error("Invalid message: event must be a string")]
    NoEvent,
    #[error("{event} needs data.channel as a string")]
    NoChannel { event: &'static str },
    #[error("Invalid channel {name:?}: {error}")]
    BadChannel { name: String, error: ChannelNameError },
    #[error("{0}")]
    BadField(&'static str),
    #[error("Event {0:?} is reserved and cannot be sent by clients")]
    Reserved(String),
    #[error("Unknown event {0:?}: send subscribe, unsubscribe, ping or client- events")]
    Unknown(String),
}

impl FrameError {
    /// The channel the error is about, when there is a valid one to name.
    pub fn channel(&self) -> Option<&str> {
        match self {
            Self::BadChannel { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Parses one text frame. Accepts Notif's tags (`subscribe`, `unsubscribe`, `ping`) and the
/// `pusher:`-prefixed forms; `data` may also be a string holding the JSON object, as some Pusher
/// clients send it.
pub fn parse_frame(text: &str) -> Result<ClientFrame, FrameError> {
    let Ok(Value::Object(mut msg)) = serde_json::from_str::<Value>(text) else {
        return Err(FrameError::NotJsonObject);
    };
    let Some(Value::String(event)) = msg.remove("event") else {
        return Err(FrameError::NoEvent);
    };
    match event.as_str() {
        "subscribe" | "pusher:subscribe" => {
            let data = object_data(msg.remove("data"));
            let channel = channel_field(&data, "subscribe")?;
            let auth = match data.get("auth") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(FrameError::BadField("subscribe: auth must be a string")),
            };
            let channel_data = match data.get("channel_data") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.clone()),
            };
            Ok(ClientFrame::Subscribe(Subscribe { channel, auth, channel_data }))
        }
        "unsubscribe" | "pusher:unsubscribe" => {
            let data = object_data(msg.remove("data"));
            Ok(ClientFrame::Unsubscribe(channel_field(&data, "unsubscribe")?))
        }
        "ping" | "pusher:ping" => Ok(ClientFrame::Ping),
        "pong" | "pusher:pong" => Ok(ClientFrame::Pong),
        "pusher:signin" => {
            let data = object_data(msg.remove("data"));
            let field = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_owned);
            match (field("auth"), field("user_data")) {
                (Some(auth), Some(user_data)) => Ok(ClientFrame::Signin { auth, user_data }),
                _ => Err(FrameError::BadField("pusher:signin needs auth and user_data strings")),
            }
        }
        name if name.starts_with("client-") => {
            if !fits_chars(name, MAX_EVENT_NAME) {
                return Err(FrameError::BadField("Event name is longer than 200 characters"));
            }
            let channel = match msg.get("channel") {
                Some(Value::String(raw)) => parse_channel(raw)?,
                _ => return Err(FrameError::BadField("Client events need a channel string")),
            };
            let data = msg.remove("data").unwrap_or(Value::Null);
            Ok(ClientFrame::ClientEvent { name: event, channel, data })
        }
        name if name.starts_with("pusher:") || name.starts_with("pusher_internal:") => {
            Err(FrameError::Reserved(echo(name)))
        }
        name => Err(FrameError::Unknown(echo(name))),
    }
}

fn object_data(data: Option<Value>) -> Map<String, Value> {
    match data {
        Some(Value::Object(map)) => map,
        Some(Value::String(s)) => match serde_json::from_str(&s) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}

fn channel_field(data: &Map<String, Value>, event: &'static str) -> Result<ChannelName, FrameError> {
    match data.get("channel") {
        Some(Value::String(raw)) => parse_channel(raw),
        _ => Err(FrameError::NoChannel { event }),
    }
}

fn parse_channel(raw: &str) -> Result<ChannelName, FrameError> {
    ChannelName::parse(raw).map_err(|error| FrameError::BadChannel { name: echo(raw), error })
}

/// Client input quoted in an error, cut short so a huge frame is not echoed back whole;
/// characters outside printable ASCII become `?`, so the echo stays short once quoted.
fn echo(s: &str) -> String {
    s.chars().take(ECHO_LIMIT).map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect()
}

/// The encoder registered with the core: `{"event","channel","data"}` with `data` raw JSON
/// (SPEC §1): a JSON value as published, a Pusher string parsed when it parses, else the string.
pub fn encode_event(event: &Event) -> Bytes {
    let (raw, len) = match &event.data {
        Data::Json(s) => (true, s.len()),
        // Validated once per event here: the fan-out calls this once per transport.
        Data::Text(s) => (serde_json::from_str::<IgnoredAny>(s).is_ok(), s.len()),
    };
    let text = match &event.data {
        Data::Text(s) | Data::Json(s) => &**s,
    };
    let channel = event.channel.as_ref().map(ChannelName::as_str);
    let mut out = Vec::with_capacity(48 + event.name.len() + channel.map_or(0, str::len) + len + len / 8);
    out.extend_from_slice(b"{\"event\":");
    push_str(&mut out, &event.name);
    if let Some(channel) = channel {
        out.extend_from_slice(b",\"channel\":");
        push_str(&mut out, channel);
    }
    out.extend_from_slice(b",\"data\":");
    if raw {
        out.extend_from_slice(text.as_bytes());
    } else {
        push_str(&mut out, text);
    }
    if let Some(user_id) = &event.user_id {
        out.extend_from_slice(b",\"user_id\":");
        push_str(&mut out, user_id);
    }
    out.push(b'}');
    Bytes::from(out)
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn control(event: &str, channel: Option<&str>, data: Value) -> Bytes {
    let mut v = json!({ "event": event });
    if let Some(channel) = channel {
        v["channel"] = Value::from(channel);
    }
    v["data"] = data;
    Bytes::from(v.to_string())
}

pub fn connection_established(socket_id: &str) -> Bytes {
    control(CONNECTION_ESTABLISHED, None, json!({ "socket_id": socket_id }))
}

/// `pusher:error`; `channel` names the channel a subscribe error is about (an addition to
/// Notif's shape that clients ignore).
pub fn error(code: u16, message: &str, channel: Option<&str>) -> Bytes {
    control(ERROR, channel, json!({ "message": message, "code": code }))
}

pub fn pong() -> Bytes {
    control(PONG, None, json!({}))
}

pub fn cache_miss(channel: &str) -> Bytes {
    control(CACHE_MISS, Some(channel), json!({}))
}

pub fn signin_success(user_data: &str) -> Bytes {
    control(SIGNIN_SUCCESS, None, json!({ "user_data": user_data }))
}

/// `data` is `{}`, or for presence `{"presence":{"ids","hash","count"}}` counted by user.
pub fn subscription_succeeded(channel: &str, presence: Option<&PresenceSnapshot>) -> Bytes {
    let data = match presence {
        None => json!({}),
        Some(p) => {
            let ids: Vec<&str> = p.members.iter().map(|(id, _)| &**id).collect();
            let hash: Map<String, Value> = p
                .members
                .iter()
                .map(|(id, info)| {
                    (id.to_string(), info.as_deref().and_then(|i| serde_json::from_str(i).ok()).unwrap_or(Value::Null))
                })
                .collect();
            json!({ "presence": { "ids": ids, "hash": hash, "count": ids.len() } })
        }
    };
    control(SUBSCRIPTION_SUCCEEDED, Some(channel), data)
}

/// The texts a presence `channel_data` may have been signed as (SPEC §4): a string raw and
/// JSON-quoted (what Notif signed), anything else as compact JSON with sorted keys.
pub fn signed_forms(channel_data: &Value) -> Vec<String> {
    match channel_data {
        Value::String(s) => vec![s.clone(), Value::from(s.as_str()).to_string()],
        other => {
            let mut out = String::new();
            write_sorted(other, &mut out);
            vec![out]
        }
    }
}

/// Compact JSON with object keys sorted at every level, whatever map order serde_json uses.
fn write_sorted(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                write_sorted(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Why presence `channel_data` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    #[error("channel_data.user_id must be 1–128 characters")]
    BadUserId,
    #[error("channel_data.user_info is larger than 1 KB")]
    InfoTooLarge,
}

/// The presence member a subscriber declares. `user_id` may be a string or a number; without
/// one (or with `channel_data` that is no object) the socket id stands in, so anonymous
/// sockets are distinct members (Notif merged them all as `anonymous`).
pub fn member_of(channel_data: Option<&Value>, socket_id: &str) -> Result<Member, MemberError> {
    let parsed;
    let object = match channel_data {
        Some(Value::Object(map)) => Some(map),
        Some(Value::String(s)) => {
            parsed = serde_json::from_str::<Value>(s).ok();
            parsed.as_ref().and_then(Value::as_object)
        }
        _ => None,
    };
    let user_id = match object.and_then(|o| o.get("user_id")) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => socket_id.to_owned(),
    };
    if user_id.is_empty() || !fits_chars(&user_id, MAX_USER_ID_LEN) {
        return Err(MemberError::BadUserId);
    }
    let user_info = match object.and_then(|o| o.get("user_info")) {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = v.to_string();
            if s.len() > MAX_USER_INFO {
                return Err(MemberError::InfoTooLarge);
            }
            Some(Arc::from(s))
        }
    };
    Ok(Member { user_id: user_id.into(), user_info })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(data: Data) -> Event {
        Event {
            channel: Some(ChannelName::parse("news").unwrap()),
            name: "update".into(),
            data,
            user_id: None,
            except: None,
        }
    }

    fn decode(b: &Bytes) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn readme_frames_parse() {
        let f = parse_frame(r#"{"event":"subscribe","data":{"channel":"chat.room1"}}"#).unwrap();
        let ClientFrame::Subscribe(s) = f else { panic!("{f:?}") };
        assert_eq!(s.channel.as_str(), "chat.room1");
        assert_eq!(s.auth, None);
        let f = parse_frame(r#"{"event":"pusher:subscribe","data":"{\"channel\":\"presence-a\",\"auth\":\"ab\",\"channel_data\":{\"user_id\":1}}"}"#).unwrap();
        let ClientFrame::Subscribe(s) = f else { panic!("{f:?}") };
        assert_eq!(s.auth.as_deref(), Some("ab"));
        assert_eq!(s.channel_data, Some(json!({"user_id": 1})));
        assert_eq!(parse_frame(r#"{"event":"ping"}"#), Ok(ClientFrame::Ping));
        assert_eq!(parse_frame(r#"{"event":"pusher:ping","data":{}}"#), Ok(ClientFrame::Ping));
        assert!(matches!(
            parse_frame(r#"{"event":"unsubscribe","data":{"channel":"a"}}"#),
            Ok(ClientFrame::Unsubscribe(c)) if c.as_str() == "a"
        ));
    }

    #[test]
    fn bad_frames_are_errors() {
        assert_eq!(parse_frame("nope"), Err(FrameError::NotJsonObject));
        assert_eq!(parse_frame("[]"), Err(FrameError::NotJsonObject));
        assert_eq!(parse_frame(r#"{"data":{}}"#), Err(FrameError::NoEvent));
        assert_eq!(
            parse_frame(r#"{"event":"subscribe","data":{}}"#),
            Err(FrameError::NoChannel { event: "subscribe" })
        );
        assert!(matches!(
            parse_frame(r#"{"event":"subscribe","data":{"channel":"a b"}}"#),
            Err(FrameError::BadChannel { .. })
        ));
        assert!(matches!(
            parse_frame(r#"{"event":"subscribe","data":{"channel":"a","auth":5}}"#),
            Err(FrameError::BadField(_))
        ));
        assert!(matches!(parse_frame(r#"{"event":"pusher_internal:member_added"}"#), Err(FrameError::Reserved(_))));
        let long = format!(r#"{{"event":"{}"}}"#, "x".repeat(10_000));
        let Err(FrameError::Unknown(name)) = parse_frame(&long) else { panic!() };
        assert_eq!(name.len(), ECHO_LIMIT, "errors do not echo huge input");
    }

    #[test]
    fn encodes_data_in_its_published_form() {
        let v = decode(&encode_event(&event(Data::Json(r#"{"a":[1,2]}"#.into()))));
        assert_eq!(v, json!({"event": "update", "channel": "news", "data": {"a": [1, 2]}}));
        let v = decode(&encode_event(&event(Data::Json(r#""123""#.into()))));
        assert_eq!(v["data"], "123", "a JSON string stays a string");
        let v = decode(&encode_event(&event(Data::Text(r#"{"x":"\n"}"#.into()))));
        assert_eq!(v["data"], json!({"x": "\n"}), "a Pusher string that parses is sent parsed");
        let v = decode(&encode_event(&event(Data::Text("hello \"world\"".into()))));
        assert_eq!(v["data"], "hello \"world\"", "else as a string");
        let v = decode(&encode_event(&event(Data::Text("".into()))));
        assert_eq!(v["data"], "");
        let mut e = event(Data::Text("1".into()));
        e.user_id = Some("u1".into());
        assert_eq!(
            decode(&encode_event(&e)),
            json!({"event": "update", "channel": "news", "data": 1, "user_id": "u1"})
        );
    }

    #[test]
    fn signed_forms_and_members() {
        assert_eq!(signed_forms(&json!("{\"user_id\":\"1\"}")), vec![r#"{"user_id":"1"}"#, r#""{\"user_id\":\"1\"}""#]);
        assert_eq!(
            signed_forms(&json!({"user_info": {"z": 1, "a": 2}, "user_id": 7})),
            vec![r#"{"user_id":7,"user_info":{"a":2,"z":1}}"#]
        );
        assert_eq!(&*member_of(Some(&json!({"user_id": 12})), "1.1").unwrap().user_id, "12");
        assert_eq!(&*member_of(Some(&json!("{\"user_id\":\"u\"}")), "1.1").unwrap().user_id, "u");
        assert_eq!(&*member_of(None, "1.1").unwrap().user_id, "1.1");
        assert_eq!(&*member_of(Some(&json!({"user_info": {}})), "1.1").unwrap().user_id, "1.1");
        assert_eq!(member_of(Some(&json!({"user_id": ""})), "1.1").unwrap_err(), MemberError::BadUserId);
        let big = json!({"user_id": "a", "user_info": "x".repeat(2000)});
        assert_eq!(member_of(Some(&big), "1.1").unwrap_err(), MemberError::InfoTooLarge);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            ".{0,30}".prop_map(Value::from),
            "[a-z_.-]{1,20}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("channel".to_owned()),
                        Just("auth".to_owned()),
                        Just("channel_data".to_owned()),
                        Just("user_data".to_owned()),
                        ".{0,6}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_event() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("subscribe".to_owned()),
            Just("pusher:subscribe".to_owned()),
            Just("unsubscribe".to_owned()),
            Just("ping".to_owned()),
            Just("pusher:signin".to_owned()),
            Just("client-x".to_owned()),
            Just("pusher_internal:x".to_owned()),
            ".{0,20}",
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_text(s in ".{0,300}") {
            let _ = parse_frame(&s);
        }

        #[test]
        fn parse_accepts_only_valid_channels(event in arb_event(), data in arb_json(), channel in arb_json()) {
            let text = json!({ "event": event, "data": data, "channel": channel }).to_string();
            match parse_frame(&text) {
                Ok(ClientFrame::Subscribe(s)) => prop_assert!(ChannelName::parse(s.channel.as_str()).is_ok()),
                Ok(ClientFrame::Unsubscribe(c)) | Ok(ClientFrame::ClientEvent { channel: c, .. }) => {
                    prop_assert!(ChannelName::parse(c.as_str()).is_ok())
                }
                Ok(_) => {}
                Err(e) => prop_assert!(e.to_string().chars().count() < 200, "error messages stay short"),
            }
        }

        #[test]
        fn subscribe_round_trips(channel in "[A-Za-z0-9_=@,.;-]{1,164}", auth in proptest::option::of("[0-9a-f:]{0,80}"), cd in proptest::option::of(arb_json())) {
            let mut data = json!({ "channel": channel });
            if let Some(a) = &auth { data["auth"] = Value::from(a.as_str()); }
            if let Some(c) = &cd { data["channel_data"] = c.clone(); }
            let parsed = parse_frame(&json!({ "event": "subscribe", "data": data }).to_string());
            let want_cd = cd.filter(|c| !c.is_null());
            prop_assert_eq!(parsed, Ok(ClientFrame::Subscribe(Subscribe {
                channel: ChannelName::parse(&channel).unwrap(), auth, channel_data: want_cd,
            })));
        }

        #[test]
        fn encoded_events_are_json(text in ".{0,100}", json in arb_json(), name in ".{1,30}") {
            for data in [Data::Text(text.as_str().into()), Data::Json(json.to_string().into())] {
                let mut e = event(data);
                e.name = name.as_str().into();
                let v: Value = serde_json::from_slice(&encode_event(&e)).unwrap();
                prop_assert_eq!(v["event"].as_str(), Some(name.as_str()));
            }
        }
    }
}
