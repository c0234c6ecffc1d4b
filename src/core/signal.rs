//! A wake-up for exactly one waiting task: a flag and a waker slot. Cheaper than `Notify`,
//! whose locked waiter list costs more when the fan-out signals thousands of connections.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures_util::task::AtomicWaker;

#[derive(Default)]
pub(crate) struct Signal {
    pending: AtomicBool,
    task: AtomicWaker,
}

impl Signal {
    /// Wakes the waiter, or the next call to [`Signal::wait`] if nobody waits now.
    pub fn notify(&self) {
        self.pending.store(true, Ordering::Release);
        self.task.wake();
    }

    /// Resolves once per [`Signal::notify`] (several before a wait count as one). Cancel-safe:
    /// a notification is never lost. Only one task may wait (one waker slot).
    pub async fn wait(&self) {
        poll_fn(|cx| {
            if self.pending.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            self.task.register(cx.waker());
            if self.pending.swap(false, Ordering::AcqRel) { Poll::Ready(()) } else { Poll::Pending }
        })
        .await
    }
}
