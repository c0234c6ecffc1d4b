//! Chat rooms on the core's channel space: `chat-user-<id>` reaches every socket of a user,
//! `chat-group-<id>` every socket in a group. The names are made here only; the publishing and
//! room-membership calls the service makes go through here too.

use serde::Serialize;

use super::Chat;

use crate::core::{ChannelName, Data, Event};

/// The room of every socket of user `id`.
pub fn user(id: i64) -> ChannelName {
    named("chat-user-", id)
}

/// The room of group `id`.
pub fn group(id: i64) -> ChannelName {
    named("chat-group-", id)
}

fn named(prefix: &str, id: i64) -> ChannelName {
    // A prefix of safe characters and decimal digits: always a valid name.
    ChannelName::parse(&format!("{prefix}{id}")).unwrap_or_else(|_| ChannelName::for_user(&id.to_string()))
}

impl Chat {
    /// Publishes `payload` as event `name` to `room`, cluster-wide (on this node alone while
    /// the broker is down). One publish per room: the frame is encoded once for all its sockets.
    pub(super) fn publish(&self, room: ChannelName, name: &'static str, payload: &impl Serialize) {
        let data = match serde_json::to_string(payload) {
            Ok(text) => Data::Json(text.into()),
            Err(e) => {
                tracing::error!(error = %e, event = name, "chat: encoding an event");
                return;
            }
        };
        let event = Event { channel: Some(room), name: name.into(), data, user_id: None, except: None };
        if let Err(e) = self.0.realtime.publish_or_here(&self.0.app, event) {
            tracing::warn!(error = %e, event = name, "chat: the broker is down; delivered on this node only");
        }
    }

    /// Puts every socket of `user` (on every node) into `group`'s room: after it was added.
    pub(super) fn join_group_room(&self, user_id: i64, group_id: i64) {
        if let Err(e) = self.0.realtime.attach(&self.0.app, &user(user_id), &group(group_id)) {
            tracing::warn!(error = %e, "chat: the broker is down; room joined on this node only");
        }
    }

    /// Takes every socket of `user` out of `group`'s room: after it was removed (and told).
    pub(super) fn leave_group_room(&self, user_id: i64, group_id: i64) {
        if let Err(e) = self.0.realtime.detach(&self.0.app, &user(user_id), &group(group_id)) {
            tracing::warn!(error = %e, "chat: the broker is down; room left on this node only");
        }
    }

    /// Closes every socket of `user` (on every node): its account is gone, or the tokens its
    /// sockets were opened with are void.
    pub fn close_user_sockets(&self, user_id: i64) {
        if let Err(e) = self.0.realtime.close_subscribers(&self.0.app, &user(user_id)) {
            tracing::warn!(error = %e, "chat: the broker is down; sockets closed on this node only");
        }
    }

    /// Whether user `id` has a live socket (on this node: counts are node-local until
    /// cluster-wide counts exist).
    pub fn is_online(&self, id: i64) -> bool {
        self.0.realtime.channel_stats(&self.0.app, &user(id)).subscription_count > 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::user(7).as_str(), "chat-user-7");
        assert_eq!(super::group(9007199254740992).as_str(), "chat-group-9007199254740992");
    }
}
