//! Push notifications for a committed message (SPEC §6): its recipients that have no live
//! socket and are not `do_not_disturb` (a DM's recipient; a group's other members) get one
//! through [`crate::push`]. It runs after the publish: a DM to someone online costs an
//! in-memory check; every store lookup happens on a task of its own, at most
//! [`MAX_LOOKUPS`] at once (past that a message goes without push, and is counted), so push
//! never delays delivery to sockets.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Semaphore;

use super::{Chat, Message};
use crate::push::{Notification, Push};
use crate::store;

/// Recipient lookups in flight at once.
pub(super) const MAX_LOOKUPS: usize = 256;

/// The push service and the bound on its lookups.
pub(super) struct PushHook {
    push: Push,
    lookups: Arc<Semaphore>,
}

impl PushHook {
    pub(super) fn new(push: Push) -> Self {
        Self { push, lookups: Arc::new(Semaphore::new(MAX_LOOKUPS)) }
    }
}

impl Chat {
    /// Queues push notifications for `message`'s offline recipients; returns at once.
    pub(super) fn push_offline(&self, message: &Message) {
        let Some(hook) = &self.0.push else { return };
        if let Some(recipient) = message.recipient_id
            && self.is_online(recipient)
        {
            return;
        }
        let Ok(permit) = hook.lookups.clone().try_acquire_owned() else {
            crate::metrics::push_dropped();
            return;
        };
        let (chat, push, message) = (self.clone(), hook.push.clone(), message.clone());
        tokio::spawn(async move {
            if let Err(e) = chat.notify_offline(&push, &message).await {
                tracing::warn!(error = %e, message_id = message.id, "chat: finding push recipients");
            }
            drop(permit);
        });
    }

    async fn notify_offline(&self, push: &Push, message: &Message) -> Result<(), store::Error> {
        let (candidates, title, data) = match (message.recipient_id, message.group_id) {
            (Some(recipient), _) => (
                vec![recipient],
                message.username.clone(),
                json!({
                    "type": "dm",
                    "messageId": message.id,
                    "senderId": message.user_id,
                    "senderUsername": message.username,
                    "recipientId": recipient,
                }),
            ),
            (None, Some(group)) => {
                let members = self.store().members(group).await?;
                let name = self.store().group(group).await?.name;
                let others = members.into_iter().map(|m| m.user_id).filter(|&u| u != message.user_id).collect();
                let data = json!({
                    "type": "group",
                    "messageId": message.id,
                    "senderId": message.user_id,
                    "senderUsername": message.username,
                    "groupId": group,
                    "groupName": name,
                });
                (others, format!("{} in {name}", message.username), data)
            }
            (None, None) => return Ok(()),
        };
        let offline: Vec<i64> = candidates.into_iter().filter(|&u| !self.is_online(u)).collect();
        if offline.is_empty() {
            return Ok(());
        }
        let recipients = self.store().accounts_taking_push(&offline).await?;
        push.notify(recipients, Notification { title, body: message.content.clone(), data });
        Ok(())
    }
}
