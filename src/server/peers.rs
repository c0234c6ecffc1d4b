//! Per-client-address limits (SPEC §10): how many TCP connections one address may hold open at
//! once. (The per-address request rate is a [`crate::ratelimit::RateLimiter`] key, in the
//! router.) Both are off by default: behind a reverse proxy every client has the proxy's address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Open connections by client address.
#[derive(Default)]
pub struct PeerCounts {
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One counted connection; dropping it (the connection ended) gives the slot back.
pub struct PeerSlot {
    counts: Arc<PeerCounts>,
    ip: IpAddr,
}

impl PeerCounts {
    /// A slot for a new connection from `ip`, or `None` when it already holds `max`.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<PeerSlot> {
        let mut open = self.open.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PeerSlot { counts: self.clone(), ip })
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open.lock().len()
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

const TOO_MANY: &str = r#"{"error":"Too many connections from this address"}"#;

/// Answers a connection over the limit without parsing it: a 429 and a close. What the client
/// already sent is read and dropped (briefly), so the close does not reset the answer away.
/// `_slot` keeps the descriptor counted until then.
pub async fn refuse(mut stream: TcpStream, _slot: super::capacity::Slot) {
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{TOO_MANY}",
        TOO_MANY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        let mut scratch = [0u8; 1024];
        while stream.read(&mut scratch).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let counts = Arc::new(PeerCounts::default());
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        let first = counts.admit(a, 2).unwrap();
        let second = counts.admit(a, 2).unwrap();
        assert!(counts.admit(a, 2).is_none());
        assert!(counts.admit(b, 2).is_some(), "addresses are independent");
        drop(first);
        let third = counts.admit(a, 2).unwrap();
        drop((second, third));
        assert_eq!(counts.addresses(), 0, "an address with no connection is forgotten");
    }
}
