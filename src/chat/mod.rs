//! The Hestia chat service (SPEC §6): users and profiles, friends, groups with ADMIN/MEMBER
//! roles, direct and group messages with their histories, statuses and account deletion. The
//! REST and Socket.IO surfaces both call [`Chat`]; neither holds a chat rule of its own.
//!
//! Messages are stored before anyone is told: each goes through the group-commit writer
//! ([`messages`]), and only once its transaction has committed does [`Chat`] publish it to the
//! core rooms of [`rooms`] (which reach sockets on every node through the Broker).
//!
//! Nothing here imports axum, the Socket.IO transport or a surface.

mod content;
mod crypto;
mod friends;
mod groups;
mod messages;
mod model;
mod push;
pub mod rooms;
mod users;

use std::sync::Arc;
use std::time::Duration;

pub use content::{MAX_CONTENT_CHARS, check_content};
pub use crypto::{Cipher, KeyError};
pub use model::{
    Group, GroupChanges, GroupDetail, GroupListItem, Member, Message, NewGroup, Picture, PictureKind, Role, User,
    UserRef, Via,
};
pub use users::UPLOADS_PREFIX;

use crate::config::ChatConfig;
use crate::core::Realtime;
use crate::ratelimit::RateLimiter;
use crate::store::{self, Store};

/// The core app chat rooms live in: not an app of the apps table, so no Pusher or Notif client
/// can subscribe to them.
pub const APP: &str = "hestia";

/// A page of a history: messages older than `before` (a message id), at most `limit` of them
/// (default and maximum [`MAX_PAGE`]), the newest ones, oldest first.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

/// The longest history page (SPEC §6).
pub const MAX_PAGE: u32 = 1000;

/// What a chat call can fail with; the messages are Hestia's strings (CONTRACTS §3).
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// 400 / `error {error}`.
    #[error("{0}")]
    Invalid(&'static str),
    /// 403.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404.
    #[error("{0}")]
    NotFound(&'static str),
    /// 409.
    #[error("{0}")]
    Conflict(&'static str),
    /// 429 with `Retry-After`.
    #[error("Too many requests, please try again later.")]
    RateLimited(Duration),
    /// 500 "Internal server error", logged once by the surface.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// The message writer failed to commit (logged where it happened): 500.
    #[error("the message was not stored")]
    NotStored,
    /// A stored message could not be decrypted (wrong `ENCRYPTION_KEY`): 500.
    #[error("a stored message could not be decrypted")]
    Decrypt,
}

impl ChatError {
    /// Whether this is the server's fault (a 500), which the surface logs.
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Store(_) | Self::NotStored | Self::Decrypt)
    }
}

/// What a write names besides its author, for [`Chat::recheck`]: a user (and what to say when
/// it is gone) or a group the author posts to.
#[derive(Clone, Copy)]
enum Named {
    Nothing,
    User(i64, &'static str),
    Group(i64),
}

/// The chat service; cheap to clone.
#[derive(Clone)]
pub struct Chat(Arc<Inner>);

struct Inner {
    store: Store,
    realtime: Realtime,
    app: Arc<str>,
    cipher: Option<Cipher>,
    writer: messages::Writer,
    /// Messages per account (token bucket).
    message_limits: RateLimiter,
    config: ChatConfig,
    /// Push notifications for offline recipients, when the server has a push service.
    push: Option<push::PushHook>,
}

impl Chat {
    /// The service over `store` and `realtime`, with its message writer running (it ends when
    /// the last handle is dropped), notifying offline recipients through `push` when given. A
    /// bad `chat.encryption_key` is an error.
    pub fn new(
        store: Store,
        realtime: Realtime,
        config: ChatConfig,
        push: Option<crate::push::Push>,
    ) -> Result<Self, KeyError> {
        let cipher = config.encryption_key.as_ref().map(|k| Cipher::from_hex(&k.0)).transpose()?;
        let writer = messages::Writer::spawn(store.clone(), config.write_batch, config.write_queue);
        Ok(Self(Arc::new(Inner {
            store,
            realtime,
            app: APP.into(),
            cipher,
            writer,
            message_limits: RateLimiter::default(),
            config,
            push: push.map(push::PushHook::new),
        })))
    }

    /// Forgets message rate-limit buckets that have refilled (the server calls this
    /// periodically).
    pub fn sweep(&self) {
        self.0.message_limits.sweep();
    }

    /// An id from JSON: an integer or a numeric string in 1..=2^53; anything else (fractions,
    /// negatives, other strings, larger numbers) is `ChatError::Invalid(what)`.
    pub fn id_from_json(v: &serde_json::Value, what: &'static str) -> Result<i64, ChatError> {
        content::id_from_json(v).ok_or(ChatError::Invalid(what))
    }

    /// [`Chat::id_from_json`] for an id given as text (a path segment, a query value).
    pub fn id_from_str(s: &str, what: &'static str) -> Result<i64, ChatError> {
        content::id_from_str(s).ok_or(ChatError::Invalid(what))
    }

    fn store(&self) -> &Store {
        &self.0.store
    }

    /// A write that failed because what it names vanished since it was checked (the author's
    /// account deleted by another of its requests, a recipient deleted, a group dissolved) is
    /// the client's error, said as the check would have said it, not a server fault. Any other
    /// failure stays what it was.
    async fn recheck(&self, e: ChatError, me: i64, named: Named) -> ChatError {
        if !matches!(e, ChatError::Store(_) | ChatError::NotStored) {
            return e;
        }
        if matches!(self.store().chat_user(me).await, Err(store::Error::NotFound)) {
            return ChatError::Forbidden("Invalid or expired token");
        }
        let gone = match named {
            Named::Nothing => false,
            Named::User(id, _) => matches!(self.store().chat_user(id).await, Err(store::Error::NotFound)),
            Named::Group(id) => matches!(self.store().membership(id, me).await, Ok(None)),
        };
        match named {
            Named::User(_, missing) if gone => ChatError::NotFound(missing),
            Named::Group(_) if gone => groups::GROUP_NOT_FOUND,
            _ => e,
        }
    }
}

#[cfg(test)]
mod tests;
