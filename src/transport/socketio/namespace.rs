//! What a program registers: namespaces, each with its connect, event and disconnect handlers
//! and, when its sockets join core channels, how channel events are named for them.
//!
//! Handlers are plain closures called on the connection's task; one that needs to wait (a
//! database, another service) spawns a task with the [`Socket`] (cheap to clone) and answers
//! from there. A handler that panics closes its connection only.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::args::Args;
use super::broadcast::Naming;
use super::socket::{AckSender, DisconnectFn, DisconnectReason, Socket};

/// A refused CONNECT, sent as CONNECT_ERROR with `{"message": …, "data": …}` (the reference
/// server's shape for an `Error` with `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRefusal {
    message: String,
    /// JSON text, if any.
    data: Option<String>,
}

impl ConnectRefusal {
    /// Refuses with `{"message": message}`.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), data: None }
    }

    /// Adds a `data` member (any serialisable value) to the error the client sees.
    pub fn with_data(mut self, data: &impl serde::Serialize) -> Self {
        self.data = serde_json::to_string(data).ok();
        self
    }

    /// The CONNECT_ERROR payload.
    pub(crate) fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(self.message.len() + 16);
        out.extend_from_slice(br#"{"message":"#);
        super::codec::push_json_str(&mut out, &self.message);
        if let Some(data) = &self.data {
            out.extend_from_slice(br#","data":"#);
            out.extend_from_slice(data.as_bytes());
        }
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }
}

/// An event from a client, handed to its handler.
pub struct Message {
    pub name: String,
    pub args: Args,
    /// Present when the client asked for an acknowledgement.
    pub ack: Option<AckSender>,
}

type ConnectFn = dyn Fn(&Socket, &str) -> Result<(), ConnectRefusal> + Send + Sync;
type EventFn = dyn Fn(&Socket, Message) + Send + Sync;

/// One namespace's handlers.
#[derive(Clone, Default)]
pub struct Namespace {
    connect: Option<Arc<ConnectFn>>,
    events: HashMap<Box<str>, Arc<EventFn>>,
    any: Option<Arc<EventFn>>,
    disconnect: Option<Arc<DisconnectFn>>,
    pub(crate) naming: Option<Naming>,
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut events: Vec<_> = self.events.keys().collect();
        events.sort();
        f.debug_struct("Namespace").field("events", &events).finish_non_exhaustive()
    }
}

impl Namespace {
    /// A namespace with no handlers: CONNECTs accepted, events dropped.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs on CONNECT with the client's `auth` object (`{}` when it sent none). `Ok` accepts
    /// the socket (the client gets its id first, then whatever the handler emitted); `Err`
    /// refuses it with CONNECT_ERROR. Without this handler every CONNECT is accepted.
    pub fn on_connect(
        mut self,
        f: impl Fn(&Socket, &str) -> Result<(), ConnectRefusal> + Send + Sync + 'static,
    ) -> Self {
        self.connect = Some(Arc::new(f));
        self
    }

    /// Handles the event `name`.
    pub fn on(mut self, name: &str, f: impl Fn(&Socket, Message) + Send + Sync + 'static) -> Self {
        self.events.insert(name.into(), Arc::new(f));
        self
    }

    /// Handles every event that has no handler of its own. Without one, such events are
    /// dropped (and an ack they asked for is never sent), as the reference server does.
    pub fn on_any(mut self, f: impl Fn(&Socket, Message) + Send + Sync + 'static) -> Self {
        self.any = Some(Arc::new(f));
        self
    }

    /// Runs once when a connected socket leaves the namespace, however it leaves.
    pub fn on_disconnect(mut self, f: impl Fn(&Socket, DisconnectReason) + Send + Sync + 'static) -> Self {
        self.disconnect = Some(Arc::new(f));
        self
    }

    /// Names core channel events for this namespace's sockets (Push-Alt:
    /// `workspace:<n>:<channel>:<event>`). Without it a channel event keeps its own name.
    pub fn channel_naming(mut self, naming: Naming) -> Self {
        self.naming = Some(naming);
        self
    }

    pub(crate) fn connect_handler(&self) -> Option<&Arc<ConnectFn>> {
        self.connect.as_ref()
    }

    pub(crate) fn event_handler(&self, name: &str) -> Option<&Arc<EventFn>> {
        self.events.get(name).or(self.any.as_ref())
    }

    pub(crate) fn disconnect_handler(&self) -> Option<&Arc<DisconnectFn>> {
        self.disconnect.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_the_reference_shape() {
        assert_eq!(ConnectRefusal::new("Invalid namespace").to_json(), r#"{"message":"Invalid namespace"}"#);
        let with = ConnectRefusal::new("no \"token\"").with_data(&serde_json::json!({"code": 4}));
        assert_eq!(with.to_json(), r#"{"message":"no \"token\"","data":{"code":4}}"#);
    }
}
