//! Direct and group messages: checked, rate-limited per account, stored by the group-commit
//! writer, and only then published ([`Chat::after_commit`]); histories by page.
//!
//! The writer is one task fed by a bounded queue: it takes whatever is waiting (up to
//! `chat.write_batch`), stores it in one transaction, commits, then answers each sender. So
//! thousands of messages a second cost a few commits, and no message is acknowledged, or
//! delivered to anyone, before its commit.

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::{Chat, ChatError, MAX_PAGE, Message, Named, Page, Via, check_content, rooms};
use crate::store::chat::{Conversation, MessageRecord, NewMessageRecord};
use crate::store::{Store, now_ms};

/// One message waiting for the writer, and where its id goes.
struct Job {
    record: NewMessageRecord,
    reply: oneshot::Sender<Result<i64, ()>>,
}

/// The handle to the group-commit writer task; the task ends when this is dropped.
pub(super) struct Writer(mpsc::Sender<Job>);

impl Writer {
    pub fn spawn(store: Store, max_batch: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel(queue.max(1));
        tokio::spawn(write_batches(store, rx, max_batch.max(1)));
        Self(tx)
    }

    /// Stores one message; its id once committed.
    async fn store(&self, record: NewMessageRecord) -> Result<i64, ChatError> {
        let (reply, answer) = oneshot::channel();
        self.0.send(Job { record, reply }).await.map_err(|_| ChatError::NotStored)?;
        answer.await.map_err(|_| ChatError::NotStored)?.map_err(|()| ChatError::NotStored)
    }
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut jobs = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        let (records, replies): (Vec<_>, Vec<_>) = jobs.drain(..).map(|j| (j.record, j.reply)).unzip();
        let started = std::time::Instant::now();
        match store.insert_messages(&records).await {
            Ok(ids) => {
                crate::metrics::chat_batch_written(ids.len(), started.elapsed());
                for (reply, id) in replies.into_iter().zip(ids) {
                    let _ = reply.send(Ok(id));
                }
            }
            // One message can sink its batch (its recipient or group deleted since it was
            // checked): each is tried alone, so only that one fails.
            Err(e) if records.len() > 1 && e.is_refused_write() => {
                for (record, reply) in records.into_iter().zip(replies) {
                    let stored = match store.insert_messages(std::slice::from_ref(&record)).await {
                        Ok(ids) => {
                            crate::metrics::chat_batch_written(ids.len(), started.elapsed());
                            ids.first().copied().ok_or(())
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "chat: a message could not be stored");
                            Err(())
                        }
                    };
                    let _ = reply.send(stored);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, messages = replies.len(), "chat: storing messages failed");
                for reply in replies {
                    let _ = reply.send(Err(()));
                }
            }
        }
    }
}

impl Chat {
    /// Sends a direct message to a friend: stored, then `newDM` to both users' sockets and
    /// `dmNotification` to the recipient's.
    pub async fn send_dm(&self, me: i64, to: i64, content: &str) -> Result<Message, ChatError> {
        let content = check_content(content)?;
        if me == to {
            return Err(ChatError::Forbidden("You can only DM friends"));
        }
        self.take_message_token(me)?;
        let Some(username) = self.store().friend_sender_name(me, to).await? else {
            return Err(match self.store().chat_user(to).await {
                Ok(_) => ChatError::Forbidden("You can only DM friends"),
                Err(crate::store::Error::NotFound) => ChatError::NotFound("Recipient not found"),
                Err(e) => e.into(),
            });
        };
        let message = match self.store_message(me, username, Conversation::Direct { recipient: to }, content).await {
            Ok(message) => message,
            Err(e) => return Err(self.recheck(e, me, Named::User(to, "Recipient not found")).await),
        };
        self.after_commit(&message, Via::Socket);
        Ok(message)
    }

    /// Posts to a group `me` is a member of: stored, then `newGroupMessage` (socket) or
    /// `newMessage` (REST) to the group's room.
    pub async fn send_group_message(
        &self,
        me: i64,
        group_id: i64,
        content: &str,
        via: Via,
    ) -> Result<Message, ChatError> {
        let content = check_content(content)?;
        self.take_message_token(me)?;
        let member = self.store().membership(group_id, me).await?.ok_or(ChatError::NotFound("Group not found"))?;
        let message = match self.store_message(me, member.username, Conversation::Group(group_id), content).await {
            Ok(message) => message,
            Err(e) => return Err(self.recheck(e, me, Named::Group(group_id)).await),
        };
        self.after_commit(&message, via);
        Ok(message)
    }

    /// A page of the direct messages between `me` and a friend.
    pub async fn dm_history(&self, me: i64, other: i64, page: Page) -> Result<Vec<Message>, ChatError> {
        let limit = page_limit(page)?;
        if me == other || !self.store().are_friends(me, other).await? {
            return Err(ChatError::Forbidden("You can only view messages with friends"));
        }
        let rows = self.store().direct_history(me, other, page.before, limit).await?;
        rows.into_iter().map(|r| self.opened(r)).collect()
    }

    /// A page of a group's messages, for a member.
    pub async fn group_history(&self, me: i64, group_id: i64, page: Page) -> Result<Vec<Message>, ChatError> {
        let limit = page_limit(page)?;
        if !self.is_member(me, group_id).await? {
            return Err(ChatError::NotFound("Group not found"));
        }
        let rows = self.store().group_history(group_id, page.before, limit).await?;
        rows.into_iter().map(|r| self.opened(r)).collect()
    }

    /// Takes one of `me`'s message tokens (SPEC §6: a bucket of 200 refilling 20 a second): a
    /// refused message is neither stored nor acknowledged.
    fn take_message_token(&self, me: i64) -> Result<(), ChatError> {
        let c = &self.0.config;
        self.0
            .message_limits
            .check(&me, f64::from(c.messages_per_second), f64::from(c.message_burst))
            .map_err(ChatError::RateLimited)
    }

    /// Seals (with a key), stores through the writer, and returns the message as sent.
    async fn store_message(
        &self,
        me: i64,
        username: String,
        conversation: Conversation,
        content: String,
    ) -> Result<Message, ChatError> {
        let created_at = now_ms();
        let (stored, nonce) = match &self.0.cipher {
            Some(cipher) => {
                let (sealed, nonce) = cipher.seal(&content).ok_or(ChatError::NotStored)?;
                (sealed, Some(nonce))
            }
            None => (content.clone(), None),
        };
        let record = NewMessageRecord { sender_id: me, conversation, content: stored, nonce, created_at };
        let id = self.0.writer.store(record).await?;
        let (group_id, recipient_id) = match conversation {
            Conversation::Direct { recipient } => (None, Some(recipient)),
            Conversation::Group(g) => (Some(g), None),
        };
        Ok(Message { id, content, created_at, user_id: me, username, group_id, recipient_id })
    }

    /// A stored message as clients see it (opened, with a key).
    fn opened(&self, r: MessageRecord) -> Result<Message, ChatError> {
        let content = match (&self.0.cipher, &r.nonce) {
            (Some(cipher), Some(nonce)) => cipher.open(&r.content, nonce).ok_or(ChatError::Decrypt)?,
            // Stored with a key that is no longer configured.
            (None, Some(_)) => return Err(ChatError::Decrypt),
            // Stored before a key was set: plain text.
            (_, None) => r.content,
        };
        let (group_id, recipient_id) = match r.conversation {
            Conversation::Direct { recipient } => (None, Some(recipient)),
            Conversation::Group(g) => (Some(g), None),
        };
        Ok(Message {
            id: r.id,
            content,
            created_at: r.created_at,
            user_id: r.sender_id,
            username: r.username,
            group_id,
            recipient_id,
        })
    }

    /// What happens once a message has committed: it is published to the rooms that get it,
    /// then push notifications are queued for offline recipients (after the publish, so they
    /// never delay it).
    fn after_commit(&self, message: &Message, via: Via) {
        match (message.recipient_id, message.group_id) {
            (Some(recipient), _) => {
                self.publish(rooms::user(message.user_id), "newDM", message);
                self.publish(rooms::user(recipient), "newDM", message);
                let mut notification = json!(message);
                notification["senderId"] = json!(message.user_id);
                notification["senderUsername"] = json!(message.username);
                self.publish(rooms::user(recipient), "dmNotification", &notification);
            }
            (None, Some(group)) => {
                let name = match via {
                    Via::Socket => "newGroupMessage",
                    Via::Rest => "newMessage",
                };
                self.publish(rooms::group(group), name, message);
            }
            (None, None) => {}
        }
        self.push_offline(message);
    }
}

/// The page size: default and maximum [`MAX_PAGE`]; 0 is refused.
fn page_limit(page: Page) -> Result<u32, ChatError> {
    match page.limit {
        None => Ok(MAX_PAGE),
        Some(0) => Err(ChatError::Invalid("Invalid limit")),
        Some(n) => Ok(n.min(MAX_PAGE)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::NewAccount;

    #[tokio::test]
    async fn a_message_that_cannot_be_stored_fails_alone() {
        let (store, _dir) = crate::store::temp_store().await;
        let mut ids = Vec::new();
        for name in ["alice", "bob"] {
            let new = NewAccount {
                username: Some(name.into()),
                email: None,
                name: name.into(),
                password_hash: "x".into(),
                is_admin: false,
            };
            ids.push(store.insert_account(new).await.unwrap().id);
        }
        let writer = Writer::spawn(store.clone(), 16, 16);
        let dm = |to: i64| NewMessageRecord {
            sender_id: ids[0],
            conversation: Conversation::Direct { recipient: to },
            content: "hi".into(),
            nonce: None,
            created_at: 1,
        };
        // Queued together (the writer has not run yet on this thread), so they share a batch
        // that fails for the one to nobody.
        let (good, bad, good_too) =
            tokio::join!(writer.store(dm(ids[1])), writer.store(dm(424242)), writer.store(dm(ids[1])));
        assert!(matches!(bad, Err(ChatError::NotStored)));
        let (good, good_too) = (good.unwrap(), good_too.unwrap());
        assert!(good < good_too);
        let stored = store.direct_history(ids[0], ids[1], None, 10).await.unwrap();
        assert_eq!(stored.iter().map(|m| m.id).collect::<Vec<_>>(), [good, good_too]);
    }
}
