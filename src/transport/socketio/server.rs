//! A program's Socket.IO setup ([`SocketIo`]: namespaces and options) and the same bound to the
//! realtime core ([`Server`]): each namespace whose sockets join channels gets the encoder
//! dialect its naming asks for.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::broadcast;
use super::codec::MAIN_NAMESPACE;
use super::limits::MAX_NAMESPACE_LEN;
use super::namespace::Namespace;
use super::socket::NsShared;
use crate::core::{ChannelRules, Dialect, Realtime, Transport};
use crate::transport::engineio::{EioError, Handshake};

/// Decides which core app a handshake's connection joins, or refuses it (answered as
/// Engine.IO's HTTP error).
pub type Admit = Arc<dyn Fn(&Handshake<'_>) -> Result<Admitted, EioError> + Send + Sync>;
/// Whether a handshake's `Origin` (`None`: no header) may open a connection.
pub type OriginCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// The app connections join when the setup names none.
pub const DEFAULT_APP: &str = "socket.io";
/// Channel limits when the setup names none (SPEC §10's defaults).
pub const DEFAULT_RULES: ChannelRules = ChannelRules { max_members: 100, max_channels: 100, subscription_count: false };

/// The connect timeout the reference server uses (45 s) is longer than SPEC §10 allows.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Attachment bytes one packet may carry by default (Engine.IO's default `maxPayload`).
pub const DEFAULT_MAX_ATTACHMENT_BYTES: usize = 1_000_000;

/// The core app an Engine.IO session joins, with the limits that apply to it.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub app: Arc<str>,
    pub rules: ChannelRules,
    /// The app's connection quota (0: none).
    pub max_connections: u64,
}

/// Namespaces and options, as a program or a surface sets them up.
#[derive(Clone)]
pub struct SocketIo {
    namespaces: Vec<(String, Namespace)>,
    connect_timeout: Duration,
    timeout_set: bool,
    max_attachment_bytes: usize,
    /// `None`: the server decides (its default app), or [`DEFAULT_APP`] outside a server.
    admit: Option<Admit>,
    origins: Option<OriginCheck>,
}

impl Default for SocketIo {
    fn default() -> Self {
        Self {
            namespaces: Vec::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout_set: false,
            max_attachment_bytes: DEFAULT_MAX_ATTACHMENT_BYTES,
            admit: None,
            origins: None,
        }
    }
}

impl fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketIo")
            .field("namespaces", &self.namespaces)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_attachment_bytes", &self.max_attachment_bytes)
            .finish_non_exhaustive()
    }
}

fn fixed_app(app: Arc<str>, rules: ChannelRules, max_connections: u64) -> Admit {
    Arc::new(move |_: &Handshake<'_>| Ok(Admitted { app: app.clone(), rules, max_connections }))
}

/// A setup that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("namespace {0:?} must start with / and have at most {MAX_NAMESPACE_LEN} bytes")]
    BadNamespace(String),
    #[error("namespace {0:?} is registered twice")]
    Duplicate(String),
    #[error("too many namespaces with their own channel naming (at most {})", Dialect::COUNT - 1)]
    TooManyNamings,
}

impl SocketIo {
    /// No namespaces yet, the defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves namespace `name` (`/`, `/chat`, …) with `handlers`. CONNECTs to namespaces not
    /// registered are refused with `{"message":"Invalid namespace"}`.
    pub fn namespace(mut self, name: &str, handlers: Namespace) -> Self {
        self.namespaces.push((name.to_owned(), handlers));
        self
    }

    /// How long a connection may stay in no namespace before it is closed (default: the
    /// server's `socketio.connect_timeout_ms`, 10 s outside a server).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self.timeout_set = true;
        self
    }

    /// The most bytes of binary attachments one packet may carry (default 1,000,000); a
    /// larger packet closes its connection.
    pub fn max_attachment_bytes(mut self, bytes: usize) -> Self {
        self.max_attachment_bytes = bytes;
        self
    }

    /// Puts every connection in the core app `app` (its channels, its connection count), with
    /// `rules` for its channels and at most `max_connections` (0: no quota). Default: in a
    /// server, its default app under that app's limits; alone, the app `socket.io`, 100
    /// channels a connection, no quota.
    pub fn app(mut self, app: &str, rules: ChannelRules, max_connections: u64) -> Self {
        self.admit = Some(fixed_app(app.into(), rules, max_connections));
        self
    }

    /// Decides each handshake's app (or refuses it) with `admit`, for a surface whose apps
    /// depend on the request.
    pub fn admit(
        mut self,
        admit: impl Fn(&Handshake<'_>) -> Result<Admitted, EioError> + Send + Sync + 'static,
    ) -> Self {
        self.admit = Some(Arc::new(admit));
        self
    }

    /// `admit` unless the setup chose its app itself.
    pub(crate) fn admit_by_default(mut self, admit: Admit) -> Self {
        self.admit.get_or_insert(admit);
        self
    }

    /// The connect timeout unless the setup set one (the server's configured value).
    pub(crate) fn connect_timeout_by_default(mut self, timeout: Duration) -> Self {
        if !self.timeout_set {
            self.connect_timeout = timeout;
        }
        self
    }

    /// Checks the handshake's `Origin` (polling and WebSocket alike); refused ones get 403.
    /// Default: every origin.
    pub fn origins(mut self, allowed: impl Fn(Option<&str>) -> bool + Send + Sync + 'static) -> Self {
        self.origins = Some(Arc::new(allowed));
        self
    }

    /// Binds the setup to the core: the main namespace's channel events use the transport's
    /// default encoder, each namespace with a naming of its own gets a dialect.
    pub fn bind(self, realtime: &Realtime) -> Result<Arc<Server>, SetupError> {
        let default = broadcast::encoder(MAIN_NAMESPACE.into(), None);
        realtime.register_encoder(Transport::SocketIo, move |event| default("", event));
        let mut namespaces = HashMap::new();
        for (name, handlers) in self.namespaces {
            if !name.starts_with('/') || name.len() > MAX_NAMESPACE_LEN {
                return Err(SetupError::BadNamespace(name));
            }
            if namespaces.contains_key(name.as_str()) {
                return Err(SetupError::Duplicate(name));
            }
            let name: Arc<str> = name.into();
            let dialect = match (&*name, &handlers.naming) {
                (MAIN_NAMESPACE, None) => Some(Dialect::DEFAULT),
                (_, None) => None,
                (_, Some(naming)) => Some(
                    realtime
                        .register_dialect(Transport::SocketIo, broadcast::encoder(name.clone(), Some(naming.clone())))
                        .ok_or(SetupError::TooManyNamings)?,
                ),
            };
            let on_disconnect = handlers.disconnect_handler().cloned();
            let shared = Arc::new(NsShared { name: name.clone(), dialect, on_disconnect });
            namespaces.insert(name, Registered { handlers, shared });
        }
        Ok(Arc::new_cyclic(|me| Server {
            me: me.clone(),
            namespaces,
            connect_timeout: self.connect_timeout,
            max_attachment_bytes: self.max_attachment_bytes,
            admit: self.admit.unwrap_or_else(|| fixed_app(DEFAULT_APP.into(), DEFAULT_RULES, 0)),
            origins: self.origins,
            realtime: realtime.clone(),
        }))
    }
}

/// A namespace as the server registered it: the program's handlers, and what its sockets share.
pub(crate) struct Registered {
    pub handlers: Namespace,
    pub shared: Arc<NsShared>,
}

/// A [`SocketIo`] setup bound to the core, shared by every connection of its endpoint.
pub struct Server {
    /// Itself, for the sessions it opens (they keep it alive).
    me: Weak<Server>,
    admit: Admit,
    origins: Option<OriginCheck>,
    namespaces: HashMap<Arc<str>, Registered>,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_attachment_bytes: usize,
    pub(crate) realtime: Realtime,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.namespaces.keys().collect();
        names.sort();
        f.debug_struct("Server").field("namespaces", &names).finish_non_exhaustive()
    }
}

impl Server {
    pub(crate) fn namespace(&self, name: &str) -> Option<&Registered> {
        self.namespaces.get(name)
    }

    pub(crate) fn self_arc(&self) -> Option<Arc<Server>> {
        self.me.upgrade()
    }

    pub(crate) fn admit(&self, handshake: &Handshake<'_>) -> Result<Admitted, EioError> {
        (self.admit)(handshake)
    }

    pub(crate) fn origin_allowed(&self, origin: Option<&str>) -> bool {
        self.origins.as_ref().is_none_or(|check| check(origin))
    }
}
