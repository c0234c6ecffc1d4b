//! Push-Alt's Socket.IO side (SPEC §5): how core channel events are named for its sockets.
//! `join_channel`, `joined`/`error` and the `message` relay build on this namespace.

use std::sync::Arc;

use crate::apps::AppCache;
use crate::core::Event;
use crate::transport::socketio::{Namespace, Naming, SocketIo};

/// Push-Alt's Socket.IO setup at `/ws`: the main namespace, its channel events named
/// [`channel_naming`]. Its handlers (`join_channel`, the relay) are added here.
pub fn setup(apps: AppCache) -> SocketIo {
    SocketIo::new().namespace("/", Namespace::new().channel_naming(channel_naming(apps)))
}

/// `workspace:<n>:<channel>:<event>`, `<n>` the app's number: what Push-Alt's clients listen
/// for. One app lookup per broadcast, never per socket.
pub fn channel_naming(apps: AppCache) -> Naming {
    Arc::new(move |app_id: &str, event: &Event| {
        let channel = event.channel.as_ref().map_or("", |c| c.as_str());
        match apps.by_id(app_id) {
            Some(app) => event_name(app.number, channel, &event.name),
            // Gone meanwhile: its sockets are being closed; the event keeps its own name.
            None => event.name.to_string(),
        }
    })
}

/// The name a Push-Alt client listens for.
pub fn event_name(number: i64, channel: &str, event: &str) -> String {
    format!("workspace:{number}:{channel}:{event}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn events_are_named_by_workspace_and_channel() {
        assert_eq!(super::event_name(7, "orders", "message"), "workspace:7:orders:message");
    }
}
