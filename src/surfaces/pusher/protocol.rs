//! Pusher protocol 7 frames: the encoder the core uses for Pusher subscribers, and the control
//! frames this surface answers with. Frames are built once into `Bytes` with serde_json escaping.

use bytes::Bytes;
use serde_json::Value;

use crate::core::{Data, Event, PresenceSnapshot};

pub const CONNECTION_ESTABLISHED: &str = "pusher:connection_established";
pub const ERROR: &str = "pusher:error";
pub const PING: &str = "pusher:ping";
pub const PONG: &str = "pusher:pong";
pub const SUBSCRIBE: &str = "pusher:subscribe";
pub const UNSUBSCRIBE: &str = "pusher:unsubscribe";
pub const SIGNIN: &str = "pusher:signin";
pub const SIGNIN_SUCCESS: &str = "pusher:signin_success";
pub const SUBSCRIPTION_ERROR: &str = "pusher:subscription_error";
pub const CACHE_MISS: &str = "pusher:cache_miss";
pub const SUBSCRIPTION_SUCCEEDED: &str = "pusher_internal:subscription_succeeded";

/// The encoder registered with the core: `data` always a string (SPEC §1).
pub fn encode_event(event: &Event) -> Bytes {
    let data = match &event.data {
        Data::Text(s) | Data::Json(s) => &**s,
    };
    frame(&event.name, event.channel.as_ref().map(|c| c.as_str()), Some(data), event.user_id.as_deref())
}

/// `{"event":E[,"channel":C][,"data":"<string>"][,"user_id":U]}`.
pub fn frame(event: &str, channel: Option<&str>, data: Option<&str>, user_id: Option<&str>) -> Bytes {
    let mut out =
        Vec::with_capacity(32 + event.len() + channel.map_or(0, str::len) + data.map_or(0, |d| d.len() + d.len() / 8));
    out.extend_from_slice(b"{\"event\":");
    push_str(&mut out, event);
    if let Some(channel) = channel {
        out.extend_from_slice(b",\"channel\":");
        push_str(&mut out, channel);
    }
    if let Some(data) = data {
        out.extend_from_slice(b",\"data\":");
        push_str(&mut out, data);
    }
    if let Some(user_id) = user_id {
        out.extend_from_slice(b",\"user_id\":");
        push_str(&mut out, user_id);
    }
    out.push(b'}');
    Bytes::from(out)
}

/// A frame whose `data` is a JSON object, not a string (`pusher:error`,
/// `pusher:subscription_error`, as Pusher sends them).
pub fn frame_with_object(event: &str, channel: Option<&str>, data: &Value) -> Bytes {
    let mut v = serde_json::json!({ "event": event, "data": data });
    if let Some(channel) = channel {
        v["channel"] = Value::from(channel);
    }
    Bytes::from(v.to_string())
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

pub fn connection_established(socket_id: &str, activity_timeout: u64) -> Bytes {
    let data = serde_json::json!({ "socket_id": socket_id, "activity_timeout": activity_timeout }).to_string();
    frame(CONNECTION_ESTABLISHED, None, Some(&data), None)
}

pub fn error(code: u16, message: &str) -> Bytes {
    frame_with_object(ERROR, None, &serde_json::json!({ "code": code, "message": message }))
}

/// `{"event":"pusher:pong","data":{}}`: an object, as the protocol document shows it.
pub fn pong() -> Bytes {
    frame_with_object(PONG, None, &serde_json::json!({}))
}

pub fn ping() -> Bytes {
    frame_with_object(PING, None, &serde_json::json!({}))
}

pub fn subscription_error(channel: &str, kind: &str, error: &str, status: u16) -> Bytes {
    frame_with_object(
        SUBSCRIPTION_ERROR,
        Some(channel),
        &serde_json::json!({ "type": kind, "error": error, "status": status }),
    )
}

pub fn subscription_succeeded(channel: &str, presence: Option<&PresenceSnapshot>) -> Bytes {
    let data = match presence {
        None => "{}".to_owned(),
        Some(p) => {
            let ids: Vec<&str> = p.members.iter().map(|(id, _)| &**id).collect();
            let hash: serde_json::Map<String, Value> = p
                .members
                .iter()
                .map(|(id, info)| {
                    (id.to_string(), info.as_deref().and_then(|i| serde_json::from_str(i).ok()).unwrap_or(Value::Null))
                })
                .collect();
            serde_json::json!({ "presence": { "ids": ids, "hash": hash, "count": ids.len() } }).to_string()
        }
    };
    frame(SUBSCRIPTION_SUCCEEDED, Some(channel), Some(&data), None)
}

pub fn cache_miss(channel: &str) -> Bytes {
    frame(CACHE_MISS, Some(channel), None, None)
}

pub fn signin_success(user_data: &str) -> Bytes {
    let data = serde_json::json!({ "user_data": user_data }).to_string();
    frame(SIGNIN_SUCCESS, None, Some(&data), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_shapes() {
        let f = frame("client-\"x", Some("private-a"), Some("{\"a\":\"\n\"}"), Some("u"));
        let v: Value = serde_json::from_slice(&f).unwrap();
        assert_eq!(v["event"], "client-\"x");
        assert_eq!(v["data"], "{\"a\":\"\n\"}");
        assert_eq!(v["user_id"], "u");
        let e: Value = serde_json::from_slice(&error(4001, "nope")).unwrap();
        assert_eq!(e["data"]["code"], 4001);
    }
}
