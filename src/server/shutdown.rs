//! Graceful shutdown (SPEC §8), in order: stop accepting, tell WebSocket clients to reconnect
//! (Pusher 4200), let in-flight HTTP requests finish within the grace period, then exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

/// Shared by the accept loop, every connection task and `/health`.
#[derive(Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    draining: Arc<AtomicBool>,
}

impl Shutdown {
    /// Starts the drain.
    pub fn trigger(&self) {
        self.draining.store(true, Ordering::Release);
        self.token.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Cancelled when the drain starts; connection loops select on it.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
