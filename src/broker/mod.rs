//! The Broker seam: every publish goes through it, and every node (this one included) is
//! handed back what was published. The in-process backend hands it back at once; cluster
//! backends (Redis, NATS) carry [`wire::Envelope`]s between nodes. Nothing here imports the
//! core or a surface.

mod memory;
pub mod wire;

use std::sync::Arc;

pub use memory::MemoryBroker;
pub use wire::Envelope;

/// Why a publish was not accepted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The backend is unreachable; nothing was published (SPEC §9: callers answer 503).
    #[error("broker unavailable")]
    Unavailable,
}

/// Where a broker delivers envelopes: the node's realtime core.
pub trait Sink: Send + Sync {
    fn deliver(&self, envelope: Envelope);
}

/// Moves envelopes between nodes.
pub trait Broker: Send + Sync {
    /// Publishes to every node, this one included. Never waits: cluster backends queue.
    fn publish(&self, envelope: Envelope) -> Result<(), Error>;
    /// Sets where envelopes arrive. Called once, before the first publish.
    fn attach(&self, sink: Arc<dyn Sink>);
    /// Whether publishes currently go through (for `/health` and 503s).
    fn healthy(&self) -> bool;
    /// A short name for health output and logs.
    fn name(&self) -> &'static str;
}
