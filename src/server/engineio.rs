//! Wiring of the Engine.IO endpoints, each serving a Socket.IO setup: Push-Alt's at `/ws` (with
//! `EIO=`) and `/ws/`, and at `/socket.io/` Hestia's chat socket or the embedding program's;
//! their settings from `socketio`, their polling sessions counted against the connection
//! capacity and the per-address limit like TCP connections.

use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::Request;

use super::capacity::{self, Capacity};
use super::peers::PeerCounts;
use crate::config::SocketIoConfig;
use crate::core::Realtime;
use crate::transport::engineio::{Admission, Endpoint, Options, Protocol, Refused};
use crate::transport::socketio::SocketIo;

/// What a program serves at `/socket.io/`.
pub enum ProgramIo {
    /// Its Socket.IO namespaces.
    SocketIo(SocketIo),
    /// A bare Engine.IO protocol of its own, made once the core exists.
    EngineIo(MakeProtocol),
}

/// Makes a bare Engine.IO protocol on the server's core.
pub type MakeProtocol = Box<dyn FnOnce(&Realtime) -> Arc<dyn Protocol> + Send>;

/// Push-Alt's path prefix-less Engine.IO routes.
pub const WS_SLASH: &str = "/ws/";
/// Hestia's (and socket.io-client's default) path.
pub const SOCKET_IO: &str = "/socket.io/";

/// The server's Engine.IO endpoints.
#[derive(Clone)]
pub struct EngineIo {
    /// `/ws?EIO=…` and `/ws/` (Push-Alt).
    pub pushalt: Endpoint,
    /// `/socket.io/`: Hestia's chat socket, or the embedding program's setup.
    pub hestia: Endpoint,
    /// Whether `/socket.io/` serves the chat socket (with its CORS `*`, SPEC §6) rather than a
    /// program's setup (which keeps the endpoint's own CORS: origins it allows, reflected).
    pub chat_served: bool,
}

impl EngineIo {
    /// Counts polling sessions like connections, once the server knows its capacity.
    pub(super) fn admit_with(&self, capacity: Arc<Capacity>, peers: Arc<PeerCounts>, max_per_ip: u32) {
        let admission: Arc<dyn Admission> = Arc::new(ServerAdmission { capacity, peers, max_per_ip });
        self.pushalt.clone().with_admission(admission.clone());
        self.hestia.clone().with_admission(admission);
    }
}

/// The Engine.IO settings of `socketio`.
pub fn options(config: &SocketIoConfig) -> Options {
    Options {
        ping_interval: config.ping_interval(),
        ping_timeout: config.ping_timeout(),
        max_payload: config.max_payload,
        max_polling_sessions: config.max_polling_sessions,
        ..Options::default()
    }
}

struct ServerAdmission {
    capacity: Arc<Capacity>,
    peers: Arc<PeerCounts>,
    max_per_ip: u32,
}

impl Admission for ServerAdmission {
    fn admit_polling(&self, client: Option<IpAddr>) -> Result<Box<dyn Any + Send + Sync>, Refused> {
        let slot = match self.capacity.admit() {
            capacity::Admission::Admitted(slot) => slot,
            capacity::Admission::Overflow(_) | capacity::Admission::Refused => return Err(Refused::AtCapacity),
        };
        let per_ip = match (self.max_per_ip, client) {
            (0, _) | (_, None) => None,
            (max, Some(ip)) => {
                Some(self.peers.admit(crate::ratelimit::address_key(ip), max).ok_or(Refused::PerAddress)?)
            }
        };
        Ok(Box::new((slot, per_ip)))
    }
}

/// Whether a request is an Engine.IO request on `/ws` (Notif keeps `/ws` without `EIO=`).
pub fn is_engineio_ws(req: &Request) -> bool {
    req.uri().query().is_some_and(|q| form_urlencoded::parse(q.as_bytes()).take(32).any(|(k, _)| k == "EIO"))
}

/// Whether a request is a long-poll GET, held until a packet or the heartbeat (so the request
/// deadline does not apply; the heartbeat bounds it). Any path: an embedding program may serve
/// an Engine.IO endpoint of its own.
pub fn is_long_poll(req: &Request) -> bool {
    req.method() == axum::http::Method::GET
        && req.uri().query().is_some_and(|q| {
            let mut sid = false;
            let mut polling = false;
            for (k, v) in form_urlencoded::parse(q.as_bytes()).take(32) {
                sid |= k == "sid";
                polling |= k == "transport" && v == "polling";
            }
            sid && polling
        })
}
