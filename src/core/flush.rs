//! Flush queues: where connections with fresh frames wait to be written to their sockets.
//!
//! The fan-out queues a frame on each subscriber and lists the connection here (once, however
//! many frames it gets before the flush). One task per queue then writes every listed
//! connection's frames with one non-blocking write each (`send` for one frame, `writev` for a
//! backlog). That costs one task wake-up per event instead of one per subscriber, and frames
//! that pile up under load still leave in one write per connection. A socket that is full is
//! handed to its own connection task, which waits for it to drain.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::signal::Signal;

/// Connections written between two yields, so a large fan-out does not keep other tasks
/// (requests, reads, timers) waiting for the whole of it.
const YIELD_EVERY: usize = 256;

/// What a flush queue lists (a connection): it writes its queued frames when its turn comes.
/// The queue knows it by this alone, so connections can hold their queue.
pub(crate) trait Flush: Send + Sync + 'static {
    /// The queue's turn for this entry.
    fn flush_listed(&self);
}

pub(crate) struct FlushQueue<C> {
    list: Mutex<Vec<C>>,
    /// Wakes the queue's task; shared with it apart from the queue, so that the task holds the
    /// queue only weakly and ends once the engine and its connections are gone.
    signal: Arc<Signal>,
    started: AtomicBool,
}

impl<C> Default for FlushQueue<C> {
    fn default() -> Self {
        Self { list: Mutex::new(Vec::new()), signal: Arc::default(), started: AtomicBool::new(false) }
    }
}

impl<C> Drop for FlushQueue<C> {
    fn drop(&mut self) {
        self.signal.notify();
    }
}

impl<C: Flush> FlushQueue<C> {
    /// Lists a connection; false when no runtime can run the flush (the caller wakes the
    /// connection's own task instead).
    pub fn push(self: &Arc<Self>, conn: C) -> bool {
        if !self.started.load(Ordering::Acquire) && !self.start() {
            return false;
        }
        let first = {
            let mut list = self.list.lock();
            list.push(conn);
            list.len() == 1
        };
        if first {
            self.signal.notify();
        }
        true
    }

    fn start(self: &Arc<Self>) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if !self.started.swap(true, Ordering::AcqRel) {
            runtime.spawn(run(Arc::downgrade(self), self.signal.clone()));
        }
        true
    }
}

async fn run<C: Flush>(queue: Weak<FlushQueue<C>>, signal: Arc<Signal>) {
    let mut batch: Vec<C> = Vec::new();
    loop {
        signal.wait().await;
        let Some(queue) = queue.upgrade() else {
            return;
        };
        std::mem::swap(&mut *queue.list.lock(), &mut batch);
        drop(queue);
        for (i, conn) in batch.drain(..).enumerate() {
            conn.flush_listed();
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
        }
        if batch.capacity() > 4 * YIELD_EVERY {
            batch.shrink_to(YIELD_EVERY);
        }
    }
}
