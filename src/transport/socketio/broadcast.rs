//! Core channel events as Socket.IO packets: the encoder the fan-out calls once per broadcast
//! for all the sockets of one namespace, whatever Engine.IO transport each uses. How an event
//! is named is the namespace's choice ([`Naming`]), made in this one place.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;

use super::codec;
use crate::core::{Data, Encoder, Event, events};
use crate::transport::engineio::message_frame;

/// Names a core channel event for a namespace's sockets, from the app's id and the event
/// (Push-Alt: `workspace:<n>:<channel>:<event>`). Called once per broadcast, never per socket.
pub type Naming = Arc<dyn Fn(&str, &Event) -> String + Send + Sync>;

/// The event's data as one JSON argument (SPEC §1): JSON stays as it is, a Pusher string is
/// parsed when it parses (checked once per broadcast: the encoder runs once per dialect), else
/// it becomes a JSON string.
fn push_data(out: &mut Vec<u8>, data: &Data) {
    match data {
        Data::Text(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => {
            out.extend_from_slice(text.as_bytes());
        }
        Data::Text(text) => codec::push_json_str(out, text),
        Data::Json(json) => out.extend_from_slice(json.as_bytes()),
    }
}

/// `2[/nsp,]["<name>",<data>]`, the Socket.IO packet of a channel event.
pub fn encode_event(out: &mut Vec<u8>, nsp: &str, name: &str, data: &Data) {
    codec::write_header(out, codec::PacketType::Event, 0, nsp, None);
    out.push(b'[');
    codec::push_json_str(out, name);
    out.push(b',');
    push_data(out, data);
    out.push(b']');
}

/// The encoder of `nsp`'s channel events, each an Engine.IO message frame.
pub fn encoder(nsp: Arc<str>, naming: Option<Naming>) -> Encoder {
    Arc::new(move |app: &str, event: &Event| -> Bytes {
        let mut packet = Vec::with_capacity(64 + event.name.len() + data_len(&event.data));
        // A Socket.IO-only event (a relay) is named as it was sent, in every namespace.
        let only = event.name.strip_prefix(events::SOCKETIO_ONLY);
        match (&naming, only) {
            (_, Some(name)) => encode_event(&mut packet, &nsp, name, &event.data),
            (Some(naming), None) => encode_event(&mut packet, &nsp, &named(naming, app, event), &event.data),
            (None, None) => encode_event(&mut packet, &nsp, &event.name, &event.data),
        }
        message_frame(&packet)
    })
}

/// The program's name for `event`. The fan-out runs on whichever task published (a request's,
/// or a broker's receiving loop, which a panic would end for good): a naming that panics is a
/// bug of the program, logged, and the event keeps its own name.
fn named(naming: &Naming, app: &str, event: &Event) -> String {
    match catch_unwind(AssertUnwindSafe(|| naming(app, event))) {
        Ok(name) => name,
        Err(_) => {
            tracing::error!(app, event = %event.name, "a Socket.IO channel naming panicked; the event keeps its name");
            event.name.to_string()
        }
    }
}

fn data_len(data: &Data) -> usize {
    match data {
        Data::Text(t) | Data::Json(t) => t.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ChannelName;

    fn event(name: &str, data: Data) -> Event {
        Event {
            channel: Some(ChannelName::parse("orders").unwrap()),
            name: name.into(),
            data,
            user_id: None,
            except: None,
        }
    }

    fn packet(frame: &Bytes) -> String {
        String::from_utf8(crate::transport::ws::frame_payload(frame).unwrap().1.to_vec()).unwrap()
    }

    #[test]
    fn a_naming_that_panics_leaves_the_event_its_own_name() {
        let naming: Naming = Arc::new(|_: &str, _: &Event| panic!("naming bug"));
        let named = encoder("/chat".into(), Some(naming));
        assert_eq!(packet(&named("7", &event("message", Data::Text("hi".into())))), r#"42/chat,["message","hi"]"#);
    }

    #[test]
    fn channel_events_are_named_by_the_namespace() {
        let plain = encoder("/".into(), None);
        assert_eq!(
            packet(&plain("7", &event("message", Data::Text("hi \"x\"".into())))),
            r#"42["message","hi \"x\""]"#
        );
        let naming: Naming = Arc::new(|app: &str, e: &Event| {
            format!("workspace:{app}:{}:{}", e.channel.as_ref().map_or("", |c| c.as_str()), e.name)
        });
        let named = encoder("/chat".into(), Some(naming));
        assert_eq!(
            packet(&named("7", &event("message", Data::Json(r#"{"a":1}"#.into())))),
            r#"42/chat,["workspace:7:orders:message",{"a":1}]"#
        );
        assert_eq!(packet(&plain("7", &event("shipped", Data::Text(r#"{"n":1}"#.into())))), r#"42["shipped",{"n":1}]"#);
        let relay = format!("{}message", events::SOCKETIO_ONLY);
        assert_eq!(packet(&named("7", &event(&relay, Data::Json("[1]".into())))), r#"42/chat,["message",[1]]"#);
    }
}
