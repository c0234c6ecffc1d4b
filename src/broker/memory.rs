//! The in-process broker: one node, delivery at once, nothing to lose.

use std::sync::{Arc, OnceLock};

use super::{Broker, Envelope, Error, Sink};

#[derive(Default)]
pub struct MemoryBroker {
    sink: OnceLock<Arc<dyn Sink>>,
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Broker for MemoryBroker {
    fn publish(&self, envelope: Envelope) -> Result<(), Error> {
        if let Some(sink) = self.sink.get() {
            sink.deliver(envelope);
        }
        Ok(())
    }

    fn attach(&self, sink: Arc<dyn Sink>) {
        let _ = self.sink.set(sink);
    }

    fn healthy(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
