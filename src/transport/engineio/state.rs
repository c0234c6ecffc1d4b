//! What an endpoint's request handlers share ([`Inner`]: settings, protocol, sid table,
//! shutdown) and the server's say over polling sessions ([`Admission`]), below the endpoint,
//! polling and WebSocket code that all use them.

use std::any::Any;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use super::table::Table;
use super::{Options, Protocol};

/// Counts a polling session against the server's limits (connection capacity, per-address
/// connections): a long-polling session holds no TCP connection of its own, so it takes a slot
/// like one. The guard is held for the session's life (until it ends or upgrades).
pub trait Admission: Send + Sync + 'static {
    /// A guard, or why the handshake is refused.
    fn admit_polling(&self, client: Option<IpAddr>) -> Result<Box<dyn Any + Send + Sync>, Refused>;
}

/// Why [`Admission`] refused a polling session; answered in Engine.IO's error shape with
/// `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server holds all the connections it can: 503.
    AtCapacity,
    /// The client's address holds all the connections it may: 429.
    PerAddress,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::AtCapacity => (StatusCode::SERVICE_UNAVAILABLE, r#"{"code":3,"message":"Server at capacity"}"#),
            Self::PerAddress => {
                (StatusCode::TOO_MANY_REQUESTS, r#"{"code":3,"message":"Too many connections from this address"}"#)
            }
        };
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    }
}

/// One endpoint's state, shared by its handlers and its timer task.
pub(crate) struct Inner {
    pub options: Options,
    pub protocol: Arc<dyn Protocol>,
    pub table: Table,
    pub shutdown: CancellationToken,
    pub admission: OnceLock<Arc<dyn Admission>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.table.stop_timers();
    }
}
