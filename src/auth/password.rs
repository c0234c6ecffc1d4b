//! Passwords: argon2id PHC strings, hashed and verified on the blocking pool (a hash takes tens
//! of milliseconds of CPU and 19 MiB, which must not stall the async runtime).
//!
//! Every hash and verify passes a [`Gate`] (the server has one): at most half the cores hash at
//! once, a bounded number of callers wait for a turn, each for a bounded time, and the rest are
//! turned away at once with [`PasswordError::Busy`] (surfaces answer 503 with `Retry-After`). A
//! login flood therefore costs a fixed amount of memory and CPU, and leaves the other half of the
//! machine to live traffic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a caller may wait for a turn before it is told to come back.
const MAX_WAIT: Duration = Duration::from_secs(2);
/// Callers that may wait per hashing slot (more are refused without waiting).
const WAITING_PER_SLOT: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed")]
    Task,
    #[error("too many password checks in progress")]
    Busy,
}

/// The concurrency cap on password work; every hash and verify goes through one.
pub struct Gate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl Default for Gate {
    /// Sized to this machine: half its cores hash at once.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let slots = (cores / 2).max(1);
        Self::new(slots, slots * WAITING_PER_SLOT)
    }
}

impl Gate {
    fn new(slots: usize, max_waiting: usize) -> Self {
        Self { slots: Arc::new(Semaphore::new(slots)), waiting: AtomicUsize::new(0), max_waiting }
    }
}

/// Counts a waiting caller for as long as it waits, even if its request is dropped meanwhile.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    /// Hashes a password with argon2id and a random salt.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Hash(e.to_string()))
        })
        .await?
    }

    /// Checks a password against a stored hash (`None`: against a dummy, and fail).
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, PasswordError> {
        self.run(move || {
            let found = stored.is_some();
            let stored = stored.as_deref().unwrap_or(DUMMY.as_str());
            let ok = PasswordHash::new(stored)
                .is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok());
            ok && found
        })
        .await
    }

    /// Runs `work` on the blocking pool once the gate lets it in. The slot goes with the work:
    /// a caller that gives up (its client hung up) does not free it while the hash still runs.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordError> {
        let permit = self.enter().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            work()
        })
        .await
        .map_err(|_| PasswordError::Task)
    }

    async fn enter(&self) -> Result<OwnedSemaphorePermit, PasswordError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(PasswordError::Busy);
        }
        let _waiting = Waiting(&self.waiting);
        match tokio::time::timeout(MAX_WAIT, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(PasswordError::Busy),
        }
    }
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// A hash of nothing anyone knows, verified against when the account does not exist, so a
/// wrong username and a wrong password take the same time. Computed on first use, inside the
/// gate (it is an argon2 hash too).
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::encode_b64(b"switchboard-dummy-salt").unwrap_or_else(|_| SaltString::generate(&mut OsRng));
    argon2().hash_password(b"no password matches this", &salt).map(|h| h.to_string()).unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn hash_and_verify() {
        let gate = Gate::default();
        let h = gate.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(gate.verify("correct horse".into(), Some(h.clone())).await.unwrap());
        assert!(!gate.verify("wrong".into(), Some(h)).await.unwrap());
        assert!(!gate.verify("no password matches this".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn the_gate_turns_away_what_it_cannot_queue() {
        let gate = Gate::new(1, 2);
        let held = gate.enter().await.unwrap();
        let (a, b) = (gate.enter(), gate.enter());
        tokio::pin!(a, b);
        // Two callers wait (polled once each so they are counted), a third is refused at once.
        assert!(a.as_mut().now_or_never().is_none());
        assert!(b.as_mut().now_or_never().is_none());
        assert!(matches!(gate.enter().await, Err(PasswordError::Busy)));
        drop(held);
        let first = a.await.unwrap();
        drop(first);
        drop(b.await.unwrap());
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0, "waiters are uncounted when they get in");
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_does_not_free_its_slot_while_the_hash_runs() {
        let gate = Gate::new(1, 4);
        let (started, started_rx) = std::sync::mpsc::channel();
        let (finish, finish_rx) = std::sync::mpsc::channel::<()>();
        let mut work = Box::pin(gate.run(move || {
            let _ = started.send(());
            let _ = finish_rx.recv();
        }));
        // Polled until the blocking work has begun, then dropped (the client hung up).
        while started_rx.try_recv().is_err() {
            assert!(work.as_mut().now_or_never().is_none());
            tokio::task::yield_now().await;
        }
        drop(work);
        assert_eq!(gate.slots.available_permits(), 0, "the hash still runs and still holds its slot");
        finish.send(()).unwrap();
        for _ in 0..100 {
            if gate.slots.available_permits() == 1 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the slot never came back after the hash ended");
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_gives_up_after_the_bounded_wait() {
        let gate = Gate::new(1, 4);
        let _held = gate.enter().await.unwrap();
        assert!(matches!(gate.enter().await, Err(PasswordError::Busy)));
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
    }
}
