//! What a Socket.IO connection keeps of its Engine.IO handshake for its handlers: the query
//! (bounded), the client's address and the `Origin`. Sessions, sockets and the endpoint all use
//! it, so it lives below them.

use std::net::IpAddr;

use crate::transport::engineio::Handshake;

/// What a connect handler may want from the Engine.IO handshake.
#[derive(Debug, Clone, Default)]
pub struct HandshakeInfo {
    /// The handshake's query pairs, decoded (e.g. a `token` some clients send there), but
    /// Engine.IO's own ([`ENGINE_PARAMS`]): kept for the connection's life, so only what a
    /// handler may want.
    pub query: Vec<(String, String)>,
    /// The client's address, when known.
    pub client: Option<IpAddr>,
    /// The handshake's `Origin` header (`None`: none was sent), for a surface whose apps
    /// each allow their own origins.
    pub origin: Option<String>,
}

/// Query parameters Engine.IO itself uses (`t` and `j` by old clients and cache busting).
pub const ENGINE_PARAMS: [&str; 6] = ["EIO", "transport", "sid", "t", "j", "b64"];

impl HandshakeInfo {
    /// What a connection keeps of its handshake: its own query (bounded), address and `Origin`.
    pub(crate) fn new(handshake: &Handshake<'_>) -> Self {
        let origin =
            handshake.headers.get(axum::http::header::ORIGIN).map(|o| o.to_str().unwrap_or_default().to_owned());
        Self { query: kept_query(handshake.query), client: handshake.client, origin }
    }

    /// The first value of the query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The most of its handshake's own query a connection keeps for its life, in bytes of keys and
/// values: enough for a token and a few settings, while a client cannot make every idle
/// connection hold its whole 16 KB header block.
pub const MAX_KEPT_QUERY_BYTES: usize = 2048;

/// The handshake's own query pairs (not Engine.IO's), in order, while they fit
/// [`MAX_KEPT_QUERY_BYTES`]; a pair that would pass it and every later one are dropped.
fn kept_query(query: &[(String, String)]) -> Vec<(String, String)> {
    let mut bytes = 0;
    query
        .iter()
        .filter(|(k, _)| !ENGINE_PARAMS.contains(&k.as_str()))
        .take_while(|(k, v)| {
            bytes += k.len() + v.len();
            bytes <= MAX_KEPT_QUERY_BYTES
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{MAX_KEPT_QUERY_BYTES, kept_query};

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn a_connection_keeps_its_own_query_up_to_a_bound() {
        let query = vec![pair("EIO", "4"), pair("token", "t"), pair("transport", "polling"), pair("room", "a")];
        assert_eq!(kept_query(&query), vec![pair("token", "t"), pair("room", "a")]);
        let big = "x".repeat(MAX_KEPT_QUERY_BYTES / 2);
        let query = vec![pair("a", &big), pair("b", &big), pair("c", "small")];
        assert_eq!(kept_query(&query), vec![pair("a", &big)], "the pair past the bound and every later one go");
    }
}
