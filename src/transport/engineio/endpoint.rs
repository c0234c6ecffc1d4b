//! One Engine.IO endpoint: the request entry point (handshake, polling GET/POST, WebSocket and
//! upgrade), checked in the reference server's order, with its errors.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::polling;
use super::session::Live;
use super::state::{Admission, Inner};
use super::table::{Table, new_sid};
use super::{EioError, Handshake, Options, Protocol, TransportKind, packet, websocket};
use crate::transport::ws::WsUpgrade;

/// Query pairs read at most (a handshake has three or four).
const MAX_QUERY_PAIRS: usize = 32;
/// One Engine.IO endpoint; cheap to clone.
#[derive(Clone)]
pub struct Endpoint(pub(crate) Arc<Inner>);

impl Endpoint {
    /// An endpoint serving `protocol` with `options`; it ends its sessions when `shutdown` is
    /// cancelled.
    pub fn new(options: Options, protocol: Arc<dyn Protocol>, shutdown: CancellationToken) -> Self {
        let table = Table::new(options.max_polling_sessions);
        Self(Arc::new(Inner { options, protocol, table, shutdown, admission: OnceLock::new() }))
    }

    /// Counts polling sessions against `admission` (the server's capacity and per-address
    /// limits).
    /// (Set once, before serving; a second call changes nothing.)
    pub fn with_admission(self, admission: Arc<dyn Admission>) -> Self {
        let _ = self.0.admission.set(admission);
        self
    }

    /// The settings the endpoint announces in its open packets.
    pub fn options(&self) -> &Options {
        &self.0.options
    }

    /// Polling sessions open now (upgraded ones until their WebSocket ends).
    pub fn polling_sessions(&self) -> usize {
        self.0.table.len()
    }

    /// A router serving this endpoint at `path` (every method; the client address from
    /// `ConnectInfo`).
    pub fn router<S: Clone + Send + Sync + 'static>(self, path: &str) -> Router<S> {
        Router::new().route(path, any(move |req: Request| async move { self.serve(None, req).await }))
    }

    /// Serves one request to the endpoint's path. `client` is the client's address as the
    /// caller's proxy rules see it (else the TCP peer from `ConnectInfo`, if any).
    ///
    /// A browser page on another origin polls with cross-origin requests: when its `Origin` is
    /// one the protocol allows, the answer carries the CORS headers that let the page read it
    /// (and a preflight gets 204).
    pub async fn serve(&self, client: Option<IpAddr>, req: Request) -> Response {
        // A copy: a header value shares the connection's read buffer, which a long poll would
        // otherwise keep alive (8 KiB) while hyper reads into a new one.
        let origin = req.headers().get(header::ORIGIN).and_then(|o| HeaderValue::from_bytes(o.as_bytes()).ok());
        let allowed = origin.as_ref().filter(|o| self.0.protocol.origin_allowed(Some(o.to_str().unwrap_or_default())));
        let Some(origin) = allowed else {
            return self.answer(client, req).await;
        };
        let mut response = if req.method() == Method::OPTIONS {
            let mut preflight = StatusCode::NO_CONTENT.into_response();
            let headers = preflight.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST"));
            if let Some(asked) = req.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
            }
            preflight
        } else {
            self.answer(client, req).await
        };
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        response
    }

    async fn answer(&self, client: Option<IpAddr>, req: Request) -> Response {
        let client = client.or_else(|| req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()));
        let (mut parts, body) = req.into_parts();
        let query: Vec<(String, String)> = form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .take(MAX_QUERY_PAIRS)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let Some(transport) = param("transport").and_then(TransportKind::parse) else {
            return EioError::UnknownTransport.into_response();
        };
        let inner = &self.0;
        if let Some(sid) = param("sid") {
            let Some(polled) = inner.table.get(sid) else {
                return EioError::UnknownSid.into_response();
            };
            let method = parts.method.clone();
            return match (transport, method) {
                // Answered at once (a waiting poll's payload follows in its body).
                (TransportKind::Polling, Method::GET) => polling::get(inner, polled),
                (TransportKind::Polling, Method::POST) => polling::post(inner, polled, &parts.headers, body).await,
                (TransportKind::Polling, _) => EioError::BadRequest.into_response(),
                (TransportKind::WebSocket, _) => match WsUpgrade::from_request_parts(&mut parts, &()).await {
                    Ok(ws) => websocket::upgrade(inner, polled, ws),
                    Err(not) => not.refusal(EioError::BadRequest.into_response()),
                },
            };
        }
        if parts.method != Method::GET {
            return EioError::BadHandshakeMethod.into_response();
        }
        let ws = match transport {
            TransportKind::Polling => None,
            TransportKind::WebSocket => match WsUpgrade::from_request_parts(&mut parts, &()).await {
                Ok(ws) => Some(ws),
                Err(not) => return not.refusal(EioError::BadRequest.into_response()),
            },
        };
        // An Origin that is not text is sent but cannot match: it is not "missing".
        let origin = parts.headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or_default());
        if !inner.protocol.origin_allowed(origin) {
            return EioError::Forbidden.into_response();
        }
        if param("EIO") != Some("4") {
            return EioError::UnsupportedProtocolVersion.into_response();
        }
        let sid = new_sid();
        let handshake = Handshake { sid: &sid, transport, query: &query, headers: &parts.headers, client };
        match ws {
            None => polling::open(inner, &handshake).await,
            Some(ws) => {
                let upper = match inner.protocol.open(&handshake) {
                    Ok(upper) => upper,
                    Err(e) => return e.into_response(),
                };
                // From here on a failed upgrade still ends the upper session (`Live` closes it
                // when dropped).
                let live = Live::new(upper, &inner.options, Instant::now());
                let open = packet::open(
                    &sid,
                    false,
                    inner.options.ping_interval,
                    inner.options.ping_timeout,
                    inner.options.max_payload,
                );
                websocket::direct(inner, ws, live, open)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_the_reference_shape() {
        for (e, code, status) in [
            (EioError::UnknownTransport, 0, 400),
            (EioError::UnknownSid, 1, 400),
            (EioError::BadHandshakeMethod, 2, 400),
            (EioError::BadRequest, 3, 400),
            (EioError::Forbidden, 4, 403),
            (EioError::UnsupportedProtocolVersion, 5, 400),
        ] {
            assert_eq!((e.code(), e.status().as_u16()), (code, status));
            let response = e.into_response();
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        }
    }
}
