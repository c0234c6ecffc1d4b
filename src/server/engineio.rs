//! Wiring of the Engine.IO endpoints, each serving a Socket.IO setup: Push-Alt's at `/ws` (with
//! `EIO=`) and `/ws/`, and at `/socket.io/` the embedding program's (Hestia's in a later issue);
//! their settings from `socketio`, their polling sessions counted against the connection
//! capacity and the per-address limit like TCP connections.

use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;

use super::capacity::{self, Capacity};
use super::forwarded::ClientAddr;
use super::peers::PeerCounts;
use super::state::AppState;
use crate::apps::AppCache;
use crate::config::SocketIoConfig;
use crate::core::Realtime;
use crate::origins::GlobalOrigins;
use crate::surfaces::pushalt;
use crate::transport::engineio::{Admission, EioError, Endpoint, Handshake, Options, Protocol, Refused};
use crate::transport::socketio::{Admit, Admitted, DEFAULT_RULES, Namespace, SetupError, SocketIo};

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
    /// `/socket.io/`: the embedding program's Socket.IO setup (Hestia's in a later issue).
    pub hestia: Endpoint,
}

/// The core app Engine.IO sessions belong to until the Socket.IO layer puts each socket in the
/// app its token names.
const SESSIONS_APP: &str = "engine.io";

impl EngineIo {
    /// Both endpoints: Push-Alt's namespace at `/ws` (its handlers' services in `pushalt`), its
    /// handshakes' Origin checked against the global list (SPEC §5), and `program`'s setup at `/socket.io/` (without one, the main
    /// namespace with no handlers; Hestia's rule, SPEC §6's CORS `*`, comes with its surface). A
    /// program's setup that names no app puts its connections in `default_app`, under that
    /// app's limits.
    pub fn new(
        config: &SocketIoConfig,
        realtime: &Realtime,
        origins: &Arc<GlobalOrigins>,
        shutdown: &super::Shutdown,
        pushalt: pushalt::socketio::Deps,
        program: Option<ProgramIo>,
        default_app: Option<Arc<str>>,
    ) -> Result<Self, SetupError> {
        let options = options(config);
        let origins = origins.clone();
        let apps = &pushalt.apps.clone();
        let pushalt = pushalt::socketio::setup(pushalt)
            .app(SESSIONS_APP, DEFAULT_RULES, 0)
            .origins(move |origin| origins.allowed_now(origin))
            .connect_timeout_by_default(config.connect_timeout())
            .bind(realtime)?;
        let program: Arc<dyn Protocol> = match program {
            Some(ProgramIo::EngineIo(make)) => make(realtime),
            Some(ProgramIo::SocketIo(setup)) => program_socketio(setup, config, realtime, apps, default_app)?,
            None => {
                let setup = SocketIo::new().namespace("/", Namespace::new());
                program_socketio(setup, config, realtime, apps, default_app)?
            }
        };
        Ok(Self {
            pushalt: Endpoint::new(options.clone(), pushalt, shutdown.token()),
            hestia: Endpoint::new(options, program, shutdown.token()),
        })
    }

    /// Counts polling sessions like connections, once the server knows its capacity.
    pub(super) fn admit_with(&self, capacity: Arc<Capacity>, peers: Arc<PeerCounts>, max_per_ip: u32) {
        let admission: Arc<dyn Admission> = Arc::new(ServerAdmission { capacity, peers, max_per_ip });
        self.pushalt.clone().with_admission(admission.clone());
        self.hestia.clone().with_admission(admission);
    }
}

/// A program's Socket.IO setup, bound: in `default_app` unless it chose its app, with the
/// configured connect timeout unless it set its own.
fn program_socketio(
    setup: SocketIo,
    config: &SocketIoConfig,
    realtime: &Realtime,
    apps: &AppCache,
    default_app: Option<Arc<str>>,
) -> Result<Arc<dyn Protocol>, SetupError> {
    let setup = match default_app {
        Some(app) => setup.admit_by_default(app_admission(apps.clone(), app)),
        None => setup,
    };
    Ok(setup.connect_timeout_by_default(config.connect_timeout()).bind(realtime)?)
}

/// Admits connections to `app` under its current limits (read at each handshake); a disabled
/// or deleted app refuses them.
fn app_admission(apps: AppCache, app: Arc<str>) -> Admit {
    Arc::new(move |_: &Handshake<'_>| {
        let found = apps.by_id(&app).filter(|a| a.enabled).ok_or(EioError::Forbidden)?;
        Ok(Admitted {
            app: found.id.clone(),
            rules: found.channel_rules(),
            max_connections: found.limits().max_connections,
        })
    })
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

/// `/ws/` and `/ws?EIO=…`.
pub async fn pushalt(State(state): State<AppState>, req: Request) -> Response {
    let client = ClientAddr::of(&req);
    state.engineio.pushalt.serve(Some(client), req).await
}

/// `/socket.io/`.
pub async fn hestia(State(state): State<AppState>, req: Request) -> Response {
    let client = ClientAddr::of(&req);
    state.engineio.hestia.serve(Some(client), req).await
}
