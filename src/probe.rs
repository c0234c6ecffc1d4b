//! Round trips through the dependencies, for operators (Push-Alt's `POST /api/test-connection`):
//! a query to the database, and an event through the broker and back into this node's core,
//! received by a subscriber of a channel nobody else can name.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::{ChannelName, ChannelRules, Data, Event, Realtime, Transport};
use crate::store::{self, Store};

/// The app space the broker probe subscribes in: `:` is not allowed in app ids, so no app's
/// clients or publishes can reach it.
const PROBE_SPACE: &str = "switchboard:probe";

/// Why a round trip did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("database: {0}")]
    Database(#[from] store::Error),
    #[error("broker unavailable")]
    BrokerDown,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Time for `SELECT 1`.
pub async fn database(store: &Store, wait: Duration) -> Result<Duration, ProbeError> {
    let started = Instant::now();
    tokio::time::timeout(wait, store.ping()).await.map_err(|_| ProbeError::Timeout(wait))??;
    Ok(started.elapsed())
}

/// Time for an event published through the broker to reach a local subscriber. The probe is a
/// connection of the core for as long as it runs (it shows in connection counts meanwhile).
pub async fn broker(realtime: &Realtime, wait: Duration) -> Result<Duration, ProbeError> {
    let space: Arc<str> = Arc::from(PROBE_SPACE);
    let rules = ChannelRules { max_members: 1, max_channels: 1, subscription_count: false };
    let conn = realtime.connect(&space, Transport::Notif, 0).map_err(|_| ProbeError::BrokerDown)?;
    let result = async {
        let name = format!("probe-{}", crate::auth::opaque::generate().expose());
        let channel = ChannelName::parse(&name).map_err(|_| ProbeError::BrokerDown)?;
        realtime.subscribe(&conn, &channel, None, &rules).map_err(|_| ProbeError::BrokerDown)?;
        let event = Event {
            channel: Some(channel),
            name: "probe".into(),
            data: Data::Json("null".into()),
            user_id: None,
            except: None,
        };
        let started = Instant::now();
        realtime.publish(&space, event).map_err(|_| ProbeError::BrokerDown)?;
        let arrived = async {
            let mut batch = Vec::new();
            while batch.is_empty() {
                conn.woken().await;
                conn.drain(&mut batch);
            }
        };
        tokio::time::timeout(wait, arrived).await.map_err(|_| ProbeError::Timeout(wait))?;
        Ok(started.elapsed())
    }
    .await;
    realtime.disconnect(&conn, &rules);
    result
}
