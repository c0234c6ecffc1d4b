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
}

/// An event's payload, in the form it was published in (SPEC §1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A string (what Pusher publishers send).
    Text(Arc<str>),
    /// A JSON value, kept as its compact serialisation (Notif, Push-Alt, internal events).
    Json(Arc<str>),
}
